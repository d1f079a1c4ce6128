"""End to end: native streaming (SLACK_STREAMING=native) through the local Slack and Trellis."""

from __future__ import annotations

import asyncio

from tests.helpers import (
    ALICE,
    BOB,
    BOT_USER,
    CHANNEL,
    DM,
    BotFactory,
    answered,
    body,
    buttons,
    replies,
)
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Question, Step, answer
from trellis_slack.slack.blocks import RETRY_ACTION, STOP_ACTION

MENTION = f"<@{BOT_USER}>"


def stream_in(slack: FakeSlack, thread_ts: str) -> str:
    """The ts of the one stream the bot started in the thread."""
    streams = slack.streams(CHANNEL, thread_ts)
    assert len(streams) == 1, streams
    return streams[0].ts


async def start_native(start_bot: BotFactory) -> None:
    await start_bot(SLACK_STREAMING="native")


async def test_an_answer_streams_into_one_message_with_its_steps_as_task_cards(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """Steps become task cards, text streams in, and the final answer replaces it all in place."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [
        Step.processing("thinking"),
        Step.processing("running_query"),
        Step.delta("Orders rose "),
        Step.pause(gate),
        *answer("Orders rose 12% in May."),
    ]
    await start_native(start_bot)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} how did orders do in May?")
    await slack.wait_for(lambda: slack.streams(CHANNEL, ts) or None)
    stream_ts = stream_in(slack, ts)
    await slack.wait_for(lambda: "Orders rose" in slack.stream_of(stream_ts).markdown or None)
    live = slack.stream_of(stream_ts)
    assert live.recipient_user_id == ALICE  # a channel stream names its reader
    assert list(live.task_statuses().values()) == ["complete", "in_progress"]
    assert any(STOP_ACTION in buttons(m) for m in replies(slack, CHANNEL, ts))
    gate.set()
    msgs = await answered(slack, CHANNEL, ts, "Orders rose 12% in May.")
    assert len(msgs) == 1
    assert msgs[0]["ts"] == stream_ts  # one message, in its place
    assert [b["type"] for b in msgs[0]["blocks"]] == ["markdown", "context_actions"]
    assert set(slack.stream_of(stream_ts).task_statuses().values()) == {"complete"}
    assert not slack.calls_to("assistant.threads.setStatus")  # a quick first step needs none


async def test_a_dm_stream_needs_no_recipient(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """In a DM the answer streams too, without recipient fields."""
    trellis.responder = lambda q: [Step.delta("Hi "), *answer("Hi there.")]
    await start_native(start_bot)
    ts = await slack.post(DM, ALICE, "hello")
    await answered(slack, DM, ts, "Hi there.")
    [stream] = slack.streams(DM, ts)
    assert stream.recipient_user_id is None


async def test_a_refused_stream_falls_back_to_an_edited_message(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """A workspace that cannot stream still gets the whole answer, in an edited message."""
    trellis.responder = lambda q: [Step.processing("thinking"), *answer("Fallback answer.")]
    slack.refuse_streams(CHANNEL)
    await start_native(start_bot)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} anything")
    msgs = await answered(slack, CHANNEL, ts, "Fallback answer.")
    assert len(msgs) == 1
    assert slack.streams(CHANNEL, ts) == []
    again = await slack.post(CHANNEL, ALICE, f"{MENTION} and again")
    await answered(slack, CHANNEL, again, "Fallback answer.")
    assert len(slack.calls_to("chat.startStream")) == 1  # the channel's refusal is remembered


async def test_a_stream_that_dies_midway_loses_nothing(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """A stream Slack ends early (message_not_in_streaming_state) still gets the full answer."""
    gate = asyncio.Event()
    final = "First part. Second part, written after the stream died."
    trellis.responder = lambda q: [
        Step.delta("First part. "),
        Step.pause(gate),
        Step.delta("Second part, "),
        *answer(final),
    ]
    await start_native(start_bot)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} long one")
    await slack.wait_for(lambda: slack.streams(CHANNEL, ts) or None)
    stream_ts = stream_in(slack, ts)
    await slack.wait_for(lambda: "First part" in slack.stream_of(stream_ts).markdown or None)
    slack.expire_stream(CHANNEL, stream_ts)
    gate.set()
    msgs = await answered(slack, CHANNEL, ts, final)
    assert [m["ts"] for m in msgs] == [stream_ts]


async def test_a_chart_sits_inside_the_answer(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """Charts are shown inside the answer message (image blocks), not as messages of their own."""
    trellis.responder = lambda q: [
        Step.chart("bar", [("north", 3), ("south", 5)], title="Orders by region"),
        *answer("South leads."),
    ]
    await start_native(start_bot)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} orders by region")
    msgs = await answered(slack, CHANNEL, ts, "South leads.")
    assert len(msgs) == 1
    kinds = [b["type"] for b in msgs[0]["blocks"]]
    assert kinds == ["image", "markdown", "context_actions"]
    file_id = msgs[0]["blocks"][0]["slack_file"]["id"]
    assert slack.files[file_id].channel is None  # uploaded without a message of its own


async def test_a_follow_up_asked_while_streaming_is_answered_below_it(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """The first answer keeps its place above the follow-up's, which waits for it."""
    gate = asyncio.Event()

    def responder(q: Question) -> list[Step]:
        if q.text == "first":
            return [Step.delta("One "), Step.pause(gate), *answer("First answer.")]
        return answer(f"You asked: {q.text}")

    trellis.responder = responder
    await start_native(start_bot)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} first")
    await slack.wait_for(lambda: slack.streams(CHANNEL, ts) or None)
    await slack.post(CHANNEL, BOB, "second", thread_ts=ts)
    await slack.wait_for(lambda: any("as soon as" in body(m) for m in replies(slack, CHANNEL, ts)))
    gate.set()
    msgs = await answered(slack, CHANNEL, ts, "You asked: second")
    texts = [body(m) for m in msgs]
    first = next(i for i, t in enumerate(texts) if "First answer." in t)
    second = next(i for i, t in enumerate(texts) if "You asked: second" in t)
    assert first < second


async def test_slacks_own_stop_interrupts_like_the_button(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """agent_session_stopped stops the answer in Trellis, and the message says who stopped it."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [Step.delta("Thinking "), Step.pause(gate), *answer("never")]
    await start_native(start_bot)
    ts = await slack.post(DM, ALICE, "a slow one")
    await slack.wait_for(lambda: slack.streams(DM, ts) or None)
    await trellis.wait_for_action("send_message")
    await slack.stop_agent(DM, ts, user=ALICE)
    await trellis.wait_for_action("interrupt")
    msgs = await slack.wait_for(
        lambda: [m for m in replies(slack, DM, ts) if "stopped" in body(m).lower()] or None
    )
    assert not any(STOP_ACTION in buttons(m) for m in msgs)
    gate.set()


async def test_an_edited_question_is_answered_in_the_old_answers_place(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """Editing the first question re-answers it in its own place, above the later question."""
    trellis.responder = lambda q: answer(f"You asked: {q.text}")
    await start_native(start_bot)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} first")
    [old] = await answered(slack, CHANNEL, ts, "You asked: first")
    await slack.post(CHANNEL, ALICE, "second", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: second")
    await slack.edit(CHANNEL, ts, f"{MENTION} first, by region")
    msgs = await answered(slack, CHANNEL, ts, "You asked: first, by region")
    again = next(m for m in msgs if "first, by region" in body(m))
    assert again["ts"] == old["ts"]  # the same message: the answer kept its place
    assert not any("You asked: second" in body(m) for m in msgs)  # Trellis dropped it


async def test_retry_answers_in_the_failures_place(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """Retry turns the failure message itself into the new answer."""
    attempts = 0

    def responder(q: Question) -> list[Step]:
        nonlocal attempts
        attempts += 1
        return [Step.drop()] if attempts == 1 else answer("Second time lucky.")

    trellis.responder = responder
    await start_native(start_bot)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} flaky")
    failed = await slack.wait_for(
        lambda: [m for m in replies(slack, CHANNEL, ts) if RETRY_ACTION in buttons(m)] or None
    )
    await slack.click(CHANNEL, failed[0]["ts"], RETRY_ACTION, user=ALICE)
    msgs = await answered(slack, CHANNEL, ts, "Second time lucky.")
    assert [m["ts"] for m in msgs] == [failed[0]["ts"]]


async def test_slacks_status_line_shows_while_trellis_shows_nothing(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """A slow start gets Slack's status line with loading messages; it goes at the first piece."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [Step.pause(gate), Step.processing("thinking"), *answer("Done.")]
    await start_bot(SLACK_STREAMING="native", status_after=0.0)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} slow to start")
    await slack.wait_for(lambda: slack.loading_messages(CHANNEL, ts) or None)
    assert slack.status(CHANNEL, ts)
    gate.set()
    await answered(slack, CHANNEL, ts, "Done.")
    await slack.wait_for(lambda: slack.status(CHANNEL, ts) == "" or None)
