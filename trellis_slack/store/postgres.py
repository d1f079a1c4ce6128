"""The PostgreSQL store: the `Store` Protocol on a psycopg connection pool, shared by replicas."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from trellis_slack.bot.lifecycle_status import PREDECESSORS, UNFINISHED, Status, may_change
from trellis_slack.errors import StateError
from trellis_slack.store.postgres_chats import PgChatUpkeep
from trellis_slack.store.postgres_fleet import PgFleet
from trellis_slack.store.postgres_private import PgPrivateAnswers
from trellis_slack.store.postgres_records import PgRecords
from trellis_slack.store.postgres_schema import Q_COLUMNS, SCHEMA_VERSION, migrate, question_of
from trellis_slack.store.postgres_turns import PgTurns, thread_note
from trellis_slack.store.records import QuestionRecord, Receipt, ts_order
from trellis_slack.store.target import describe, scrub

logger = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[TupleRow]

_SECONDS_PER_DAY = 86_400.0
#: Seconds calls fail at once after the database failed to answer, and the longest a retry
#: then waits for a connection (`PostgresStore._tx`).
_RECHECK = 1.0


class PostgresStore(PgTurns, PgRecords, PgChatUpkeep, PgPrivateAnswers, PgFleet):
    """Durable bot state in PostgreSQL, shared by every replica of the bot.

    Open with ``await PostgresStore.open(url)``. Each method is one transaction on a pooled
    connection; a dedicated connection LISTENs for the changes other replicas make, so
    `watch_thread` and `watch_commands` wake on them too. Times are the replicas' clocks (Unix
    seconds): keep them in sync (NTP), leases are compared across replicas.
    """

    def __init__(
        self, pool: AsyncConnectionPool[Conn], url: str, clock: Callable[[], float]
    ) -> None:
        """Use `PostgresStore.open`; this only assembles an opened pool."""
        self._pool = pool
        self._url = url
        self._where = describe(url)
        self._clock = clock
        self._closed = False
        #: Until when calls fail at once, the database having failed to answer (0: it answers).
        self._down_until = 0.0
        PgTurns.__init__(self)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        pool_size: int = 10,
        wait: float = 10.0,
        call_wait: float = 2.0,
    ) -> Self:
        """Connect to the database at ``url``, migrate it (under a lock) and start listening.

        ``pool_size``: at most that many connections; ``wait``: seconds to wait for the first
        connection; ``call_wait``: seconds a call waits for one (a database that cannot give a
        connection that soon is taken for unreachable, and the answers in progress go on).
        Raises `StateError` (never quoting the password) when the database cannot be reached,
        migrated or is newer than this version.
        """
        where = describe(url)
        try:
            async with await psycopg.AsyncConnection.connect(
                url, application_name="trellis-slack", connect_timeout=max(1, int(wait))
            ) as conn:
                old = await migrate(conn, where)
        except psycopg.Error as exc:
            raise StateError(scrub(f"cannot open the database {where}: {exc}", url)) from None
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=call_wait,
            open=False,
            name="trellis-store",
            kwargs={"application_name": "trellis-slack"},
            check=AsyncConnectionPool.check_connection,
        )
        try:
            await pool.open(wait=True, timeout=wait)
        except psycopg.Error as exc:
            await pool.close()
            raise StateError(scrub(f"cannot open the database {where}: {exc}", url)) from None
        store = cls(pool, url, clock)
        try:
            await store._start_listening()
        except BaseException:
            await pool.close()
            raise
        logger.info(
            "state store opened at %s (schema version %d, was %d)", where, SCHEMA_VERSION, old
        )
        return store

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
        """Stop listening and close every connection; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        await self._stop_listening()
        await self._pool.close()
        logger.info("state store %s closed", self._where)

    def _failure(self, exc: BaseException) -> StateError:
        return StateError(scrub(f"the state store at {self._where} failed: {exc}", self._url))

    @asynccontextmanager
    async def _tx(self, wait: float | None = None) -> AsyncIterator[Conn]:
        """One transaction on a pooled connection; database errors become `StateError`.

        Once the database failed to answer, calls fail at once for `_RECHECK` seconds, and then
        one call at a time tries again, waiting at most `_RECHECK` for a connection: while the
        database is away, an answer in progress (whose records can wait) is not held up for
        the pool's whole timeout at every call.
        """
        if self._closed:
            raise StateError("the state store is closed")
        now = time.monotonic()
        if now < self._down_until:
            raise StateError(f"the state store at {self._where} is unreachable")
        probing = self._down_until > 0
        if probing:
            self._down_until = now + _RECHECK  # the others fail fast while this call tries
            wait = _RECHECK
        try:
            async with self._pool.connection(wait) as conn:
                yield conn
        except psycopg.OperationalError as exc:  # the server is gone (PoolTimeout is one too)
            self._down_until = time.monotonic() + _RECHECK
            raise self._failure(exc) from exc
        except psycopg.Error as exc:
            raise self._failure(exc) from exc
        if probing:
            self._down_until = 0.0

    # --- event dedupe ---------------------------------------------------------------------------

    async def claim_event(self, channel_id: str, ts: str) -> bool:
        """True only the first time (channel, ts) is claimed by any replica, ever."""
        async with self._tx() as conn:
            return await self._claim_event(conn, channel_id, ts)

    async def _claim_event(self, conn: Conn, channel_id: str, ts: str) -> bool:
        cur = await conn.execute(
            "INSERT INTO event_claims (channel_id, ts, claimed_at) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (channel_id, ts, self._clock()),
        )
        return cur.rowcount == 1

    async def prune(self, older_than_days: float = 14.0) -> int:
        """Forget event claims older than `older_than_days`; return how many were forgotten."""
        if older_than_days < 0:
            raise ValueError("older_than_days must not be negative")
        cutoff = self._clock() - older_than_days * _SECONDS_PER_DAY
        async with self._tx() as conn:
            cur = await conn.execute("DELETE FROM event_claims WHERE claimed_at < %s", (cutoff,))
        if cur.rowcount:
            logger.info(
                "state store: forgot %d event claims older than %s days",
                cur.rowcount,
                older_than_days,
            )
        return cur.rowcount

    # --- questions ------------------------------------------------------------------------------

    async def add_question(self, question: QuestionRecord) -> None:
        """Insert or replace the question keyed by (channel, ts)."""
        async with self._tx() as conn:
            await self._add_question(conn, question)

    async def _add_question(self, conn: Conn, q: QuestionRecord) -> None:
        await conn.execute(
            f"INSERT INTO questions ({Q_COLUMNS}, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (channel_id, ts) DO UPDATE SET thread_ts = excluded.thread_ts,"
            " user_id = excluded.user_id, text = excluded.text,"
            " trellis_message_id = excluded.trellis_message_id, status = excluded.status,"
            " owner_id = excluded.owner_id, handler = excluded.handler,"
            " updated_at = excluded.updated_at",
            (
                q.channel_id,
                q.ts,
                q.thread_ts,
                q.user_id,
                q.text,
                q.trellis_message_id,
                str(q.status),
                q.owner_id,
                q.handler,
                self._clock(),
            ),
        )
        await thread_note(conn, q.channel_id, q.thread_ts)

    async def question(self, channel_id: str, ts: str) -> QuestionRecord | None:
        """The question asked by the message (channel, ts), or None."""
        async with self._tx() as conn:
            return await self._question(conn, channel_id, ts)

    async def _question(self, conn: Conn, channel_id: str, ts: str) -> QuestionRecord | None:
        cur = await conn.execute(
            f"SELECT {Q_COLUMNS} FROM questions WHERE channel_id = %s AND ts = %s",
            (channel_id, ts),
        )
        row = await cur.fetchone()
        return None if row is None else question_of(row)

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

        A new status is set only from a status `lifecycle.TRANSITIONS` allows it from, checked
        in the UPDATE itself (so two replicas cannot both move a question); False when the
        question is unknown or the change was refused (and then no field changes).
        """
        if status is not None:
            status = Status(status)
        if trellis_message_id is None and status is None and text is None and handler is None:
            return True
        guard = ""
        args: list[Any] = [
            trellis_message_id,
            None if status is None else str(status),
            text,
            handler,
            self._clock(),
            channel_id,
            ts,
        ]
        if status is not None:
            guard = " AND status = ANY(%s)"
            args.append(sorted(PREDECESSORS[status]))
        async with self._tx() as conn:
            cur = await conn.execute(
                "WITH changed AS (UPDATE questions SET"
                " trellis_message_id = COALESCE(%s, trellis_message_id),"
                " status = COALESCE(%s, status), text = COALESCE(%s, text),"
                " handler = COALESCE(%s, handler), updated_at = %s"
                f" WHERE channel_id = %s AND ts = %s{guard} RETURNING channel_id, thread_ts)"
                " SELECT pg_notify('trellis_slack', json_build_array('t', channel_id, thread_ts)::text)"
                " FROM changed",
                args,
            )
            if cur.rowcount:
                return True
            current = await self._question(conn, channel_id, ts)
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

    async def questions_in_thread(self, channel_id: str, thread_ts: str) -> list[QuestionRecord]:
        """The thread's questions, oldest first (Slack ts compared as numbers, not text)."""
        async with self._tx() as conn:
            return await self._questions_in_thread(conn, channel_id, thread_ts)

    async def _questions_in_thread(
        self, conn: Conn, channel_id: str, thread_ts: str
    ) -> list[QuestionRecord]:
        cur = await conn.execute(
            f"SELECT {Q_COLUMNS} FROM questions WHERE channel_id = %s AND thread_ts = %s",
            (channel_id, thread_ts),
        )
        rows = await cur.fetchall()
        return sorted((question_of(row) for row in rows), key=lambda q: ts_order(q.ts))

    async def thread_has_questions(self, channel_id: str, thread_ts: str) -> bool:
        """Whether the bot took a question in this thread (a declined one does not count)."""
        async with self._tx() as conn:
            return await self._thread_has_questions(conn, channel_id, thread_ts)

    async def _thread_has_questions(self, conn: Conn, channel_id: str, thread_ts: str) -> bool:
        cur = await conn.execute(
            "SELECT 1 FROM questions WHERE channel_id = %s AND thread_ts = %s AND status <> %s"
            " LIMIT 1",
            (channel_id, thread_ts, str(Status.DECLINED)),
        )
        return await cur.fetchone() is not None

    async def unfinished_questions(self) -> list[QuestionRecord]:
        """Every replica's unfinished questions (`lifecycle.UNFINISHED`); see `adopt_orphans`."""
        async with self._tx() as conn:
            cur = await conn.execute(
                f"SELECT {Q_COLUMNS} FROM questions WHERE status = ANY(%s)",
                (sorted(UNFINISHED),),
            )
            rows = await cur.fetchall()
        return sorted((question_of(row) for row in rows), key=lambda q: ts_order(q.ts))

    async def receive_question(
        self, question: QuestionRecord, *, claim: str, follow_up: bool
    ) -> Receipt:
        """Claim the delivery and record the question as ``received``, in one transaction.

        Whichever replica Slack hands each delivery to, one of them gets `Receipt.NEW` (the
        claim is a unique key). ``follow_up``: a plain reply, the bot's only when its thread has
        a question; it then claims nothing.
        """
        q = question
        async with self._tx() as conn:
            if follow_up and not await self._thread_has_questions(conn, q.channel_id, q.thread_ts):
                return Receipt.NOT_OURS
            if not await self._claim_event(conn, q.channel_id, claim):
                return Receipt.DUPLICATE
            existing = await self._question(conn, q.channel_id, q.ts)
            if existing is not None and not may_change(existing.status, Status.RECEIVED):
                logger.warning(
                    "state store: question %s/%s is %s, not asked again",
                    q.channel_id,
                    q.ts,
                    existing.status,
                )
                return Receipt.DUPLICATE
            await self._add_question(conn, replace(q, status=Status.RECEIVED))
        return Receipt.NEW
