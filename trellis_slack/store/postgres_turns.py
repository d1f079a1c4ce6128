"""The PostgreSQL store's thread claims, and LISTEN/NOTIFY waking waiters in every replica."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import psycopg
from psycopg.rows import TupleRow

from trellis_slack.bot.lifecycle_status import UNFINISHED, Status
from trellis_slack.errors import StateError
from trellis_slack.store.postgres_schema import CHANNEL
from trellis_slack.store.records import PostKind, QuestionRecord, ts_order
from trellis_slack.store.target import scrub

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

logger = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[TupleRow]

#: SQL true when the claim or slot row aliased ``t`` belongs to a live replica (%s: now).
#: A thread claim without a replica ("", from a caller that names none) never expires.
LIVE = "EXISTS (SELECT 1 FROM replicas r WHERE r.replica = t.replica AND r.expires_at > %s)"

#: Longest wait between two tries to listen again after the listening connection was lost.
_MAX_RELISTEN_DELAY = 5.0


async def thread_note(conn: Conn, channel_id: str, thread_ts: str) -> None:
    """Tell every replica, when this transaction commits, that the thread changed."""
    await conn.execute(
        "SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps(["t", channel_id, thread_ts]))
    )


async def command_note(conn: Conn, replica: str) -> None:
    """Tell every replica, when this transaction commits, that ``replica`` has mail."""
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps(["c", replica])))


class PgTurns:
    """Who answers in each thread, and the waiters woken by any replica's changes."""

    _url: str
    _where: str
    _closed: bool
    _clock: Callable[[], float]

    if TYPE_CHECKING:  # provided by PostgresStore

        def _tx(self, wait: float | None = None) -> AbstractAsyncContextManager[Conn]: ...

        async def _questions_in_thread(
            self, conn: Conn, channel_id: str, thread_ts: str
        ) -> list[QuestionRecord]: ...

    def __init__(self) -> None:
        self._waiters: dict[tuple[str, str], asyncio.Event] = {}
        self._mail: dict[str, asyncio.Event] = {}
        self._listener: asyncio.Task[None] | None = None
        self._first_conn: Conn
        #: Whether the listening connection is up (for `health`).
        self.listening = False

    # --- one answer at a time per thread --------------------------------------------------------

    async def claim_turn(
        self, channel_id: str, thread_ts: str, question_ts: str, holder: str, *, replica: str = ""
    ) -> bool:
        """Take the thread for answering ``question_ts`` on behalf of ``replica``.

        Refused while a live claim holds it, or while an earlier question of the thread still
        waits (``received`` or ``queued``). A claim whose replica's heartbeat expired is void:
        it is taken over. ``replica`` "" (a caller naming none) makes a claim that never
        expires; `release_turns` or `adopt_orphans` clears it.
        """
        now = self._clock()
        mine = ts_order(question_ts)
        waiting = (Status.RECEIVED, Status.QUEUED)
        async with self._tx() as conn:
            for q in await self._questions_in_thread(conn, channel_id, thread_ts):
                if q.status in waiting and q.ts != question_ts and ts_order(q.ts) < mine:
                    return False
            cur = await conn.execute(
                "INSERT INTO thread_turns AS t"
                " (channel_id, thread_ts, question_ts, holder, claimed_at, replica)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (channel_id, thread_ts) DO UPDATE"
                " SET question_ts = excluded.question_ts, holder = excluded.holder,"
                " claimed_at = excluded.claimed_at, replica = excluded.replica"
                f" WHERE t.replica <> '' AND NOT {LIVE}",
                (channel_id, thread_ts, question_ts, holder, now, replica, now),
            )
            return cur.rowcount == 1

    async def turn_replica(self, channel_id: str, thread_ts: str) -> str | None:
        """The live replica holding the thread's claim; None when none does (or it names none)."""
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT t.replica FROM thread_turns t WHERE t.channel_id = %s"
                f" AND t.thread_ts = %s AND t.replica <> '' AND {LIVE}",
                (channel_id, thread_ts, self._clock()),
            )
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def earlier_questions_shown(
        self, channel_id: str, thread_ts: str, question_ts: str
    ) -> bool:
        """Whether every unfinished question asked before ``question_ts`` in the thread already
        shows its working (or waiting) message, so a message posted now lands below theirs."""
        mine = ts_order(question_ts)
        async with self._tx() as conn:
            earlier = [
                q.ts
                for q in await self._questions_in_thread(conn, channel_id, thread_ts)
                if q.status in UNFINISHED and q.ts != question_ts and ts_order(q.ts) <= mine
            ]
            if not earlier:
                return True
            cur = await conn.execute(
                "SELECT count(DISTINCT question_ts) FROM bot_posts WHERE channel_id = %s"
                " AND question_ts = ANY(%s) AND kind = %s",
                (channel_id, earlier, str(PostKind.STATUS)),
            )
            row = await cur.fetchone()
        return row is not None and int(row[0]) == len(set(earlier))

    async def release_turn(self, channel_id: str, thread_ts: str, holder: str) -> None:
        """Give the thread back (only ``holder``'s claim is released); every replica is told."""
        async with self._tx() as conn:
            await conn.execute(
                "DELETE FROM thread_turns WHERE channel_id = %s AND thread_ts = %s AND holder = %s",
                (channel_id, thread_ts, holder),
            )
            await thread_note(conn, channel_id, thread_ts)

    async def release_turns(self) -> int:
        """Forget the claims no live replica holds (those naming none included).

        At start-up of a process that names no replica, as SQLite's forgets every claim; the
        claims of live replicas sharing the database are kept.
        """
        async with self._tx() as conn:
            cur = await conn.execute(
                f"DELETE FROM thread_turns t WHERE t.replica = '' OR NOT {LIVE}", (self._clock(),)
            )
        return cur.rowcount

    # --- waking waiters, in this replica and the others -------------------------------------------

    def watch_thread(self, channel_id: str, thread_ts: str) -> asyncio.Event:
        """An event set at the next change in the thread made by any replica.

        Changes arrive by NOTIFY on a dedicated connection. A notification is never replayed: when
        that connection is lost every event is set (a spurious wake-up, never a missed one), and
        callers also recheck now and then.
        """
        return self._waiters.setdefault((channel_id, thread_ts), asyncio.Event())

    def watch_commands(self, replica: str) -> asyncio.Event:
        """An event set when a command for ``replica`` arrives (from any replica)."""
        return self._mail.setdefault(replica, asyncio.Event())

    def _dispatch(self, payload: str) -> None:
        try:
            note = json.loads(payload)
        except ValueError:
            return
        if isinstance(note, list) and len(note) == 3 and note[0] == "t":
            event = self._waiters.pop((str(note[1]), str(note[2])), None)
        elif isinstance(note, list) and len(note) == 2 and note[0] == "c":
            event = self._mail.pop(str(note[1]), None)
        else:
            return
        if event is not None:
            event.set()

    def _wake_all(self) -> None:
        waiters = [*self._waiters.values(), *self._mail.values()]
        self._waiters.clear()
        self._mail.clear()
        for event in waiters:
            event.set()

    async def _connect_listener(self) -> Conn:
        conn = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, application_name="trellis-slack-listen"
        )
        try:
            await conn.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _start_listening(self) -> None:
        try:
            conn = await self._connect_listener()
        except psycopg.Error as exc:
            raise StateError(
                scrub(f"cannot listen for changes in {self._where}: {exc}", self._url)
            ) from None
        self.listening = True
        self._first_conn = conn  # closed here if the task is cancelled before it starts
        self._listener = asyncio.create_task(self._listen(conn), name="trellis-store-listen")

    async def _stop_listening(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            if not self._first_conn.closed:
                await self._first_conn.close()
        self._wake_all()

    async def _listen(self, conn: Conn | None) -> None:
        """Dispatch notifications; listen again (waking everybody) whenever the link is lost."""
        delay = 0.1
        while not self._closed:
            try:
                if conn is None:
                    conn = await self._connect_listener()
                    self.listening = True
                    delay = 0.1
                    self._wake_all()  # what changed while nobody listened is unknown
                async for note in conn.notifies():
                    self._dispatch(note.payload)
            except psycopg.Error as exc:
                if self.listening:
                    logger.warning(
                        "state store %s: lost the change notifications (%s); listening again",
                        self._where,
                        scrub(str(exc), self._url),
                    )
            finally:  # cancelled (closing) too
                if conn is not None:
                    await conn.close()
            self.listening = False
            conn = None
            self._wake_all()
            await asyncio.sleep(delay)  # a retry delay, not a wait for something
            delay = min(delay * 2, _MAX_RELISTEN_DELAY)
