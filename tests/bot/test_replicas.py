"""End to end: several replicas of the bot share one PostgreSQL, and Slack spreads work over them.

(``postgres_url`` comes before ``start_bot`` in each test, so the bots stop before their database
is dropped.)

Each replica is a real `Bot` (AsyncApp + Socket Mode + Trellis client) on its own Socket Mode
connection to the local Slack, which hands each envelope to one connection at random (or, where
a test must say which replica gets it, to a pinned one), and all share one real PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.helpers import (
    ALICE,
    BOB,
    BOT_USER,
    CHANNEL,
    BotFactory,
    answered,
    body,
    buttons,
    questions,
    replies,
    working_message,
)
from tests.pg import PostgresServer, postgres_server, postgres_url
from trellis_slack.bot.app import Bot
from trellis_slack.bot.lifecycle_status import Status
from trellis_slack.bot.queue import WAITING
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Question, Step, answer
from trellis_slack.slack.blocks import RETRY_ACTION, STOP_ACTION

__all__ = ["postgres_server", "postgres_url"]  # fixtures

MENTION = f"<@{BOT_USER}>"


async def replica(
    slack: FakeSlack, start_bot: BotFactory, postgres_url: str, **extra: str
) -> tuple[Bot, int]:
    """Start one more replica on the shared database; it and its Socket Mode connection number."""
    before = set(slack.deliveries())
    bot = await start_bot(TRELLIS_SLACK_DB=postgres_url, REPLICA_TTL="1", **extra)
    [number] = set(slack.deliveries()) - before
    return bot, number


def echo(gate: asyncio.Event | None = None) -> Callable[[Question], list[Step]]:
    """A responder answering "answer to <question>", held at ``gate`` (if any) first."""

    def respond(q: Question) -> list[Step]:
        held = [Step.processing("thinking"), Step.pause(gate)] if gate is not None else []
        return [*held, *answer(f"answer to {q.text.split()[-1]}")]

    return respond


async def slow_question_on_the_first(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory, postgres_url: str
) -> tuple[str, asyncio.Event]:
    """Two replicas; a slow question answered by the first (held at the returned gate); what
    Slack sends next goes to the second."""
    _, first = await replica(slack, start_bot, postgres_url)
    _, second = await replica(slack, start_bot, postgres_url)
    gate = asyncio.Event()
    trellis.responder = echo(gate)
    slack.route_to(first)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} slow q1")
    await trellis.wait_for_action("send_message")
    await working_message(slack, CHANNEL, ts)
    slack.route_to(second)
    return ts, gate


async def test_three_replicas_answer_every_question_exactly_once(
    slack: FakeSlack, trellis: FakeTrellis, postgres_url: str, start_bot: BotFactory
) -> None:
    """30 questions spread over 3 replicas (mentions arrive twice): one answer each, ≤ 3 sockets."""
    for _ in range(3):
        await replica(slack, start_bot, postgres_url)
    trellis.responder = echo()
    posted = await asyncio.gather(
        *(slack.post(CHANNEL, ALICE, f"{MENTION} question q{n}") for n in range(30))
    )
    for n, ts in enumerate(posted):
        messages = await answered(slack, CHANNEL, ts, f"answer to q{n}")
        assert [m for m in messages if f"answer to q{n}" in body(m)], f"q{n} unanswered"
        assert sum(f"answer to q{n}" in body(m) for m in messages) == 1
    assert len(questions(trellis)) == 30
    assert trellis.peak_connections <= 3
    busy = [n for n, envelopes in slack.deliveries().items() if envelopes]
    assert len(busy) >= 2  # Slack spread the envelopes: several replicas did the work


async def test_stop_clicked_on_another_replica_stops_the_answer(
    slack: FakeSlack, trellis: FakeTrellis, postgres_url: str, start_bot: BotFactory
) -> None:
    """Stop and then Retry land on the replica not answering: the answer stops, then comes."""
    ts, gate = await slow_question_on_the_first(slack, trellis, start_bot, postgres_url)
    working = await working_message(slack, CHANNEL, ts)
    await slack.click(CHANNEL, working["ts"], STOP_ACTION, user=BOB, value=ts)
    await trellis.wait_for_action("interrupt")
    messages = await answered(slack, CHANNEL, ts, f"Stopped by <@{BOB}>")
    gate.set()
    assert not any("answer to q1" in body(m) for m in messages)
    [stopped] = [m for m in messages if "Stopped by" in body(m)]
    assert RETRY_ACTION in buttons(stopped)
    # Retry lands on the second replica too: it asks again, in the stopped answer's place.
    trellis.responder = echo()
    await slack.click(CHANNEL, stopped["ts"], RETRY_ACTION, user=ALICE)
    again = await answered(slack, CHANNEL, ts, "answer to q1")
    assert [m["ts"] for m in again if "answer to q1" in body(m)] == [stopped["ts"]]


async def test_follow_up_on_another_replica_waits_and_is_answered_in_order(
    slack: FakeSlack, trellis: FakeTrellis, postgres_url: str, start_bot: BotFactory
) -> None:
    """A follow-up landing on the other replica waits for the answer above it, then is answered."""
    ts, gate = await slow_question_on_the_first(slack, trellis, start_bot, postgres_url)
    await slack.post(CHANNEL, ALICE, "and q2", thread_ts=ts)
    await slack.wait_for(lambda: any(WAITING in body(m) for m in replies(slack, CHANNEL, ts)))
    assert len(questions(trellis)) == 1  # one answer at a time in the thread, fleet-wide
    trellis.responder = echo()
    gate.set()
    messages = await answered(slack, CHANNEL, ts, "answer to q2")
    texts = [body(m) for m in messages]
    first_at = next(i for i, t in enumerate(texts) if "answer to q1" in t)
    second_at = next(i for i, t in enumerate(texts) if "answer to q2" in t)
    assert first_at < second_at


async def test_edit_on_another_replica_is_answered_as_edited(
    slack: FakeSlack, trellis: FakeTrellis, postgres_url: str, start_bot: BotFactory
) -> None:
    """An edit handled by one replica while another answers: the edited question is answered."""
    ts, gate = await slow_question_on_the_first(slack, trellis, start_bot, postgres_url)
    trellis.responder = echo()
    await slack.edit(CHANNEL, ts, f"{MENTION} better q9")
    messages = await answered(slack, CHANNEL, ts, "answer to q9")
    gate.set()
    assert not any("answer to q1" in body(m) for m in messages)
    assert sum("answer to q9" in body(m) for m in messages) == 1


async def test_delete_on_another_replica_interrupts_then_deletes(
    slack: FakeSlack, trellis: FakeTrellis, postgres_url: str, start_bot: BotFactory
) -> None:
    """A deletion handled by one replica stops the answer on the other first, then deletes it."""
    ts, gate = await slow_question_on_the_first(slack, trellis, start_bot, postgres_url)
    await slack.delete(CHANNEL, ts)
    await trellis.wait_for_action("delete_message")
    order = [
        r.frame["action"]
        for r in trellis.received
        if isinstance(r.frame, dict) and r.frame.get("action") in ("interrupt", "delete_message")
    ]
    assert order == ["interrupt", "delete_message"]
    await slack.wait_for(lambda: replies(slack, CHANNEL, ts) == [])
    gate.set()


async def test_postgresql_restarted_underneath_loses_no_question(
    slack: FakeSlack,
    trellis: FakeTrellis,
    postgres_server: PostgresServer,
    postgres_url: str,
    start_bot: BotFactory,
) -> None:
    """While PostgreSQL is down a question is not acked; Slack brings it again and it is answered."""
    bot, _ = await replica(slack, start_bot, postgres_url)
    trellis.responder = echo()
    slack.redeliver_after = 0.5
    await asyncio.to_thread(postgres_server.stop, "fast")
    try:
        ts = await slack.post(CHANNEL, ALICE, f"{MENTION} asked while down q1")
        await slack.wait_for(lambda: len(slack.envelopes_for(ts)) >= 3)  # redelivered, unacked
        sent = {e.envelope_id for e in slack.envelopes_for(ts)}
        assert not [a for a in slack.acks if a.envelope_id in sent]
    finally:
        await asyncio.to_thread(postgres_server.start)
    messages = await answered(slack, CHANNEL, ts, "answer to q1")
    assert sum("answer to q1" in body(m) for m in messages) == 1
    assert len(questions(trellis)) == 1
    assert bot.fleet is not None
    await slack.wait_for(lambda: bot.fleet is not None and bot.fleet.healthy)


async def test_an_answer_in_progress_finishes_while_postgresql_is_down(
    slack: FakeSlack,
    trellis: FakeTrellis,
    postgres_server: PostgresServer,
    postgres_url: str,
    start_bot: BotFactory,
) -> None:
    """PostgreSQL stops mid-answer: the answer still reaches the thread (only its record waits)."""
    bot, _ = await replica(slack, start_bot, postgres_url)
    gate = asyncio.Event()
    trellis.responder = echo(gate)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} slow q1")
    await trellis.wait_for_action("send_message")
    await working_message(slack, CHANNEL, ts)
    await asyncio.to_thread(postgres_server.stop, "fast")
    try:
        gate.set()
        messages = await answered(slack, CHANNEL, ts, "answer to q1")
    finally:
        await asyncio.to_thread(postgres_server.start)
    assert sum("answer to q1" in body(m) for m in messages) == 1
    # The thread was given back once the store returned: a follow-up is answered (if it comes
    # before the heartbeat saw the store back, it is left unacked, and Slack brings it again).
    slack.redeliver_after = 0.5
    trellis.responder = echo()
    await slack.post(CHANNEL, ALICE, "and q2", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "answer to q2")
    # …and how the first answer ended was recorded once the store was back: a later takeover
    # will not take it for a cut-short one.
    assert bot.store is not None
    first = await bot.store.question(CHANNEL, ts)
    assert first is not None
    assert first.status is Status.ANSWERED
