"""One answer at a time per thread, in the order its questions were asked: a claim in the store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from trellis_slack.bot.storing import until_stored
from trellis_slack.errors import StateError
from trellis_slack.store.base import Store

log = logging.getLogger(__name__)

#: How long a waiter sleeps between looks when nothing wakes it (a safety net: the store wakes it
#: on every change in the thread).
RECHECK_SECONDS = 2.0


class ThreadTurns:
    """Hands out threads to answers, edits and deletions through `Store.claim_turn`.

    The claim lives in the store, not in an ``asyncio.Lock``, so it holds for every process that
    shares the store; the store grants it only to the earliest question of the thread still
    waiting, so answers come in the order the questions were asked — whatever the order in which
    Slack delivered them or the bot's Slack calls finished.
    """

    def __init__(
        self, store: Store, *, recheck: float = RECHECK_SECONDS, replica: str = ""
    ) -> None:
        self.store = store
        self.recheck = recheck
        #: The replica the claims are made for: they last while its heartbeat does (`bot.fleet`).
        self.replica = replica
        self._instance = uuid.uuid4().hex[:12]
        self.holding = 0

    @asynccontextmanager
    async def hold(
        self,
        channel_id: str,
        thread_ts: str,
        question_ts: str,
        *,
        on_wait: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[None]:
        """Hold the thread for work on ``question_ts``; ``on_wait`` runs once if it must wait."""
        holder = f"{self._instance}:{question_ts}:{uuid.uuid4().hex[:8]}"
        said = False
        while True:
            # Watched before the claim is tried, so a change right after the refusal still wakes
            # this waiter (no lost wake-up).
            changed = self.store.watch_thread(channel_id, thread_ts)
            try:
                if await self.store.claim_turn(
                    channel_id, thread_ts, question_ts, holder, replica=self.replica
                ):
                    break
                # The note that it waits is posted only once every earlier question shows its
                # own message, so the thread's messages (and the answers replacing them) stay in
                # the order the questions were asked.
                if (
                    not said
                    and on_wait is not None
                    and await self.store.earlier_questions_shown(channel_id, thread_ts, question_ts)
                ):
                    said = True
                    await on_wait()
            except StateError as exc:
                # The store is away: keep waiting (it comes back), never give the question up.
                log.warning("could not claim the thread (trying again): %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.recheck):
                    await changed.wait()
        self.holding += 1
        try:
            yield
        finally:
            self.holding -= 1
            # Shielded: a cancelled holder must still give the thread back.
            await asyncio.shield(self._release(channel_id, thread_ts, holder))

    async def _release(self, channel_id: str, thread_ts: str, holder: str) -> None:
        """Give the thread back, trying again while the store is away: a claim left behind by
        a live replica would hold the thread until that replica stops."""
        await until_stored(
            lambda: self.store.release_turn(channel_id, thread_ts, holder),
            "the thread given back",
            every=self.recheck,
        )
