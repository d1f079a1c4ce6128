"""The SQLite store's thread claims: one answer at a time per thread, and waking its waiters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlite_utils import Database

from trellis_slack.bot.lifecycle_status import UNFINISHED, Status
from trellis_slack.store.records import BotPost, PostKind, QuestionRecord, ts_order

_T = TypeVar("_T")


class TurnClaims:
    """Who answers in each thread right now; `SqliteStore` runs the SQL for these."""

    _db: Database
    _clock: Callable[[], float]
    _loop: asyncio.AbstractEventLoop
    _waiters: dict[tuple[str, str], asyncio.Event]

    if TYPE_CHECKING:  # provided by SqliteStore and Records

        async def _run(self, fn: Callable[..., _T], /, *args: Any) -> _T: ...

        def _questions_in_thread(self, channel_id: str, thread_ts: str) -> list[QuestionRecord]: ...

        def _thread_of(self, channel_id: str, ts: str) -> str | None: ...

        def _add_bot_post_row(self, post: BotPost) -> None: ...

    # --- one answer at a time per thread --------------------------------------------------------

    async def claim_turn(
        self, channel_id: str, thread_ts: str, question_ts: str, holder: str, *, replica: str = ""
    ) -> bool:
        """Take the thread for answering ``question_ts`` on behalf of ``replica``, in one transaction.

        Refused while a live claim holds it, or while an earlier question of the thread still
        waits (``received`` or ``queued``): answers come in the order the questions were asked.
        A claim whose replica's heartbeat expired (or never existed) is taken over; one naming
        no replica ("") never expires.
        """
        return await self._run(
            self._claim_turn, channel_id, thread_ts, question_ts, holder, replica
        )

    def _claim_turn(
        self, channel_id: str, thread_ts: str, question_ts: str, holder: str, replica: str
    ) -> bool:
        with self._db.atomic():
            held = self._db.execute(
                "SELECT replica FROM thread_turns WHERE channel_id = ? AND thread_ts = ?",
                (channel_id, thread_ts),
            ).fetchone()
            if held is not None and (held[0] == "" or self._is_live(held[0])):
                return False
            mine = ts_order(question_ts)
            waiting = (Status.RECEIVED, Status.QUEUED)
            for q in self._questions_in_thread(channel_id, thread_ts):
                if q.status in waiting and q.ts != question_ts and ts_order(q.ts) < mine:
                    return False
            self._db.execute(
                "INSERT OR REPLACE INTO thread_turns"
                " (channel_id, thread_ts, question_ts, holder, claimed_at, replica)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (channel_id, thread_ts, question_ts, holder, self._clock(), replica),
            )
        return True

    def _is_live(self, replica: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM replicas WHERE replica = ? AND expires_at > ?", (replica, self._clock())
        ).fetchone()
        return row is not None

    async def turn_replica(self, channel_id: str, thread_ts: str) -> str | None:
        """The live replica holding the thread's claim; None when none does (or it names none)."""
        return await self._run(self._turn_replica, channel_id, thread_ts)

    def _turn_replica(self, channel_id: str, thread_ts: str) -> str | None:
        row = self._db.execute(
            "SELECT replica FROM thread_turns WHERE channel_id = ? AND thread_ts = ?",
            (channel_id, thread_ts),
        ).fetchone()
        if row is None or not row[0] or not self._is_live(row[0]):
            return None
        return str(row[0])

    async def earlier_questions_shown(
        self, channel_id: str, thread_ts: str, question_ts: str
    ) -> bool:
        """Whether every unfinished question asked before ``question_ts`` in the thread already
        shows its working (or waiting) message, so a message posted now lands below theirs."""
        return await self._run(self._earlier_questions_shown, channel_id, thread_ts, question_ts)

    def _earlier_questions_shown(self, channel_id: str, thread_ts: str, question_ts: str) -> bool:
        mine = ts_order(question_ts)
        for q in self._questions_in_thread(channel_id, thread_ts):
            if q.status not in UNFINISHED or q.ts == question_ts or ts_order(q.ts) > mine:
                continue
            shown = self._db.execute(
                "SELECT 1 FROM bot_posts WHERE channel_id = ? AND question_ts = ? AND kind = ?"
                " LIMIT 1",
                (channel_id, q.ts, PostKind.STATUS),
            ).fetchone()
            if shown is None:
                return False
        return True

    def _add_bot_post(self, post: BotPost) -> None:
        self._add_bot_post_row(post)
        # A question now shows itself: the questions waiting behind it may say they wait. The
        # thread is looked up only when someone waits for one.
        if post.kind is PostKind.STATUS and self._waiters:
            self._changed(post.channel_id, self._thread_of(post.channel_id, post.question_ts))

    async def release_turn(self, channel_id: str, thread_ts: str, holder: str) -> None:
        """Give the thread back (only ``holder``'s claim is released)."""
        await self._run(self._release_turn, channel_id, thread_ts, holder)

    def _release_turn(self, channel_id: str, thread_ts: str, holder: str) -> None:
        self._db.execute(
            "DELETE FROM thread_turns WHERE channel_id = ? AND thread_ts = ? AND holder = ?",
            (channel_id, thread_ts, holder),
        )
        self._changed(channel_id, thread_ts)

    async def release_turns(self) -> int:
        """Forget every thread claim (at start-up: the process that held them is gone)."""
        return await self._run(self._release_turns)

    def _release_turns(self) -> int:
        return int(self._db.execute("DELETE FROM thread_turns").rowcount)

    def watch_thread(self, channel_id: str, thread_ts: str) -> asyncio.Event:
        """An event set at the next change in the thread (a question's status, or its claim).

        One process owns a SQLite file, so every change is seen here as it is made: the worker
        thread checks for watchers after applying a change, so a watcher registered before it
        asks for something (a claim) cannot miss a change that follows.
        """
        return self._waiters.setdefault((channel_id, thread_ts), asyncio.Event())

    def _changed(self, channel_id: str, thread_ts: str | None) -> None:
        """Wake whoever waits for this thread (called on the worker thread)."""
        if thread_ts is None or (channel_id, thread_ts) not in self._waiters:
            return
        self._loop.call_soon_threadsafe(self._wake, channel_id, thread_ts)

    def _wake(self, channel_id: str, thread_ts: str) -> None:
        event = self._waiters.pop((channel_id, thread_ts), None)
        if event is not None:
            event.set()
