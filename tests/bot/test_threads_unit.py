"""`ThreadTurns`: one answer at a time per thread, in ts order, as a claim in an in-memory store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.bot.fakes import ClaimCountingStore, question
from tests.helpers import CHANNEL
from trellis_slack.bot.lifecycle import Status
from trellis_slack.bot.threads import ThreadTurns
from trellis_slack.store.records import BotPost, PostKind

WAIT = 2.0
STATUS = PostKind.STATUS
THREAD, OTHER = "1700000000.000100", "1700000000.000900"
#: Two questions of THREAD (the root and a reply), and one of OTHER.
Q1, Q2, Q3 = THREAD, "1700000000.000200", OTHER


@pytest.fixture
async def store() -> AsyncIterator[ClaimCountingStore]:
    async with await ClaimCountingStore.open(":memory:") as opened:
        await opened.add_question(question(CHANNEL, Q1, THREAD, "first"))
        await opened.add_question(question(CHANNEL, Q2, THREAD, "second"))
        await opened.add_question(question(CHANNEL, Q3, OTHER, "elsewhere"))
        yield opened


@pytest.fixture
def turns(store: ClaimCountingStore) -> ThreadTurns:
    return ThreadTurns(store)


class Holder:
    """Holds the thread for one question until told to go, saying when it got the thread."""

    def __init__(
        self, turns: ThreadTurns, store: ClaimCountingStore, thread: str, ts: str, order: list[str]
    ) -> None:
        self.turns, self.store, self.thread, self.ts, self.order = turns, store, thread, ts, order
        self.inside = asyncio.Event()
        self.waited = asyncio.Event()
        self.waits = 0
        self.go = asyncio.Event()
        self.task = asyncio.create_task(self._hold())

    async def _hold(self) -> None:
        async def on_wait() -> None:
            self.waits += 1
            self.waited.set()

        async with self.turns.hold(CHANNEL, self.thread, self.ts, on_wait=on_wait):
            self.order.append(self.ts)
            # Its working message is up (the runner posts it first): later questions may say
            # that they wait.
            await self.store.add_bot_post(BotPost(CHANNEL, self.ts, f"{self.ts}1", None, STATUS))
            self.inside.set()
            await self.go.wait()

    async def answer(self) -> None:
        """Answer the question as the runner does (its status leaves ``queued``), then let go."""
        async with asyncio.timeout(WAIT):
            await self.inside.wait()
        assert await self.store.update_question(CHANNEL, self.ts, status=Status.ANSWERING)
        assert await self.store.update_question(CHANNEL, self.ts, status=Status.ANSWERED)
        self.go.set()
        async with asyncio.timeout(WAIT):
            await self.task


async def test_two_questions_of_one_thread_never_hold_it_at_once(
    store: ClaimCountingStore, turns: ThreadTurns
) -> None:
    """While one question holds its thread the next waits, says so once, and enters only after."""
    order: list[str] = []
    first = Holder(turns, store, THREAD, Q1, order)
    async with asyncio.timeout(WAIT):
        await first.inside.wait()
    second = Holder(turns, store, THREAD, Q2, order)
    async with asyncio.timeout(WAIT):
        await second.waited.wait()
    for looks in (2, 3):  # every change in the thread wakes it; it looks again, still refused
        assert await store.update_question(CHANNEL, Q1, text=f"first, reworded {looks}")
        async with asyncio.timeout(WAIT):
            await store.refusals(looks)
    assert order == [Q1]
    assert not second.inside.is_set()
    assert second.waits == 1
    await first.answer()
    await second.answer()
    assert order == [Q1, Q2]
    assert (first.waits, second.waits) == (0, 1)


async def test_the_earlier_question_goes_first_even_when_the_later_one_asks_first(
    store: ClaimCountingStore, turns: ThreadTurns
) -> None:
    """Both queued, the later question asks first: it waits, and the earlier one gets the thread."""
    order: list[str] = []
    second = Holder(turns, store, THREAD, Q2, order)
    async with asyncio.timeout(WAIT):
        await store.refusals(1)
    first = Holder(turns, store, THREAD, Q1, order)
    await first.answer()
    await second.answer()
    assert order == [Q1, Q2]
    assert first.waits == 0


async def test_a_holder_cancelled_while_holding_still_releases_the_thread(
    store: ClaimCountingStore, turns: ThreadTurns
) -> None:
    """A holder cancelled mid-answer (a shutdown) gives the thread back to the next question."""
    order: list[str] = []
    first = Holder(turns, store, THREAD, Q1, order)
    async with asyncio.timeout(WAIT):
        await first.inside.wait()
    assert await store.update_question(CHANNEL, Q1, status=Status.ANSWERING)
    second = Holder(turns, store, THREAD, Q2, order)
    async with asyncio.timeout(WAIT):
        await second.waited.wait()
    first.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first.task
    async with asyncio.timeout(WAIT):
        await second.inside.wait()
    assert turns.holding == 1
    await second.answer()
    assert turns.holding == 0


async def test_threads_are_independent(store: ClaimCountingStore, turns: ThreadTurns) -> None:
    """A question in another thread gets its own thread at once while this one is held."""
    order: list[str] = []
    first = Holder(turns, store, THREAD, Q1, order)
    async with asyncio.timeout(WAIT):
        await first.inside.wait()
    elsewhere = Holder(turns, store, OTHER, Q3, order)
    await elsewhere.answer()
    assert not elsewhere.waited.is_set()
    assert order == [Q1, Q3]
    await first.answer()
