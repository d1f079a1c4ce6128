"""The Trellis connection pool: per token at most ``max_connections`` sockets, handed out FIFO."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from websockets.exceptions import ConnectionClosed

from trellis_slack.errors import (
    TrellisAuthError,
    TrellisConnectionLost,
    TrellisError,
    TrellisUnavailable,
)
from trellis_slack.trellis import protocol
from trellis_slack.trellis.connection import Background, Connection, Connector, Sink
from trellis_slack.trellis.shared import FleetLimits, member_key

__all__ = ["Pool", "Pools"]

logger = logging.getLogger(__name__)

#: How many times a request is moved to another socket when its socket died before the send.
_SEND_ATTEMPTS = 3

OnQueued = Callable[[], Awaitable[None]]


class Pool:
    """The sockets opened with one token: at most ``max_connections``, handed out FIFO."""

    def __init__(self, pools: Pools, token: str) -> None:
        self._pools = pools
        self.token = token
        #: The key of the Trellis member the token belongs to (fleet-wide limits).
        self.member = member_key(token) if pools.limits is not None else ""
        self.idle: list[Connection] = []
        self.busy: set[Connection] = set()
        self.opening = 0
        self.waiters: deque[asyncio.Future[Connection | None]] = deque()
        #: The fleet-wide socket slot each open socket holds (`FleetLimits`).
        self.slots: dict[Connection, int] = {}

    def __repr__(self) -> str:
        return f"<Trellis pool idle={len(self.idle)} busy={len(self.busy)} opening={self.opening}>"

    @property
    def size(self) -> int:
        """Sockets open or being opened."""
        return len(self.idle) + len(self.busy) + self.opening

    @property
    def empty(self) -> bool:
        return self.size == 0 and not self.waiters

    @property
    def queued(self) -> int:
        """Requests waiting for a socket of this pool."""
        return sum(not f.done() for f in self.waiters)

    async def acquire(self, on_queued: OnQueued | None) -> Connection:
        """A socket for one request: an idle one, a new one, or (queued) the next one freed."""
        while self.idle:
            conn = self.idle.pop()  # the most recently used, so spare ones can age out
            conn.stop_idle()
            if not conn.closed:
                self.busy.add(conn)
                return conn
        if self.size < self._pools.max_connections:
            self.opening += 1
        else:
            granted = await self._wait(on_queued)
            if granted is not None:
                return granted
            # None: a slot was reserved for us (``opening`` already counts it).
        return await self._open_reserved(on_queued)

    def release(self, conn: Connection) -> None:
        """A request finished cleanly: give the socket to the next waiter, or let it idle."""
        self.busy.discard(conn)
        if conn.closed or self._pools.closing:
            self.discard(conn)
            return
        while self.waiters:
            future = self.waiters.popleft()
            if not future.done():
                self.busy.add(conn)
                future.set_result(conn)
                return
        self.idle.append(conn)
        conn.idle_task = self._pools.background.spawn(self._keep_idle(conn))

    def discard(self, conn: Connection, *, interrupt: bool = False) -> None:
        """Stop using ``conn`` (dead, or left in an unknown state) and close it."""
        self.busy.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        conn.stop_idle()
        self._pools.background.spawn(conn.shutdown(interrupt=interrupt))
        self._give_slot(conn)
        self._wake()
        self._pools.forget_if_empty(self)

    def on_closed(self, conn: Connection) -> None:
        """The reader saw the socket close; an idle socket leaves the pool at once."""
        if conn in self.idle:
            self.idle.remove(conn)
            conn.stop_idle()
            self._give_slot(conn)
            self._wake()
            self._pools.forget_if_empty(self)

    def close(self, error: TrellisError) -> None:
        """Fail every queued request with ``error`` and close every socket."""
        self._fail_waiters(error)
        for conn in [*self.idle, *self.busy]:
            self.discard(conn)

    async def _wait(self, on_queued: OnQueued | None) -> Connection | None:
        future: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        try:
            if on_queued is not None:
                await on_queued()
            return await future
        except BaseException:
            if future.done() and not future.cancelled() and future.exception() is None:
                self._hand_back(future.result())
            else:
                future.cancel()
                with contextlib.suppress(ValueError):
                    self.waiters.remove(future)
            raise

    async def _open_reserved(self, on_queued: OnQueued | None = None) -> Connection:
        slot: int | None = None
        try:
            got = await self._take_slot(on_queued)
            if isinstance(got, Connection):  # one of ours came free while we waited: use it
                self.opening -= 1
                self.busy.add(got)
                return got
            slot = got
            conn = await self._pools.connector.open(self.token, self)
        except BaseException as exc:
            if slot is not None:
                self._give_back(slot)
            self.opening -= 1
            if isinstance(exc, TrellisError) and not self.idle and not self.busy:
                self._fail_waiters(exc)  # no socket of this token works: do not let them hang
            elif not isinstance(exc, TrellisError):
                self._wake()
            self._pools.forget_if_empty(self)
            raise
        self.opening -= 1
        if slot is not None:
            self.slots[conn] = slot
        self.busy.add(conn)
        return conn

    async def _take_slot(self, on_queued: OnQueued | None) -> int | Connection | None:
        """A fleet-wide slot for one more socket, waiting while other replicas hold them all;
        or, when one of this pool's own sockets comes free meanwhile, that socket."""
        limits = self._pools.limits
        if limits is None:
            return None
        said = False
        while True:
            while self.idle:
                conn = self.idle.pop()
                conn.stop_idle()
                if not conn.closed:
                    return conn
                self._give_slot(conn)
            held = len(self.idle) + len(self.busy)
            slot = await limits.take_socket(self.member, self._pools.max_connections, held=held)
            if slot is not None:
                break
            if not said:
                said = True
                logger.info("every Trellis socket of this member is open on other replicas")
                if on_queued is not None:
                    await on_queued()
            # Polled: a slot other replicas free sends no signal here.
            await self._pools.sleep(limits.poll)
        return slot

    def _give_slot(self, conn: Connection) -> None:
        slot = self.slots.pop(conn, None)
        if slot is not None:
            self._give_back(slot)

    def _give_back(self, slot: int) -> None:
        limits = self._pools.limits
        if limits is not None:
            self._pools.background.spawn(limits.give_socket(self.member, slot))

    async def _keep_idle(self, conn: Connection) -> None:
        """Ping an idle socket every ping_interval; close it after idle_timeout unused."""
        loop = asyncio.get_running_loop()
        idle_timeout, ping_interval = self._pools.idle_timeout, self._pools.ping_interval
        closes_at = loop.time() + idle_timeout
        while True:
            remaining = closes_at - loop.time()
            wait = min(ping_interval, remaining) if ping_interval > 0 else remaining
            if wait > 0:
                await asyncio.sleep(wait)  # a timer, not waiting for something to happen
            if loop.time() >= closes_at:
                logger.info("socket #%d: closing after %g s idle", conn.number, idle_timeout)
                conn.idle_task = None
                self.discard(conn)
                return
            try:
                await conn.send(protocol.ping())
            except ConnectionClosed:
                return

    def _hand_back(self, granted: Connection | None) -> None:
        """A cancelled waiter passes on what it was given."""
        if granted is None:
            self.opening -= 1
            self._wake()
            self._pools.forget_if_empty(self)
        else:
            self.release(granted)

    def _wake(self) -> None:
        """Give free slots to waiters, oldest first; each then opens its own socket."""
        while self.waiters and self.size < self._pools.max_connections:
            future = self.waiters.popleft()
            if not future.done():
                self.opening += 1
                future.set_result(None)

    def _fail_waiters(self, error: TrellisError) -> None:
        while self.waiters:
            future = self.waiters.popleft()
            if not future.done():
                future.set_exception(_copy_error(error))


def _copy_error(error: TrellisError) -> TrellisError:
    kind = TrellisAuthError if isinstance(error, TrellisAuthError) else TrellisUnavailable
    return kind(str(error))


class Pools:
    """Every token's :class:`Pool`; sends a request on a socket of the right one."""

    def __init__(
        self,
        connector: Connector,
        background: Background,
        *,
        max_connections: int,
        idle_timeout: float,
        ping_interval: float,
        pace: bool,
        sleep: Callable[[float], Awaitable[None]],
        limits: FleetLimits | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.connector = connector
        self.background = background
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.ping_interval = ping_interval
        self._pace_sends = pace
        self.sleep = sleep
        #: Trellis's socket cap over every replica; None: this process alone.
        self.limits = limits
        self._by_token: dict[str, Pool] = {}

    def __repr__(self) -> str:
        return f"<Trellis pools {len(self._by_token)}>"

    def __len__(self) -> int:
        return len(self._by_token)

    @property
    def closing(self) -> bool:
        """True once shut down: sockets given back are closed, not kept."""
        return self.connector.closing

    @property
    def open_connections(self) -> int:
        """Sockets open right now, over all tokens."""
        return sum(len(p.idle) + len(p.busy) for p in self._by_token.values())

    @property
    def queued(self) -> int:
        """Requests waiting for a free socket, over all tokens."""
        return sum(p.queued for p in self._by_token.values())

    def pool_for(self, token: str) -> Pool:
        """The pool of ``token``'s sockets (a new, empty one the first time)."""
        pool = self._by_token.get(token)
        if pool is None:
            pool = self._by_token[token] = Pool(self, token)
        return pool

    def forget_if_empty(self, pool: Pool) -> None:
        """Drop ``pool`` once it has no socket and no waiter (tokens come and go)."""
        if pool.empty and self._by_token.get(pool.token) is pool:
            del self._by_token[pool.token]

    async def send(
        self,
        token: str,
        frame: str,
        sink: Sink,
        *,
        pace: bool,
        on_queued: OnQueued | None,
    ) -> Connection:
        """Get a socket of ``token``, route its events to ``sink`` and send ``frame`` on it.

        The socket is the caller's until it gives it back: ``conn.home.release(conn)``, or
        ``conn.home.discard(conn)`` when the socket's state is unknown.
        """
        for _ in range(_SEND_ATTEMPTS):
            pool = self.pool_for(token)
            conn = await pool.acquire(on_queued)
            try:
                if pace:
                    await self.pace(conn)
            except BaseException:
                pool.release(conn)
                raise
            if not conn.attach(sink):
                pool.discard(conn)
                continue
            try:
                await conn.send(frame)
            except ConnectionClosed:
                conn.detach()
                pool.discard(conn)
                continue
            except BaseException:
                conn.detach()
                pool.discard(conn, interrupt=True)
                raise
            return conn
        raise TrellisConnectionLost("Trellis kept closing the connection before the request")

    async def pace(self, conn: Connection) -> None:
        """Wait until ``conn`` may carry another ``send_message`` (Trellis's per-socket limit)."""
        if not self._pace_sends:
            return
        delay = conn.pacer.reserve()
        if delay > 0:
            logger.info("socket #%d: pacing send_message by %.1f s", conn.number, delay)
            await self.sleep(delay)

    def close_idle(self, member: str) -> bool:
        """Close one idle socket of ``member`` (another replica waits for its slot)."""
        for pool in self._by_token.values():
            if pool.member == member and pool.idle:
                conn = pool.idle.pop(0)  # the least recently used
                logger.info(
                    "socket #%d: closed for another replica that needs a socket", conn.number
                )
                pool.discard(conn)
                return True
        return False

    def close(self) -> None:
        """Shut down: queued requests fail, every socket is closed (streaming turns see it)."""
        self.connector.closing = True
        closed = TrellisUnavailable("the Trellis client is shut down")
        for pool in list(self._by_token.values()):
            pool.close(closed)
