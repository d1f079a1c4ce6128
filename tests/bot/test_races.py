"""End to end: what happens when people act while the bot is busy (found in review, pinned here)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

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
from trellis_slack.bot.app import Bot
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Question, Step, answer
from trellis_slack.slack.blocks import RETRY_ACTION, STOP_ACTION

MENTION = f"<@{BOT_USER}>"


def asked(trellis: FakeTrellis) -> list[tuple[str, str]]:
    """(action, text) of every question or edit Trellis received, in order."""
    return [(q["action"], q.get("message") or q.get("content") or "") for q in questions(trellis)]


def texts(slack: FakeSlack, thread_ts: str) -> list[str]:
    return [body(m) for m in replies(slack, CHANNEL, thread_ts)]


def held(gates: dict[str, asyncio.Event]) -> Any:
    """A responder that holds the questions named in ``gates`` until their gate is set."""

    def responder(q: Question) -> list[Step]:
        gate = gates.get(q.text)
        steps = [Step.processing("thinking"), Step.pause(gate)] if gate else []
        return [*steps, *answer(f"You asked: {q.text}")]

    return responder


@pytest.mark.edited_messages
async def test_follow_up_while_the_question_waits_for_a_connection(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """A follow-up posted before Trellis has even named the chat is a follow-up all the same."""
    gate = asyncio.Event()
    trellis.responder = held({"busy": gate})
    await start_bot(TRELLIS_MAX_CONNECTIONS="1")
    other = await slack.post(CHANNEL, BOB, f"{MENTION} busy")
    await trellis.wait_for_action("send_message")
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} q1")
    await slack.wait_for(lambda: any("free Trellis connection" in t for t in texts(slack, ts)))
    await slack.post(CHANNEL, ALICE, "and by month?", thread_ts=ts)
    await slack.wait_for(lambda: any("as soon as" in t for t in texts(slack, ts)))
    gate.set()
    await answered(slack, CHANNEL, other, "You asked: busy")
    await answered(slack, CHANNEL, ts, "You asked: and by month?")
    assert ("send_message", "and by month?") in asked(trellis)


async def test_editing_back_and_forth_answers_every_edit(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Editing a question back to an earlier wording is an edit like any other."""
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} revenue by region")
    await answered(slack, CHANNEL, ts, "You asked: revenue by region")
    for wording in ("revenue by country", "revenue by region", "revenue by country"):
        await slack.edit(CHANNEL, ts, f"{MENTION} {wording}")
        await answered(slack, CHANNEL, ts, f"You asked: {wording}")
    assert [t for _, t in asked(trellis)] == [
        "revenue by region",
        "revenue by country",
        "revenue by region",
        "revenue by country",
    ]


async def test_editing_a_dropped_question_asks_it_again(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A question dropped by an earlier edit, when edited itself, is asked again."""
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} q1")
    await answered(slack, CHANNEL, ts, "You asked: q1")
    q2 = await slack.post(CHANNEL, BOB, "q2", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: q2")
    await slack.edit(CHANNEL, ts, f"{MENTION} q1 revised")
    await answered(slack, CHANNEL, ts, "You asked: q1 revised")
    await slack.edit(CHANNEL, q2, "q2 revised")
    await answered(slack, CHANNEL, ts, "You asked: q2 revised")
    assert asked(trellis)[-1] == ("send_message", "q2 revised")


async def test_a_bare_mention_edited_into_a_question_is_answered(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """ "@bot" alone gets a hint; editing a question into it then gets an answer."""
    ts = await slack.post(CHANNEL, ALICE, MENTION)
    await slack.wait_for(lambda: any("Ask me a question" in t for t in texts(slack, ts)))
    await slack.edit(CHANNEL, ts, f"{MENTION} revenue by region")
    await answered(slack, CHANNEL, ts, "You asked: revenue by region")


async def test_an_edit_and_a_follow_up_never_answer_at_once(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """While an edited question is re-answered, a new follow-up waits its turn."""
    later, revised = asyncio.Event(), asyncio.Event()
    trellis.responder = held({"q2": later, "q1 revised": revised})
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} q1")
    await answered(slack, CHANNEL, ts, "You asked: q1")
    await slack.post(CHANNEL, ALICE, "q2", thread_ts=ts)
    await working_message(slack, CHANNEL, ts)
    await slack.edit(CHANNEL, ts, f"{MENTION} q1 revised")
    await trellis.wait_for_action("interrupt")  # q2 is moot: Trellis drops it with the edit
    await trellis.wait_for_action("edit_message")
    await slack.post(CHANNEL, BOB, "q3", thread_ts=ts)
    await slack.wait_for(lambda: any("as soon as" in t for t in texts(slack, ts)))
    assert ("send_message", "q3") not in asked(trellis)
    revised.set()
    await answered(slack, CHANNEL, ts, "You asked: q3")
    chat = next(iter(trellis.chats.values()))
    assert [m.content for m in chat.messages] == [
        "q1 revised",
        "You asked: q1 revised",
        "q3",
        "You asked: q3",
    ]


async def test_retry_of_an_earlier_question_keeps_later_answers(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Retry after later questions were answered asks again without dropping those answers."""
    failures = iter([True])

    def responder(q: Question) -> list[Step]:
        if q.text == "q1" and next(failures, False):
            return [Step.error("warehouse timed out", code="UPSTREAM", retryable=True)]
        return answer(f"You asked: {q.text}")

    trellis.responder = responder
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} q1")
    failed = await slack.wait_for(
        lambda: [m for m in replies(slack, CHANNEL, ts) if RETRY_ACTION in buttons(m)]
    )
    await slack.post(CHANNEL, BOB, "q2", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: q2")
    await slack.click(CHANNEL, failed[0]["ts"], RETRY_ACTION, user=ALICE)
    await answered(slack, CHANNEL, ts, "You asked: q1")
    assert "You asked: q2" in texts(slack, ts)
    assert asked(trellis)[-1] == ("send_message", "q1")
    chat = next(iter(trellis.chats.values()))
    assert "You asked: q2" in [m.content for m in chat.messages]


async def test_double_click_on_retry_asks_once(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Two Retry clicks on one failed answer re-ask once; the second click is told so."""
    failures = iter([True])

    def responder(q: Question) -> list[Step]:
        if next(failures, False):
            return [Step.error("warehouse timed out", code="UPSTREAM", retryable=True)]
        return answer(f"You asked: {q.text}")

    trellis.responder = responder
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} q1")
    failed = await slack.wait_for(
        lambda: [m for m in replies(slack, CHANNEL, ts) if RETRY_ACTION in buttons(m)]
    )
    seen = failed[0]["blocks"]
    await asyncio.gather(
        slack.click(CHANNEL, failed[0]["ts"], RETRY_ACTION, user=ALICE, seen_blocks=seen),
        slack.click(CHANNEL, failed[0]["ts"], RETRY_ACTION, user=BOB, seen_blocks=seen),
    )
    await answered(slack, CHANNEL, ts, "You asked: q1")
    await slack.wait_for(lambda: [e for e in slack.ephemerals if "nothing to retry" in e["text"]])
    assert len(asked(trellis)) == 2
    assert texts(slack, ts) == ["You asked: q1"]


async def test_shutdown_leaves_no_dead_stop_button(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """At shutdown, answers in progress and questions still waiting all end with a note."""
    gate = asyncio.Event()
    trellis.responder = held({"q1": gate})
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} q1")
    await trellis.wait_for_action("send_message")
    await slack.post(CHANNEL, ALICE, "q2", thread_ts=ts)
    await slack.wait_for(lambda: any("as soon as" in t for t in texts(slack, ts)))
    await bot.stop(grace=0.2)
    assert not any(STOP_ACTION in buttons(m) for m in replies(slack, CHANNEL, ts))
    shown = texts(slack, ts)
    assert sum("I was restarted" in t for t in shown) == 2, shown  # the answer and the waiting one
    assert sum(RETRY_ACTION in buttons(m) for m in replies(slack, CHANNEL, ts)) == 2
    assert not any("as soon as" in t for t in shown)
    assert ("send_message", "q2") not in asked(trellis)


async def test_a_question_deleted_while_it_waits_is_never_asked(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Deleting a follow-up that waits behind another answer means it is never sent to Trellis."""
    gate = asyncio.Event()
    trellis.responder = held({"q1": gate})
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} q1")
    await trellis.wait_for_action("send_message")
    q2 = await slack.post(CHANNEL, BOB, "q2", thread_ts=ts)
    await slack.wait_for(lambda: any("as soon as" in t for t in texts(slack, ts)))
    await slack.delete(CHANNEL, q2)
    gate.set()
    await answered(slack, CHANNEL, ts, "You asked: q1")
    await slack.wait_for(lambda: not any("as soon as" in t for t in texts(slack, ts)))
    assert asked(trellis) == [("send_message", "q1")]


@pytest.mark.edited_messages
async def test_stop_while_waiting_for_a_connection_sends_nothing(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """Stop on a question still waiting for a Trellis connection stops it at once, unsent."""
    gate = asyncio.Event()
    trellis.responder = held({"busy": gate})
    await start_bot(TRELLIS_MAX_CONNECTIONS="1")
    other = await slack.post(CHANNEL, BOB, f"{MENTION} busy")
    await trellis.wait_for_action("send_message")
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} q1")
    waiting = await slack.wait_for(
        lambda: [m for m in replies(slack, CHANNEL, ts) if "free Trellis connection" in body(m)]
    )
    await slack.click(CHANNEL, waiting[0]["ts"], STOP_ACTION, user=ALICE)
    await answered(slack, CHANNEL, ts, f"Stopped by <@{ALICE}>")
    gate.set()
    await answered(slack, CHANNEL, other, "You asked: busy")
    assert asked(trellis) == [("send_message", "busy")]
