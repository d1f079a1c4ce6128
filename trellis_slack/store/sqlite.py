"""The SQLite store: the `Store` Protocol in one file, all database work on one worker thread."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlite_utils import Database

from trellis_slack.bot.lifecycle_status import PREDECESSORS, UNFINISHED, Status, may_change
from trellis_slack.errors import StateError
from trellis_slack.store.records import (
    QuestionRecord,
    Receipt,
    ts_order,
)
from trellis_slack.store.schema import MEMORY, open_sync
from trellis_slack.store.sqlite_chats import ChatUpkeep
from trellis_slack.store.sqlite_feedback import Votes
from trellis_slack.store.sqlite_fleet import Fleet
from trellis_slack.store.sqlite_private import PrivateAnswers
from trellis_slack.store.sqlite_records import Records
from trellis_slack.store.sqlite_steps import Steps
from trellis_slack.store.sqlite_turns import TurnClaims

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

_SECONDS_PER_DAY = 86_400.0


def _question_of(row: dict[str, Any]) -> QuestionRecord:
    return QuestionRecord(
        channel_id=row["channel_id"],
        ts=row["ts"],
        thread_ts=row["thread_ts"],
        user_id=row["user_id"],
        text=row["text"],
        trellis_message_id=row["trellis_message_id"],
        status=row["status"],
        owner_id=row["owner_id"],
        handler=row.get("handler") or "",
    )


class SqliteStore(TurnClaims, Records, Votes, ChatUpkeep, Steps, PrivateAnswers, Fleet):
    """Durable bot state in one SQLite file, all database work on one worker thread.

    Open with ``await SqliteStore.open(path)``; every method is a coroutine that runs its SQL on the
    store's single worker thread, so the event loop never waits on the disk and calls are
    serialised in the order they were made.
    """

    def __init__(
        self,
        db: Database,
        executor: ThreadPoolExecutor,
        where: str,
        clock: Callable[[], float],
    ) -> None:
        """Use `SqliteStore.open`; this only assembles an already opened store."""
        self._db = db
        self._executor = executor
        self._where = where
        self._clock = clock
        self._closed = False
        self._close_done: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._waiters: dict[tuple[str, str], asyncio.Event] = {}
        self._mail: dict[str, asyncio.Event] = {}

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> Self:
        """Open (creating and migrating if needed) the state file at `path`; ":memory:" for tests.

        `clock` gives the current Unix time, for claim ages (tests pass a fake one).
        Raises `StateError` when the file cannot be created, opened or migrated.
        """
        where = os.fspath(path)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trellis-store")
        loop = asyncio.get_running_loop()
        try:
            try:
                db = await loop.run_in_executor(executor, open_sync, where)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise StateError(f"cannot open the state file {where}: {reason}") from exc
            except sqlite3.Error as exc:
                raise StateError(f"cannot open the state file {where}: {exc}") from exc
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(db, executor, where, clock)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Checkpoint the WAL into the main file and close; later calls do nothing."""
        if self._close_done is None:
            self._closed = True
            loop = asyncio.get_running_loop()
            self._close_done = loop.run_in_executor(self._executor, self._close_sync)
            self._close_done.add_done_callback(lambda _: self._executor.shutdown(wait=False))
        await asyncio.shield(self._close_done)

    def _close_sync(self) -> None:
        try:
            if self._where != MEMORY:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            logger.warning("state store %s: WAL checkpoint on close failed: %s", self._where, exc)
        finally:
            self._db.close()
        logger.info("state store %s closed", self._where)

    async def _run(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        """Run `fn(*args)` on the worker thread; SQLite errors become `StateError`."""
        if self._closed:
            raise StateError("the state store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        except sqlite3.Error as exc:
            raise StateError(f"the state store at {self._where} failed: {exc}") from exc

    # --- event dedupe ---------------------------------------------------------------------------

    async def claim_event(self, channel_id: str, ts: str) -> bool:
        """True only the first time (channel, ts) is claimed, ever (claims survive restarts)."""
        return await self._run(self._claim_event, channel_id, ts)

    def _claim_event(self, channel_id: str, ts: str) -> bool:
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO event_claims (channel_id, ts, claimed_at) VALUES (?, ?, ?)",
            (channel_id, ts, self._clock()),
        )
        return cursor.rowcount == 1

    async def prune(self, older_than_days: float = 14.0) -> int:
        """Forget event claims older than `older_than_days`; return how many were forgotten."""
        if older_than_days < 0:
            raise ValueError("older_than_days must not be negative")
        return await self._run(self._prune, older_than_days)

    def _prune(self, older_than_days: float) -> int:
        cutoff = self._clock() - older_than_days * _SECONDS_PER_DAY
        cursor = self._db.execute("DELETE FROM event_claims WHERE claimed_at < ?", (cutoff,))
        removed = cursor.rowcount
        if removed:
            logger.info(
                "state store: forgot %d event claims older than %s days", removed, older_than_days
            )
        return removed

    # --- questions ------------------------------------------------------------------------------

    async def add_question(self, question: QuestionRecord) -> None:
        """Insert or replace the question keyed by (channel, ts)."""
        await self._run(self._add_question, question)

    def _add_question(self, q: QuestionRecord) -> None:
        self._db.table("questions").upsert(
            {
                "channel_id": q.channel_id,
                "ts": q.ts,
                "thread_ts": q.thread_ts,
                "user_id": q.user_id,
                "text": q.text,
                "trellis_message_id": q.trellis_message_id,
                "status": q.status,
                "owner_id": q.owner_id,
                "handler": q.handler,
                "updated_at": self._clock(),
            },
            pk=("channel_id", "ts"),
        )
        self._changed(q.channel_id, q.thread_ts)

    async def question(self, channel_id: str, ts: str) -> QuestionRecord | None:
        """The question asked by the message (channel, ts), or None."""
        return await self._run(self._question, channel_id, ts)

    def _question(self, channel_id: str, ts: str) -> QuestionRecord | None:
        rows = self._db.table("questions").rows_where(
            "channel_id = ? AND ts = ?", [channel_id, ts], limit=1
        )
        row = next(rows, None)
        return None if row is None else _question_of(row)

    async def update_question(
        self,
        channel_id: str,
        ts: str,
        *,
        trellis_message_id: str | None = None,
        status: Status | None = None,
        text: str | None = None,
        handler: str | None = None,
    ) -> bool:
        """Change the given fields of a saved question (None leaves a field as it is).

        A new status is set only from a status `lifecycle.TRANSITIONS` allows it from (checked in
        the same statement, so two writers cannot both move a question); False when the question
        is unknown or the change was refused (and then no field changes).
        """
        if status is not None:
            status = Status(status)
        if trellis_message_id is None and status is None and text is None and handler is None:
            return True
        update = functools.partial(self._update_question, handler=handler)
        return await self._run(update, channel_id, ts, trellis_message_id, status, text)

    def _update_question(
        self,
        channel_id: str,
        ts: str,
        trellis_message_id: str | None,
        status: Status | None,
        text: str | None,
        *,
        handler: str | None = None,
    ) -> bool:
        sql = (
            "UPDATE questions SET"
            " trellis_message_id = COALESCE(?, trellis_message_id),"
            " status = COALESCE(?, status),"
            " text = COALESCE(?, text),"
            " handler = COALESCE(?, handler),"
            " updated_at = ?"
            " WHERE channel_id = ? AND ts = ?"
        )
        args: list[Any] = [trellis_message_id, status, text, handler, self._clock(), channel_id, ts]
        if status is not None:
            allowed = sorted(PREDECESSORS[status])
            sql += f" AND status IN ({', '.join('?' * len(allowed))})"
            args += allowed
        cursor = self._db.execute(sql, args)
        if cursor.rowcount == 0:
            current = self._question(channel_id, ts)
            if current is None:
                logger.debug("state store: no question %s/%s to update", channel_id, ts)
            else:
                logger.warning(
                    "state store: question %s/%s stays %s (cannot become %s)",
                    channel_id,
                    ts,
                    current.status,
                    status,
                )
            return False
        if self._waiters:  # the thread is looked up only when someone waits for one
            self._changed(channel_id, self._thread_of(channel_id, ts))
        return True

    def _thread_of(self, channel_id: str, ts: str) -> str | None:
        row = self._db.execute(
            "SELECT thread_ts FROM questions WHERE channel_id = ? AND ts = ?", (channel_id, ts)
        ).fetchone()
        return None if row is None else str(row[0])

    async def questions_in_thread(self, channel_id: str, thread_ts: str) -> list[QuestionRecord]:
        """The thread's questions, oldest first (Slack ts compared as numbers, not text)."""
        return await self._run(self._questions_in_thread, channel_id, thread_ts)

    def _questions_in_thread(self, channel_id: str, thread_ts: str) -> list[QuestionRecord]:
        rows = self._db.table("questions").rows_where(
            "channel_id = ? AND thread_ts = ?", [channel_id, thread_ts]
        )
        return sorted((_question_of(row) for row in rows), key=lambda q: ts_order(q.ts))

    async def thread_has_questions(self, channel_id: str, thread_ts: str) -> bool:
        """Whether the bot took a question in this thread (one indexed lookup).

        A question it declined (refused, empty) does not make the thread the bot's.
        """
        return await self._run(self._thread_has_questions, channel_id, thread_ts)

    def _thread_has_questions(self, channel_id: str, thread_ts: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM questions WHERE channel_id = ? AND thread_ts = ? AND status != ?"
            " LIMIT 1",
            (channel_id, thread_ts, Status.DECLINED),
        ).fetchone()
        return row is not None

    async def unfinished_questions(self) -> list[QuestionRecord]:
        """Questions left unfinished (`lifecycle.UNFINISHED`): a process ended before answering."""
        return await self._run(self._unfinished_questions)

    def _unfinished_questions(self) -> list[QuestionRecord]:
        unfinished = sorted(UNFINISHED)
        rows = self._db.table("questions").rows_where(
            f"status IN ({', '.join('?' * len(unfinished))})", unfinished
        )
        return sorted((_question_of(row) for row in rows), key=lambda q: ts_order(q.ts))

    async def receive_question(
        self, question: QuestionRecord, *, claim: str, follow_up: bool
    ) -> Receipt:
        """Claim the delivery and record the question as ``received``, in one transaction.

        Done before any Slack call, so a reply delivered right behind its question finds the
        thread already the bot's. ``follow_up``: a plain reply, the bot's only when its thread
        has a question (`thread_has_questions`); it then claims nothing.
        """
        return await self._run(self._receive_question, question, claim, follow_up)

    def _receive_question(self, q: QuestionRecord, claim: str, follow_up: bool) -> Receipt:
        with self._db.atomic():
            if follow_up and not self._thread_has_questions(q.channel_id, q.thread_ts):
                return Receipt.NOT_OURS
            if not self._claim_event(q.channel_id, claim):
                return Receipt.DUPLICATE
            existing = self._question(q.channel_id, q.ts)
            if existing is not None and not may_change(existing.status, Status.RECEIVED):
                logger.warning(
                    "state store: question %s/%s is %s, not asked again",
                    q.channel_id,
                    q.ts,
                    existing.status,
                )
                return Receipt.DUPLICATE
            self._add_question(replace(q, status=Status.RECEIVED))
        return Receipt.NEW
