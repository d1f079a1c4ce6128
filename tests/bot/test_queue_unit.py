"""`AnswerQueue`: each queued question answered once its thread is free, with small fakes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.bot.fakes import ClaimCountingStore, FakeRenderer, FakeTurnSource, question, slack_io
from tests.helpers import ALICE, BOT_USER, CHANNEL, body, buttons, replies
from trellis_slack.bot.asks import Defaults
from trellis_slack.bot.lifecycle import Status
from trellis_slack.bot.queue import WAITING, AnswerQueue
from trellis_slack.bot.threads import ThreadTurns
from trellis_slack.bot.turn import RESTARTED, TurnRunner
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.slack.blocks import RETRY_ACTION
from trellis_slack.store.records import QuestionRecord
from trellis_slack.trellis.protocol import ChatMetadata, Message, TextDelta

WAIT = 2.0


@pytest.fixture
async def store() -> AsyncIterator[ClaimCountingStore]:
    async with await ClaimCountingStore.open(":memory:") as opened:
        yield opened


@pytest.fixture
def source() -> FakeTurnSource:
    return FakeTurnSource()


@pytest.fixture
async def queue(
    slack: FakeSlack, store: ClaimCountingStore, source: FakeTurnSource
) -> AsyncIterator[AnswerQueue]:
    async with slack_io(slack) as io:
        runner = TurnRunner(
            slack=io,
            trellis=source,
            store=store,
            renderer=FakeRenderer(),
            defaults=Defaults(),
            update_interval=0.0,
        )
        yield AnswerQueue(slack=io, store=store, runner=runner, turns=ThreadTurns(store))


async def asked(
    slack: FakeSlack, store: ClaimCountingStore, text: str, *, thread: str | None = None
) -> QuestionRecord:
    """Alice asks (in ``thread``, or in a new one); recorded ``queued``, as intake leaves it."""
    ts = await slack.post(CHANNEL, ALICE, f"<@{BOT_USER}> {text}", thread_ts=thread)
    record = question(CHANNEL, ts, thread or ts, text)
    await store.add_question(record)
    return record


def answer(queue: AnswerQueue, record: QuestionRecord) -> asyncio.Task[None]:
    return asyncio.create_task(queue.answer(record, team_id="T0TEAM", identity=None))


async def done(*tasks: asyncio.Task[None]) -> None:
    async with asyncio.timeout(WAIT):
        await asyncio.gather(*tasks)


def thread_of(slack: FakeSlack, record: QuestionRecord) -> list[str]:
    return [body(m) for m in replies(slack, CHANNEL, record.thread_ts)]


async def shows(slack: FakeSlack, record: QuestionRecord, text: str) -> dict[str, Any]:
    return await slack.wait_for(
        lambda: next(
            (m for m in replies(slack, CHANNEL, record.thread_ts) if text in body(m)), None
        ),
        timeout=WAIT,
    )


def notes_posted(slack: FakeSlack) -> int:
    return sum(1 for c in slack.calls_to("chat.postMessage") if c.args.get("text") == WAITING)


async def status(store: ClaimCountingStore, record: QuestionRecord) -> Status | None:
    found = await store.question(record.channel_id, record.ts)
    return None if found is None else found.status


async def test_two_questions_of_one_thread_never_run_at_once(
    slack: FakeSlack, store: ClaimCountingStore, source: FakeTurnSource, queue: AnswerQueue
) -> None:
    """A follow-up is not sent to Trellis while the answer above it streams; it is sent after."""
    first = await asked(slack, store, "How many orders?")
    second = await asked(slack, store, "And by region?", thread=first.ts)
    streaming = source.will_answer(TextDelta("Counting"))
    source.will_answer(Message("North leads.", "m2"))
    one = answer(queue, first)
    await shows(slack, first, "Counting")
    two = answer(queue, second)
    await shows(slack, second, WAITING)
    assert source.texts == ["How many orders?"]
    streaming.turn.send(Message("42 orders.", "m1"))
    await done(one, two)
    assert source.texts == ["How many orders?", "And by region?"]
    assert thread_of(slack, first) == ["42 orders.", "North leads."]
    assert (await status(store, first), await status(store, second)) == (Status.ANSWERED,) * 2


async def test_the_earlier_question_is_answered_first_even_when_the_later_asks_first(
    slack: FakeSlack, store: ClaimCountingStore, source: FakeTurnSource, queue: AnswerQueue
) -> None:
    """Three queued, their answers started last first: Trellis still gets them in ts order."""
    first = await asked(slack, store, "How many orders?")
    second = await asked(slack, store, "And by region?", thread=first.ts)
    third = await asked(slack, store, "And by month?", thread=first.ts)
    for n, text in enumerate(["42 orders.", "North leads.", "March peaks."]):
        source.will_answer(Message(text, f"m{n}"))
    three = answer(queue, third)
    async with asyncio.timeout(WAIT):
        await store.refusals(1)  # it tried, and waits for the questions above it
    two = answer(queue, second)
    async with asyncio.timeout(WAIT):
        await store.refusals(2)
    assert source.requests == []
    one = answer(queue, first)
    await done(one, two, three)
    assert source.texts == ["How many orders?", "And by region?", "And by month?"]
    assert thread_of(slack, first) == ["42 orders.", "North leads.", "March peaks."]


async def test_a_waiting_question_says_so_once(
    slack: FakeSlack, store: ClaimCountingStore, source: FakeTurnSource, queue: AnswerQueue
) -> None:
    """The "as soon as" note is posted once however often the waiter looks; it becomes the answer."""
    first = await asked(slack, store, "How many orders?")
    second = await asked(slack, store, "And by region?", thread=first.ts)
    streaming = source.will_answer(TextDelta("Counting"))
    source.will_answer(Message("North leads.", "m2"))
    one = answer(queue, first)
    await shows(slack, first, "Counting")
    two = answer(queue, second)
    note = await shows(slack, second, WAITING)
    looked = store.refused
    streaming.turn.send(ChatMetadata("chat-1", "m-user-1"))  # the store changes: it looks again
    async with asyncio.timeout(WAIT):
        await store.refusals(looked + 1)
    streaming.turn.send(Message("42 orders.", "m1"))
    await done(one, two)
    assert notes_posted(slack) == 1
    answered = replies(slack, CHANNEL, first.ts)
    assert [body(m) for m in answered] == ["42 orders.", "North leads."]
    assert answered[1]["ts"] == note["ts"]  # the note became the answer, in its place


async def test_a_question_deleted_while_waiting_is_not_asked_and_its_note_goes(
    slack: FakeSlack, store: ClaimCountingStore, source: FakeTurnSource, queue: AnswerQueue
) -> None:
    """Deleted while it waits: never sent to Trellis, and its waiting note is removed."""
    first = await asked(slack, store, "How many orders?")
    second = await asked(slack, store, "And by region?", thread=first.ts)
    streaming = source.will_answer(TextDelta("Counting"))
    one = answer(queue, first)
    await shows(slack, first, "Counting")
    two = answer(queue, second)
    await shows(slack, second, WAITING)
    assert await store.update_question(CHANNEL, second.ts, status=Status.DELETED)
    streaming.turn.send(Message("42 orders.", "m1"))
    await done(one, two)
    assert source.texts == ["How many orders?"]
    assert thread_of(slack, first) == ["42 orders."]
    assert await store.bot_posts(CHANNEL, second.ts) == []
    assert await status(store, second) is Status.DELETED


async def test_an_answer_cancelled_mid_way_says_so_and_frees_the_thread(
    slack: FakeSlack, store: ClaimCountingStore, source: FakeTurnSource, queue: AnswerQueue
) -> None:
    """A shutdown cancelling an answer leaves Retry on it, and the next question still runs."""
    first = await asked(slack, store, "How many orders?")
    second = await asked(slack, store, "And by region?", thread=first.ts)
    source.will_answer(TextDelta("Counting"))
    source.will_answer(Message("North leads.", "m2"))
    one = answer(queue, first)
    await shows(slack, first, "Counting")
    two = answer(queue, second)
    await shows(slack, second, WAITING)
    one.cancel()
    with pytest.raises(asyncio.CancelledError):
        await one
    await done(two)
    cut, answered = replies(slack, CHANNEL, first.ts)
    assert RESTARTED in body(cut)
    assert buttons(cut) == [RETRY_ACTION]
    assert body(answered) == "North leads."
    assert (await status(store, first), await status(store, second)) == (
        Status.FAILED,
        Status.ANSWERED,
    )


async def test_threads_are_answered_independently(
    slack: FakeSlack, store: ClaimCountingStore, source: FakeTurnSource, queue: AnswerQueue
) -> None:
    """A question in another thread is answered at once, without a note, while this one streams."""
    first = await asked(slack, store, "How many orders?")
    other = await asked(slack, store, "Top product?")
    streaming = source.will_answer(TextDelta("Counting"))
    source.will_answer(Message("Widgets.", "m2"))
    one = answer(queue, first)
    await shows(slack, first, "Counting")
    await done(answer(queue, other))
    assert thread_of(slack, other) == ["Widgets."]
    assert notes_posted(slack) == 0
    streaming.turn.send(Message("42 orders.", "m1"))
    await done(one)
    assert thread_of(slack, first) == ["42 orders."]
