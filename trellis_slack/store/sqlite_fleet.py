"""The SQLite store's replicas: heartbeats, orphans, commands, Trellis slots and rates."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from sqlite_utils import Database

from trellis_slack.bot.lifecycle_status import UNFINISHED
from trellis_slack.errors import StateError
from trellis_slack.store.records import (
    RATE_WINDOW,
    Command,
    QuestionRecord,
    StoreHealth,
    rate_wait,
    ts_order,
)

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: SQL true when the row aliased ``t`` belongs to a live replica (?: now).
_LIVE = "EXISTS (SELECT 1 FROM replicas r WHERE r.replica = t.replica AND r.expires_at > ?)"


class Fleet:
    """What replicas share beyond questions (see `store.base.Store`); `SqliteStore` runs the SQL.

    One process owns a SQLite file, so the "replicas" here are that process's successive runs
    (and tests): the same rules as PostgreSQL, with waking done in-process.
    """

    _db: Database
    _clock: Callable[[], float]
    _loop: asyncio.AbstractEventLoop
    _mail: dict[str, asyncio.Event]

    if TYPE_CHECKING:  # provided by SqliteStore and its other parts

        async def _run(self, fn: Callable[..., _T], /, *args: Any) -> _T: ...

        def _question(self, channel_id: str, ts: str) -> QuestionRecord | None: ...

        def _changed(self, channel_id: str, thread_ts: str | None) -> None: ...

    @contextlib.contextmanager
    def _immediate(self) -> Iterator[None]:
        """A write transaction taken before reading (another process on the file waits)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.conn.rollback()
            raise
        self._db.execute("COMMIT")

    async def heartbeat(self, replica: str, *, ttl: float) -> None:
        """Say that ``replica`` is alive until ``ttl`` seconds from now."""
        _named(replica)
        await self._run(self._heartbeat, replica, ttl)

    def _heartbeat(self, replica: str, ttl: float) -> None:
        self._db.execute(
            "INSERT INTO replicas (replica, expires_at) VALUES (?, ?)"
            " ON CONFLICT (replica) DO UPDATE SET expires_at = excluded.expires_at",
            (replica, self._clock() + ttl),
        )

    async def end_other_replicas(self, replica: str) -> None:
        """Take every other replica for dead now (their work becomes adoptable at once)."""
        await self._run(
            self._db.execute, "UPDATE replicas SET expires_at = 0 WHERE replica <> ?", (replica,)
        )

    async def retire_replica(self, replica: str) -> None:
        """A clean shutdown: drop the replica's heartbeat, thread claims, slots and commands."""
        await self._run(self._retire_replica, replica)

    def _retire_replica(self, replica: str) -> None:
        with self._db.atomic():
            threads = self._db.execute(
                "SELECT channel_id, thread_ts FROM thread_turns WHERE replica = ?", (replica,)
            ).fetchall()
            for table in ("replicas", "thread_turns", "slots", "commands"):
                self._db.execute(f"DELETE FROM {table} WHERE replica = ?", (replica,))
        for channel_id, thread_ts in threads:
            self._changed(channel_id, thread_ts)

    async def adopt_orphans(self, replica: str) -> list[QuestionRecord]:
        """Take over what dead replicas left; see `store.base.Store.adopt_orphans`."""
        _named(replica)
        return await self._run(self._adopt_orphans, replica)

    def _adopt_orphans(self, replica: str) -> list[QuestionRecord]:
        now = self._clock()
        unfinished = sorted(UNFINISHED)
        marks = ", ".join("?" * len(unfinished))
        dead_handler = (
            "handler <> ? AND NOT EXISTS (SELECT 1 FROM replicas r"
            " WHERE r.replica = questions.handler AND r.expires_at > ?)"
        )
        with self._immediate():
            keys = self._db.execute(
                f"SELECT channel_id, ts FROM questions WHERE status IN ({marks}) AND {dead_handler}",
                (*unfinished, replica, now),
            ).fetchall()
            self._db.execute(
                f"UPDATE questions SET handler = ? WHERE status IN ({marks}) AND {dead_handler}",
                (replica, *unfinished, replica, now),
            )
            dropped = self._db.execute(
                f"SELECT channel_id, thread_ts FROM thread_turns t WHERE t.replica <> ?"
                f" AND (t.replica = '' OR NOT {_LIVE})",
                (replica, now),
            ).fetchall()
            for table in ("thread_turns", "slots", "commands"):
                self._db.execute(
                    f"DELETE FROM {table} AS t WHERE t.replica <> ? AND "
                    f"(t.replica = '' OR NOT {_LIVE})",
                    (replica, now),
                )
            self._db.execute(
                "DELETE FROM replicas WHERE replica <> ? AND expires_at <= ?", (replica, now)
            )
        for channel_id, thread_ts in dropped:
            self._changed(channel_id, thread_ts)
        found = (self._question(str(channel_id), str(ts)) for channel_id, ts in keys)
        adopted = [q for q in found if q is not None]
        if adopted:
            logger.info("replica %s adopted %d unfinished questions", replica, len(adopted))
        return sorted(adopted, key=lambda q: ts_order(q.ts))

    # --- commands -------------------------------------------------------------------------------

    async def send_command(self, replica: str, command: Command) -> None:
        """Leave ``command`` for ``replica`` and wake its `watch_commands` event."""
        await self._run(self._send_command, replica, command)

    def _send_command(self, replica: str, c: Command) -> None:
        self._db.execute(
            "INSERT INTO commands (replica, kind, channel_id, ts, user_id, payload, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (replica, c.kind, c.channel_id, c.ts, c.user_id, c.payload, self._clock()),
        )
        if replica in self._mail:
            self._loop.call_soon_threadsafe(self._deliver, replica)

    def _deliver(self, replica: str) -> None:
        event = self._mail.pop(replica, None)
        if event is not None:
            event.set()

    async def take_commands(self, replica: str) -> list[Command]:
        """Remove and return the commands left for ``replica``, oldest first."""
        return await self._run(self._take_commands, replica)

    def _take_commands(self, replica: str) -> list[Command]:
        with self._db.atomic():
            rows = self._db.execute(
                "SELECT kind, channel_id, ts, user_id, payload FROM commands WHERE replica = ?"
                " ORDER BY id",
                (replica,),
            ).fetchall()
            self._db.execute("DELETE FROM commands WHERE replica = ?", (replica,))
        return [Command(*row) for row in rows]

    def watch_commands(self, replica: str) -> asyncio.Event:
        """An event set when a command for ``replica`` arrives."""
        return self._mail.setdefault(replica, asyncio.Event())

    # --- Trellis slots and rates ----------------------------------------------------------------

    async def claim_slot(self, key: str, limit: int, replica: str) -> int | None:
        """A free slot of ``key`` in ``range(limit)``; dead replicas' slots are free."""
        _named(replica)
        return await self._run(self._claim_slot, key, limit, replica)

    def _claim_slot(self, key: str, limit: int, replica: str) -> int | None:
        now = self._clock()
        with self._immediate():
            self._db.execute(f"DELETE FROM slots AS t WHERE t.key = ? AND NOT {_LIVE}", (key, now))
            held = {
                int(row[0])
                for row in self._db.execute("SELECT slot FROM slots WHERE key = ?", (key,))
            }
            free = next((slot for slot in range(limit) if slot not in held), None)
            if free is not None:
                self._db.execute(
                    "INSERT INTO slots (key, slot, replica, claimed_at) VALUES (?, ?, ?, ?)",
                    (key, free, replica, now),
                )
        return free

    async def slot_holders(self, key: str) -> list[str]:
        """The live replicas holding slots of ``key``."""
        return await self._run(self._slot_holders, key)

    def _slot_holders(self, key: str) -> list[str]:
        rows = self._db.execute(
            f"SELECT DISTINCT t.replica FROM slots AS t WHERE t.key = ? AND {_LIVE}"
            " ORDER BY t.replica",
            (key, self._clock()),
        ).fetchall()
        return [str(row[0]) for row in rows]

    async def release_slot(self, key: str, slot: int, replica: str) -> None:
        """Give the slot back (only when ``replica`` holds it)."""
        await self._run(
            self._db.execute,
            "DELETE FROM slots WHERE key = ? AND slot = ? AND replica = ?",
            (key, slot, replica),
        )

    async def take_rate(self, key: str, *, per_minute: int) -> float:
        """Reserve one use of ``key``; return the seconds to wait before using it (0.0: now)."""
        return await self._run(self._take_rate, key, per_minute)

    def _take_rate(self, key: str, per_minute: int) -> float:
        now = self._clock()
        with self._immediate():
            self._db.execute(
                "DELETE FROM rates WHERE key = ? AND at <= ?", (key, now - RATE_WINDOW)
            )
            reserved = [
                float(row[0])
                for row in self._db.execute(
                    "SELECT at FROM rates WHERE key = ? ORDER BY at", (key,)
                )
            ]
            at = rate_wait(reserved, now, per_minute)
            self._db.execute("INSERT INTO rates (key, at) VALUES (?, ?)", (key, at))
        return at - now

    async def health(self) -> StoreHealth:
        """Whether the file answers, how fast, and the leases held; never raises."""
        started = time.perf_counter()
        try:
            turns, slots, live = await self._run(self._health_counts)
        except (StateError, sqlite3.Error) as exc:
            return StoreHealth("sqlite", False, None, error=str(exc))
        latency = (time.perf_counter() - started) * 1000
        return StoreHealth(
            "sqlite",
            True,
            round(latency, 3),
            turns_held=turns,
            slots_held=slots,
            replicas_live=live,
        )

    def _health_counts(self) -> tuple[int, int, int]:
        now = self._clock()
        row = self._db.execute(
            f"SELECT (SELECT count(*) FROM thread_turns t WHERE t.replica = '' OR {_LIVE}),"
            f" (SELECT count(*) FROM slots t WHERE {_LIVE}),"
            " (SELECT count(*) FROM replicas WHERE expires_at > ?)",
            (now, now, now),
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])


def _named(replica: str) -> None:
    if not replica:
        raise ValueError("a replica needs a name")
