"""The PostgreSQL store's fleet: replicas' heartbeats, orphans, commands, Trellis slots, rates."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from trellis_slack.bot.lifecycle_status import UNFINISHED
from trellis_slack.errors import StateError
from trellis_slack.store.postgres_schema import CHANNEL, Q_COLUMNS, question_of
from trellis_slack.store.postgres_turns import LIVE, command_note
from trellis_slack.store.records import (
    Command,
    QuestionRecord,
    StoreHealth,
    rate_wait,
    ts_order,
)

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

logger = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[TupleRow]

#: Advisory lock serialising `adopt_orphans` across replicas (a fixed number: "adopt").
ADOPT_LOCK = 0x61646F7074

#: Seconds `health` waits for a pooled connection before calling the store unreachable.
HEALTH_TIMEOUT = 2.0


#: Drop thread claims of anyone but %s that no live replica holds, telling their threads.
_DROP_DEAD_TURNS = (
    "WITH dropped AS (DELETE FROM thread_turns t WHERE t.replica <> %s"
    f" AND (t.replica = '' OR NOT {LIVE}) RETURNING channel_id, thread_ts)"
    f" SELECT pg_notify('{CHANNEL}', json_build_array('t', channel_id, thread_ts)::text)"
    " FROM dropped"
)


class PgFleet:
    """What replicas share beyond questions: see the docstrings in `store.base.Store`."""

    _pool: AsyncConnectionPool[Conn]
    _clock: Callable[[], float]
    _url: str
    listening: bool

    if TYPE_CHECKING:  # provided by PostgresStore

        def _tx(self, wait: float | None = None) -> AbstractAsyncContextManager[Conn]: ...

        def _failure(self, exc: BaseException) -> StateError: ...

    # --- replicas -------------------------------------------------------------------------------

    async def heartbeat(self, replica: str, *, ttl: float) -> None:
        """Say that ``replica`` is alive until ``ttl`` seconds from now."""
        _named(replica)
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO replicas (replica, expires_at) VALUES (%s, %s)"
                " ON CONFLICT (replica) DO UPDATE SET expires_at = excluded.expires_at",
                (replica, self._clock() + ttl),
            )

    async def end_other_replicas(self, replica: str) -> None:
        """Take every other replica for dead now (their work becomes adoptable at once)."""
        async with self._tx() as conn:
            await conn.execute("UPDATE replicas SET expires_at = 0 WHERE replica <> %s", (replica,))

    async def retire_replica(self, replica: str) -> None:
        """A clean shutdown: drop the replica's heartbeat, thread claims, slots and commands."""
        async with self._tx() as conn:
            await conn.execute("DELETE FROM replicas WHERE replica = %s", (replica,))
            await conn.execute(
                "WITH dropped AS (DELETE FROM thread_turns WHERE replica = %s"
                " RETURNING channel_id, thread_ts) SELECT pg_notify(%s,"
                " json_build_array('t', channel_id, thread_ts)::text) FROM dropped",
                (replica, CHANNEL),
            )
            await conn.execute("DELETE FROM slots WHERE replica = %s", (replica,))
            await conn.execute("DELETE FROM commands WHERE replica = %s", (replica,))

    async def adopt_orphans(self, replica: str) -> list[QuestionRecord]:
        """Take over what dead replicas left; see `store.base.Store.adopt_orphans`."""
        _named(replica)
        now = self._clock()
        async with self._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADOPT_LOCK,))
            cur = await conn.execute(
                "UPDATE questions SET handler = %s WHERE status = ANY(%s) AND handler <> %s"
                " AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.replica = questions.handler"
                f" AND r.expires_at > %s) RETURNING {Q_COLUMNS}",
                (replica, sorted(UNFINISHED), replica, now),
            )
            adopted = [question_of(row) for row in await cur.fetchall()]
            await conn.execute(_DROP_DEAD_TURNS, (replica, now))
            await conn.execute(
                f"DELETE FROM slots t WHERE t.replica <> %s AND NOT {LIVE}", (replica, now)
            )
            await conn.execute(
                "DELETE FROM commands c WHERE c.replica <> %s AND NOT EXISTS (SELECT 1 FROM"
                " replicas r WHERE r.replica = c.replica AND r.expires_at > %s)",
                (replica, now),
            )
            await conn.execute(
                "DELETE FROM replicas WHERE replica <> %s AND expires_at <= %s", (replica, now)
            )
        if adopted:
            logger.info("replica %s adopted %d unfinished questions", replica, len(adopted))
        return sorted(adopted, key=lambda q: ts_order(q.ts))

    # --- commands to the replica that owns a turn ---------------------------------------------

    async def send_command(self, replica: str, command: Command) -> None:
        """Leave ``command`` for ``replica``; it is told at once (NOTIFY) and takes it in order."""
        c = command
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO commands (replica, kind, channel_id, ts, user_id, payload,"
                " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (replica, c.kind, c.channel_id, c.ts, c.user_id, c.payload, self._clock()),
            )
            await command_note(conn, replica)

    async def take_commands(self, replica: str) -> list[Command]:
        """Remove and return the commands left for ``replica``, oldest first."""
        async with self._tx() as conn:
            cur = await conn.execute(
                "DELETE FROM commands WHERE replica = %s"
                " RETURNING id, kind, channel_id, ts, user_id, payload",
                (replica,),
            )
            rows = await cur.fetchall()
        return [Command(*row[1:]) for row in sorted(rows, key=lambda row: int(row[0]))]

    # --- Trellis slots shared by the fleet ----------------------------------------------------

    async def claim_slot(self, key: str, limit: int, replica: str) -> int | None:
        """A free slot of ``key`` in ``range(limit)`` for ``replica``; None when all are taken.

        Slots held by replicas whose heartbeat expired are free again.
        """
        _named(replica)
        now = self._clock()
        async with self._tx() as conn:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('slot ' || %s::text))", (key,)
            )
            await conn.execute(f"DELETE FROM slots t WHERE t.key = %s AND NOT {LIVE}", (key, now))
            cur = await conn.execute("SELECT slot FROM slots WHERE key = %s", (key,))
            held = {int(row[0]) for row in await cur.fetchall()}
            free = next((slot for slot in range(limit) if slot not in held), None)
            if free is not None:
                await conn.execute(
                    "INSERT INTO slots (key, slot, replica, claimed_at) VALUES (%s, %s, %s, %s)",
                    (key, free, replica, now),
                )
        return free

    async def slot_holders(self, key: str) -> list[str]:
        """The live replicas holding slots of ``key``."""
        now = self._clock()
        async with self._tx() as conn:
            cur = await conn.execute(
                f"SELECT DISTINCT t.replica FROM slots t WHERE t.key = %s AND {LIVE}"
                " ORDER BY t.replica",
                (key, now),
            )
            return [str(row[0]) for row in await cur.fetchall()]

    async def release_slot(self, key: str, slot: int, replica: str) -> None:
        """Give the slot back (only when ``replica`` holds it)."""
        async with self._tx() as conn:
            await conn.execute(
                "DELETE FROM slots WHERE key = %s AND slot = %s AND replica = %s",
                (key, slot, replica),
            )

    # --- rates shared by the fleet ------------------------------------------------------------

    async def take_rate(self, key: str, *, per_minute: int) -> float:
        """Reserve one use of ``key``; return the seconds to wait before using it (0.0: now)."""
        now = self._clock()
        async with self._tx() as conn:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('rate ' || %s::text))", (key,)
            )
            await conn.execute("DELETE FROM rates WHERE key = %s AND at <= %s", (key, now - 60))
            cur = await conn.execute("SELECT at FROM rates WHERE key = %s ORDER BY at", (key,))
            at = rate_wait([float(row[0]) for row in await cur.fetchall()], now, per_minute)
            await conn.execute("INSERT INTO rates (key, at) VALUES (%s, %s)", (key, at))
        return at - now

    # --- health -------------------------------------------------------------------------------

    async def health(self) -> StoreHealth:
        """Whether PostgreSQL answers, how fast, the pool's use and the leases held; never raises."""
        stats = self._pool.get_stats()
        size, available = stats.get("pool_size"), stats.get("pool_available")
        pool: dict[str, Any] = {
            "pool_size": size,
            "pool_in_use": None if size is None or available is None else size - available,
        }
        now = self._clock()
        started = time.perf_counter()
        try:
            async with self._tx(HEALTH_TIMEOUT) as conn:
                await conn.execute("SELECT 1")
                latency = (time.perf_counter() - started) * 1000
                cur = await conn.execute(
                    f"SELECT (SELECT count(*) FROM thread_turns t WHERE t.replica = '' OR {LIVE}),"
                    f" (SELECT count(*) FROM slots t WHERE {LIVE}),"
                    " (SELECT count(*) FROM replicas WHERE expires_at > %s)",
                    (now, now, now),
                )
                row = await cur.fetchone()
        except StateError as exc:
            return StoreHealth("postgresql", False, None, error=str(exc), **pool)
        turns, slots, live = (0, 0, 0) if row is None else (int(v) for v in row)
        return StoreHealth(
            "postgresql",
            True,
            round(latency, 3),
            turns_held=turns,
            slots_held=slots,
            replicas_live=live,
            error="" if self.listening else "not listening for other replicas' changes",
            **pool,
        )


def _named(replica: str) -> None:
    if not replica:
        raise ValueError("a replica needs a name")
