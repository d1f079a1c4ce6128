"""`TurnRunner` with a fake turn source and renderer, the real Slack shell and an in-memory store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.bot.fakes import END, FakeRenderer, FakeTurnSource, memory_store, question, slack_io
from tests.helpers import ALICE, BOB, BOT_USER, CHANNEL, body, buttons, replies
from trellis_slack.bot.asks import Ask, Defaults
from trellis_slack.bot.lifecycle import ALREADY_COMPLETE, NO_FINAL, Status, StopClicked, StopFor
from trellis_slack.bot.turn import RESTARTED, TurnRunner
from trellis_slack.errors import (
    TrellisAuthError,
    TrellisConnectionLost,
    TrellisError,
    TrellisUnavailable,
)
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.slack.blocks import RETRY_ACTION, STOP_ACTION
from trellis_slack.slack.web import SlackIO
from trellis_slack.store.sqlite import SqliteStore
from trellis_slack.trellis.client import SendMessage
from trellis_slack.trellis.protocol import ChatMetadata, Message, TextDelta, Visualization

#: Every wait in these tests; each turn takes milliseconds.
WAIT = 2.0


@pytest.fixture
async def io(slack: FakeSlack) -> AsyncIterator[SlackIO]:
    async with slack_io(slack) as shell:
        yield shell


@pytest.fixture
async def store() -> AsyncIterator[SqliteStore]:
    async with memory_store() as opened:
        yield opened


@pytest.fixture
def source() -> FakeTurnSource:
    return FakeTurnSource()


@pytest.fixture
def renderer() -> FakeRenderer:
    return FakeRenderer()


@pytest.fixture
def runner(
    io: SlackIO, store: SqliteStore, source: FakeTurnSource, renderer: FakeRenderer
) -> TurnRunner:
    return TurnRunner(
        slack=io,
        trellis=source,
        store=store,
        renderer=renderer,
        defaults=Defaults(),
        update_interval=0.0,
    )


async def asked(slack: FakeSlack, store: SqliteStore, text: str = "How many orders?") -> Ask:
    """Alice asks in the channel; the question is recorded ``queued``, as intake leaves it."""
    ts = await slack.post(CHANNEL, ALICE, f"<@{BOT_USER}> {text}")
    record = question(CHANNEL, ts, ts, text)
    await store.add_question(record)
    return Ask(record, team_id=slack.team_id)


async def status(store: SqliteStore, ask: Ask) -> Status | None:
    record = await store.question(ask.channel_id, ask.question_ts)
    return None if record is None else record.status


def shown(message: dict[str, Any]) -> str:
    """What a bot message shows: the names of the files it shares, or its text."""
    files = message.get("files") or []
    return " ".join(f["name"] for f in files) if files else body(message)


async def shows(slack: FakeSlack, ask: Ask, text: str) -> dict[str, Any]:
    """Wait until a bot reply in the question's thread shows ``text``."""
    return await slack.wait_for(
        lambda: next((m for m in replies(slack, CHANNEL, ask.thread_ts) if text in shown(m)), None),
        timeout=WAIT,
    )


async def ended(run: asyncio.Task[Status]) -> Status:
    async with asyncio.timeout(WAIT):
        return await run


async def test_a_text_answer_replaces_the_working_message(
    slack: FakeSlack, store: SqliteStore, source: FakeTurnSource, runner: TurnRunner
) -> None:
    """A text-only answer becomes the working message itself: one post, no Stop left, answered."""
    ask = await asked(slack, store)
    source.will_answer(ChatMetadata("chat-1", "m-user"), Message("There are **42** orders.", "m1"))
    async with asyncio.timeout(WAIT):
        outcome = await runner.run(ask)
    assert outcome is Status.ANSWERED
    (message,) = replies(slack, CHANNEL, ask.thread_ts)
    assert "There are **42** orders." in body(message)
    assert STOP_ACTION not in buttons(message)
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert source.texts == ["How many orders?"]
    assert await status(store, ask) is Status.ANSWERED


async def test_streamed_text_shows_before_the_final_answer(
    slack: FakeSlack, store: SqliteStore, source: FakeTurnSource, runner: TurnRunner
) -> None:
    """Deltas show in the working message (with Stop) while streaming; the final answer wins."""
    ask = await asked(slack, store)
    pending = source.will_answer(TextDelta("Counting the"))
    run = asyncio.create_task(runner.run(ask))
    working = await shows(slack, ask, "Counting the")
    assert STOP_ACTION in buttons(working)
    pending.turn.send(TextDelta(" orders"), Message("Counted: 42 orders.", "m1"))
    assert await ended(run) is Status.ANSWERED
    (message,) = replies(slack, CHANNEL, ask.thread_ts)
    assert body(message) == "Counted: 42 orders."
    assert message["ts"] == working["ts"]
    assert await status(store, ask) is Status.ANSWERED


async def test_charts_are_posted_in_arrival_order_before_the_text(
    slack: FakeSlack,
    store: SqliteStore,
    source: FakeTurnSource,
    renderer: FakeRenderer,
    runner: TurnRunner,
) -> None:
    """Charts post in the order Trellis sent them, even if drawn out of order, then the answer."""
    ask = await asked(slack, store)
    renderer.after["v1"] = "v2"  # the first chart finishes drawing after the second
    source.will_answer(
        Visualization("v1", "chart", {"text": "Orders by month"}),
        Visualization("v2", "table", {"text": "Orders by region"}),
        Message("Both views are above.", "m1"),
    )
    async with asyncio.timeout(WAIT):
        outcome = await runner.run(ask)
    assert outcome is Status.ANSWERED
    assert renderer.finished == ["v2", "v1"]
    thread = [shown(m) for m in replies(slack, CHANNEL, ask.thread_ts)]
    assert thread == ["v1.png", ":information_source: Orders by region", "Both views are above."]
    assert not any(STOP_ACTION in buttons(m) for m in replies(slack, CHANNEL, ask.thread_ts))
    assert await status(store, ask) is Status.ANSWERED


async def test_stop_while_streaming_interrupts_and_says_stopped(
    slack: FakeSlack, store: SqliteStore, source: FakeTurnSource, runner: TurnRunner
) -> None:
    """Stop during the stream interrupts the turn once; the working message says who stopped it."""
    ask = await asked(slack, store)
    pending = source.will_answer(TextDelta("Counting"))
    run = asyncio.create_task(runner.run(ask))
    await shows(slack, ask, "Counting")
    assert await runner.stop(CHANNEL, ask.question_ts, StopClicked(BOB))
    assert await ended(run) is Status.STOPPED
    assert pending.turn.interrupts == 1
    (message,) = replies(slack, CHANNEL, ask.thread_ts)
    assert body(message).endswith(f"Stopped by <@{BOB}>.")
    assert buttons(message) == [RETRY_ACTION]
    assert await status(store, ask) is Status.STOPPED


async def test_a_final_answer_that_beats_stop_is_shown_and_the_clicker_told(
    slack: FakeSlack, store: SqliteStore, source: FakeTurnSource, runner: TurnRunner
) -> None:
    """When the answer ends before the interrupt lands, it is shown; only the clicker is told."""
    ask = await asked(slack, store)
    pending = source.will_answer(TextDelta("Counting"))
    pending.turn.on_interrupt = None  # Trellis had already sent its final message
    run = asyncio.create_task(runner.run(ask))
    await shows(slack, ask, "Counting")
    assert await runner.stop(CHANNEL, ask.question_ts, StopClicked(BOB))
    pending.turn.send(Message("Counted: 42 orders.", "m1"))
    assert await ended(run) is Status.ANSWERED
    assert pending.turn.interrupts == 1
    (message,) = replies(slack, CHANNEL, ask.thread_ts)
    assert body(message) == "Counted: 42 orders."
    assert [(e["user"], e["text"]) for e in slack.ephemerals] == [(BOB, ALREADY_COMPLETE)]
    assert await status(store, ask) is Status.ANSWERED


async def test_a_chart_after_stop_is_shown_only_with_the_final_answer(
    slack: FakeSlack, store: SqliteStore, source: FakeTurnSource, runner: TurnRunner
) -> None:
    """A chart arriving after Stop is held back, then posted above the answer that beat Stop."""
    ask = await asked(slack, store)
    pending = source.will_answer(TextDelta("Counting"))
    pending.turn.on_interrupt = None
    run = asyncio.create_task(runner.run(ask))
    await shows(slack, ask, "Counting")
    assert await runner.stop(CHANNEL, ask.question_ts, StopClicked(BOB))
    pending.turn.send(Visualization("v1", "chart", {"text": "Orders"}))
    pending.turn.send(Message("Counted: 42 orders.", "m1"))
    assert await ended(run) is Status.ANSWERED
    thread = [shown(m) for m in replies(slack, CHANNEL, ask.thread_ts)]
    assert thread == ["v1.png", "Counted: 42 orders."]


async def test_stop_while_waiting_to_be_entered_sends_nothing(
    slack: FakeSlack, store: SqliteStore, source: FakeTurnSource, runner: TurnRunner
) -> None:
    """Stop while the turn waits for a connection: the question is never sent, nothing to interrupt."""
    ask = await asked(slack, store)
    pending = source.will_answer(Message("never shown", "m1"), gate=asyncio.Event())
    run = asyncio.create_task(runner.run(ask))
    async with asyncio.timeout(WAIT):
        await pending.entering.wait()
    assert await runner.stop(CHANNEL, ask.question_ts, StopClicked(ALICE))
    assert await ended(run) is Status.STOPPED
    assert not pending.entered
    assert pending.turn.interrupts == 0
    (message,) = replies(slack, CHANNEL, ask.thread_ts)
    assert body(message).endswith(f"Stopped by <@{ALICE}>.")
    assert await status(store, ask) is Status.STOPPED


@pytest.mark.parametrize(
    ("error", "words", "retry"),
    [
        (TrellisConnectionLost("socket closed"), "connection to Trellis was lost", True),
        (TrellisAuthError("token rejected"), "did not accept the bot's credentials", False),
    ],
)
async def test_a_trellis_error_from_the_stream_is_a_failure(
    *,
    slack: FakeSlack,
    store: SqliteStore,
    source: FakeTurnSource,
    runner: TurnRunner,
    error: TrellisError,
    words: str,
    retry: bool,
) -> None:
    """A Trellis error mid-stream becomes the failure in plain words, with Retry if it can help."""
    ask = await asked(slack, store)
    source.will_answer(TextDelta("Counting"), error)
    async with asyncio.timeout(WAIT):
        outcome = await runner.run(ask)
    assert outcome is Status.FAILED
    (message,) = replies(slack, CHANNEL, ask.thread_ts)
    assert words in body(message)
    assert buttons(message) == ([RETRY_ACTION] if retry else [])
    assert await status(store, ask) is Status.FAILED


async def test_a_stream_that_ends_without_a_final_message_fails_with_retry(
    slack: FakeSlack, store: SqliteStore, source: FakeTurnSource, runner: TurnRunner
) -> None:
    """A stream that just stops (no final frame, no Stop) is a failure with Retry, not silence."""
    ask = await asked(slack, store)
    source.will_answer(TextDelta("Counting"), END)
    async with asyncio.timeout(WAIT):
        outcome = await runner.run(ask)
    assert outcome is Status.FAILED
    (message,) = replies(slack, CHANNEL, ask.thread_ts)
    assert NO_FINAL in body(message)
    assert buttons(message) == [RETRY_ACTION]
    assert await status(store, ask) is Status.FAILED


async def test_a_question_deleted_just_before_it_runs_is_not_asked(
    slack: FakeSlack, store: SqliteStore, source: FakeTurnSource, runner: TurnRunner
) -> None:
    """A question already ``deleted`` in the store when its turn comes is not sent; nothing stays."""
    ask = await asked(slack, store)
    assert await store.update_question(CHANNEL, ask.question_ts, status=Status.DELETED)
    async with asyncio.timeout(WAIT):
        outcome = await runner.run(ask)
    assert outcome is Status.DELETED
    assert source.requests == []
    assert replies(slack, CHANNEL, ask.thread_ts) == []
    assert await store.bot_posts(CHANNEL, ask.question_ts) == []
    assert await status(store, ask) is Status.DELETED


async def test_a_shutdown_stop_ends_as_a_failure_with_retry(
    slack: FakeSlack, store: SqliteStore, source: FakeTurnSource, runner: TurnRunner
) -> None:
    """A stop by the bot itself (a restart) interrupts, then offers Retry: nobody chose to stop."""
    ask = await asked(slack, store)
    pending = source.will_answer(TextDelta("Counting"))
    run = asyncio.create_task(runner.run(ask))
    await shows(slack, ask, "Counting")
    stop = StopFor("I am restarting; click Retry to ask again.", offers_retry=True)
    assert await runner.stop(CHANNEL, ask.question_ts, stop)
    assert await ended(run) is Status.FAILED
    assert pending.turn.interrupts == 1
    (message,) = replies(slack, CHANNEL, ask.thread_ts)
    assert "I am restarting" in body(message)
    assert buttons(message) == [RETRY_ACTION]
    assert await status(store, ask) is Status.FAILED


async def test_a_working_message_slack_refuses_is_told_to_the_asker(
    slack: FakeSlack, store: SqliteStore, source: FakeTurnSource, runner: TurnRunner
) -> None:
    """No post allowed in the thread: Trellis is not asked, the asker is told privately, failed."""
    ask = await asked(slack, store)
    slack.fail("chat.postMessage", "not_in_channel")
    async with asyncio.timeout(WAIT):
        outcome = await runner.run(ask)
    assert outcome is Status.FAILED
    assert source.requests == []
    assert [e["user"] for e in slack.ephemerals] == [ALICE]
    assert "not answered" in slack.ephemerals[0]["text"]
    assert await status(store, ask) is Status.FAILED


async def test_the_same_visualization_twice_is_posted_once(
    slack: FakeSlack, store: SqliteStore, source: FakeTurnSource, runner: TurnRunner
) -> None:
    """Trellis sending one visualization id twice shows it once, above the answer."""
    ask = await asked(slack, store)
    chart = Visualization("v1", "chart", {"text": "Orders"})
    source.will_answer(chart, chart, Message("One chart above.", "m1"))
    async with asyncio.timeout(WAIT):
        assert await runner.run(ask) is Status.ANSWERED
    thread = [shown(m) for m in replies(slack, CHANNEL, ask.thread_ts)]
    assert thread == ["v1.png", "One chart above."]


async def test_a_follow_up_continues_the_chat_trellis_named(
    slack: FakeSlack, store: SqliteStore, source: FakeTurnSource, runner: TurnRunner
) -> None:
    """The chat id from the first answer's metadata is where the thread's next question goes."""
    first = await asked(slack, store)
    source.will_answer(ChatMetadata("chat-7", "m-user"), Message("42 orders.", "m1"))
    async with asyncio.timeout(WAIT):
        assert await runner.run(first) is Status.ANSWERED
    ts = await slack.post(CHANNEL, ALICE, "And by region?", thread_ts=first.thread_ts)
    record = question(CHANNEL, ts, first.thread_ts, "And by region?")
    await store.add_question(record)
    source.will_answer(Message("North leads.", "m2"))
    async with asyncio.timeout(WAIT):
        assert await runner.run(Ask(record, team_id=slack.team_id)) is Status.ANSWERED
    chats = [r.chat_id if isinstance(r, SendMessage) else "an edit" for r in source.requests]
    assert chats == [None, "chat-7"]
    saved = await store.question(CHANNEL, first.question_ts)
    assert saved is not None
    assert saved.trellis_message_id == "m-user"


async def test_a_trellis_that_cannot_be_reached_fails_with_retry(
    slack: FakeSlack, store: SqliteStore, source: FakeTurnSource, runner: TurnRunner
) -> None:
    """Trellis unreachable while the turn is entered: the working message says so, with Retry."""
    ask = await asked(slack, store)
    source.will_answer(fails=TrellisUnavailable("no route"))
    async with asyncio.timeout(WAIT):
        assert await runner.run(ask) is Status.FAILED
    (message,) = replies(slack, CHANNEL, ask.thread_ts)
    assert "could not reach Trellis" in body(message)
    assert buttons(message) == [RETRY_ACTION]
    assert await status(store, ask) is Status.FAILED


async def test_an_unexpected_error_is_still_answered(
    slack: FakeSlack, store: SqliteStore, source: FakeTurnSource, runner: TurnRunner
) -> None:
    """A bug while streaming (not a Trellis error) still ends the turn in words, with Retry."""
    ask = await asked(slack, store)
    source.will_answer(TextDelta("Counting"), RuntimeError("a bug"))
    async with asyncio.timeout(WAIT):
        assert await runner.run(ask) is Status.FAILED
    (message,) = replies(slack, CHANNEL, ask.thread_ts)
    assert "Something went wrong on my side" in body(message)
    assert "a bug" not in body(message)
    assert buttons(message) == [RETRY_ACTION]


async def test_a_shutdown_while_waiting_for_a_connection_offers_retry(
    slack: FakeSlack, store: SqliteStore, source: FakeTurnSource, runner: TurnRunner
) -> None:
    """Cancelled while it waits for a free connection: nothing sent, the message offers Retry."""
    ask = await asked(slack, store)
    pending = source.will_answer(Message("never shown", "m1"), gate=asyncio.Event())
    run = asyncio.create_task(runner.run(ask))
    await shows(slack, ask, "Waiting for a free Trellis connection")
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ended(run)
    assert not pending.entered
    (message,) = replies(slack, CHANNEL, ask.thread_ts)
    assert RESTARTED in body(message)
    assert buttons(message) == [RETRY_ACTION]
    assert await status(store, ask) is Status.FAILED
