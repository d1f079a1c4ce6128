"""The Trellis WebSocket client: a capped pool of authenticated sockets per token, one turn each."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from trellis_slack.errors import (
    TrellisAPIError,
    TrellisAuthError,
    TrellisConnectionLost,
    TrellisError,
    TrellisProtocolError,
    TrellisTimeout,
    TrellisUnavailable,
)
from trellis_slack.trellis import protocol
from trellis_slack.trellis.pacing import Backoff, SendPacer
from trellis_slack.trellis.protocol import (
    Authenticated,
    ChatMetadata,
    ErrorEvent,
    Interrupted,
    Message,
    Pong,
    Processing,
    TextDelta,
    TrellisEvent,
    Unknown,
    Visualization,
)
from trellis_slack.trellis.rest import TrellisRest
from trellis_slack.trellis.tokens import TokenProvider, with_token

__all__ = ["Backoff", "EditMessage", "SendMessage", "TrellisClient", "Turn"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Close codes Trellis uses: bad or missing token, and too many sockets for one token.
CLOSE_AUTH = 4001
CLOSE_TOO_MANY = 4429
#: How many times a request is moved to another socket when its socket died before the send.
_SEND_ATTEMPTS = 3
#: Largest frame accepted from Trellis (tables can be big).
_MAX_FRAME = 16 * 2**20
#: How much of a rejected frame is shown in a DEBUG log line.
_FRAME_PREVIEW = 80


class _NoDebugLogger(logging.LoggerAdapter[logging.Logger]):
    """The logger handed to websockets, with DEBUG off: its frame dumps would show the token."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_WS_LOGGER = _NoDebugLogger(logging.getLogger(f"{__name__}.websocket"))


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Ask a question; a new chat when ``chat_id`` is None."""

    text: str
    chat_id: str | None = None
    integration_id: str | None = None
    model: str | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class EditMessage:
    """Replace an earlier user message and get a fresh answer."""

    message_id: str
    text: str
    integration_id: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class _Lost:
    """Put on a turn's queue when its socket closed."""

    code: int | None


_Item = TrellisEvent | _Lost
_Sink = asyncio.Queue[_Item]


class _Connection:
    """One authenticated socket; its reader hands every parsed event to the current sink."""

    __slots__ = (
        "closed",
        "idle_task",
        "last_frame_at",
        "number",
        "pacer",
        "pool",
        "reader",
        "sink",
        "ws",
    )

    def __init__(self, ws: ClientConnection, number: int, pool: _Pool) -> None:
        self.ws = ws
        self.number = number
        self.pool = pool
        self.pacer = SendPacer()
        self.sink: _Sink | None = None
        self.closed = False
        self.idle_task: asyncio.Task[None] | None = None
        self.reader: asyncio.Task[None] | None = None
        self.last_frame_at: float | None = None

    def __repr__(self) -> str:
        return f"<Trellis socket #{self.number}{' closed' if self.closed else ''}>"

    def start(self) -> None:
        self.reader = asyncio.create_task(self._read(), name=f"trellis-reader-{self.number}")

    def attach(self, sink: _Sink) -> bool:
        """Route events to ``sink``; False when the socket already closed."""
        if self.closed:
            return False
        self.sink = sink
        return True

    def detach(self) -> None:
        self.sink = None

    async def send(self, frame: str) -> None:
        await self.ws.send(frame)

    def stop_idle(self) -> None:
        task, self.idle_task = self.idle_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def shutdown(self, *, interrupt: bool = False) -> None:
        """Close the socket, first cancelling any answer still streaming on it."""
        self.stop_idle()
        if interrupt and not self.closed:
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(protocol.interrupt())
        await self.ws.close()
        if self.reader is not None:
            await asyncio.wait([self.reader])

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.last_frame_at = time.monotonic()
                self._dispatch(raw)
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("socket #%d: the reader failed", self.number)
        finally:
            self.closed = True
            code = self.ws.close_code
            logger.info("socket #%d closed (code %s)", self.number, code)
            if self.sink is not None:
                self.sink.put_nowait(_Lost(code))
            self.pool.on_closed(self)

    def _dispatch(self, raw: str | bytes) -> None:
        try:
            event = protocol.parse_frame(raw)
        except TrellisProtocolError as exc:
            logger.warning("socket #%d: skipped a bad frame from Trellis: %s", self.number, exc)
            logger.debug("socket #%d: the bad frame began %r", self.number, raw[:_FRAME_PREVIEW])
            return
        if isinstance(event, Unknown):
            logger.debug("socket #%d: ignored unknown event %r", self.number, event.name)
            return
        if self.sink is not None:
            self.sink.put_nowait(event)
        elif not isinstance(event, Pong):
            logger.debug("socket #%d: %s arrived with no turn", self.number, type(event).__name__)


class _Pool:
    """The sockets opened with one token: at most ``max_connections``, handed out FIFO."""

    def __init__(self, client: TrellisClient, token: str) -> None:
        self.client = client
        self.token = token
        self.idle: list[_Connection] = []
        self.busy: set[_Connection] = set()
        self.opening = 0
        self.waiters: deque[asyncio.Future[_Connection | None]] = deque()

    def __repr__(self) -> str:
        return f"<Trellis pool idle={len(self.idle)} busy={len(self.busy)} opening={self.opening}>"

    @property
    def size(self) -> int:
        return len(self.idle) + len(self.busy) + self.opening

    @property
    def empty(self) -> bool:
        return self.size == 0 and not self.waiters

    async def acquire(self, on_queued: Callable[[], Awaitable[None]] | None) -> _Connection:
        """A socket for one request: an idle one, a new one, or (queued) the next one freed."""
        while self.idle:
            conn = self.idle.pop()  # the most recently used, so spare ones can age out
            conn.stop_idle()
            if not conn.closed:
                self.busy.add(conn)
                return conn
        if self.size < self.client.max_connections:
            self.opening += 1
        else:
            granted = await self._wait(on_queued)
            if granted is not None:
                return granted
            # None: a slot was reserved for us (``opening`` already counts it).
        return await self._open_reserved()

    async def _wait(self, on_queued: Callable[[], Awaitable[None]] | None) -> _Connection | None:
        future: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
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

    async def _open_reserved(self) -> _Connection:
        try:
            conn = await self.client._open(self)
        except BaseException as exc:
            self.opening -= 1
            if isinstance(exc, TrellisError) and not self.idle and not self.busy:
                self._fail_waiters(exc)  # no socket of this token works: do not let them hang
            elif not isinstance(exc, TrellisError):
                self._wake()
            self.client._forget_if_empty(self)
            raise
        self.opening -= 1
        self.busy.add(conn)
        return conn

    def release(self, conn: _Connection) -> None:
        """A request finished cleanly: give the socket to the next waiter, or let it idle."""
        self.busy.discard(conn)
        if conn.closed or self.client.closing:
            self.discard(conn)
            return
        while self.waiters:
            future = self.waiters.popleft()
            if not future.done():
                self.busy.add(conn)
                future.set_result(conn)
                return
        self.idle.append(conn)
        conn.idle_task = self.client._spawn(self.client._keep_idle(self, conn))

    def discard(self, conn: _Connection, *, interrupt: bool = False) -> None:
        """Stop using ``conn`` (dead, or left in an unknown state) and close it."""
        self.busy.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        conn.stop_idle()
        self.client._spawn(conn.shutdown(interrupt=interrupt))
        self._wake()
        self.client._forget_if_empty(self)

    def on_closed(self, conn: _Connection) -> None:
        """The reader saw the socket close; an idle socket leaves the pool at once."""
        if conn in self.idle:
            self.idle.remove(conn)
            conn.stop_idle()
            self._wake()
            self.client._forget_if_empty(self)

    def fail_all(self, error: TrellisError) -> None:
        self._fail_waiters(error)

    def _hand_back(self, granted: _Connection | None) -> None:
        """A cancelled waiter passes on what it was given."""
        if granted is None:
            self.opening -= 1
            self._wake()
            self.client._forget_if_empty(self)
        else:
            self.release(granted)

    def _wake(self) -> None:
        """Give free slots to waiters, oldest first; each then opens its own socket."""
        while self.waiters and self.size < self.client.max_connections:
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


class TrellisClient:
    """Runs turns against Trellis over pooled WebSocket connections (see :class:`Turn`)."""

    def __init__(
        self,
        *,
        ws_url: str,
        tokens: TokenProvider,
        rest: TrellisRest | None = None,
        max_connections: int = 3,
        idle_timeout: float = 120.0,
        ping_interval: float = 30.0,
        turn_timeout: float = 300.0,
        connect_timeout: float = 10.0,
        backoff: Backoff = Backoff(),  # noqa: B008 - frozen, so one shared default is safe
        pace: bool = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._ws_url = ws_url
        self._tokens = tokens
        self._rest = rest
        self.max_connections = max_connections
        self._idle_timeout = idle_timeout
        self._ping_interval = ping_interval
        self.turn_timeout = turn_timeout
        self._connect_timeout = connect_timeout
        self.backoff = backoff
        self._pace_sends = pace
        self.sleep = sleep
        self._pools: dict[str, _Pool] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._numbers = itertools.count(1)
        self._chat_create_missing = False
        self.closing = False

    def __repr__(self) -> str:
        return (
            f"<TrellisClient sockets={self.open_connections} queued={self.queued_turns}"
            f" pools={len(self._pools)}>"
        )

    # ------------------------------------------------------------------ public API

    def turn(
        self,
        request: SendMessage | EditMessage,
        *,
        identity: str | None = None,
        on_queued: Callable[[], Awaitable[None]] | None = None,
    ) -> Turn:
        """A turn to run with ``async with client.turn(...) as turn: async for event in turn``."""
        return Turn(self, request, identity=identity, on_queued=on_queued)

    async def delete_message(self, message_id: str, *, identity: str | None = None) -> None:
        """Delete a message and everything after it; waits for Trellis to confirm."""

        def done(event: TrellisEvent) -> bool:
            return isinstance(event, protocol.Deleted) and event.message_id == message_id

        await self._exchange(identity, protocol.delete_message(message_id), done, self.turn_timeout)
        logger.info("deleted Trellis message %s", message_id)

    async def check(self, *, identity: str | None = None) -> None:
        """Open (or reuse) an authenticated socket and ping it; raises when Trellis is unusable."""
        await self._exchange(
            identity, protocol.ping(), lambda e: isinstance(e, Pong), self._connect_timeout
        )

    @property
    def open_connections(self) -> int:
        """Sockets open right now, over all tokens."""
        return sum(len(p.idle) + len(p.busy) for p in self._pools.values())

    @property
    def queued_turns(self) -> int:
        """Requests waiting for a free socket."""
        return sum(sum(not f.done() for f in p.waiters) for p in self._pools.values())

    async def aclose(self) -> None:
        """Close every socket; queued requests fail, streaming turns see the connection lost."""
        self.closing = True
        closed = TrellisUnavailable("the Trellis client is shut down")
        for pool in list(self._pools.values()):
            pool.fail_all(closed)
            for conn in [*pool.idle, *pool.busy]:
                pool.discard(conn)
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    # ------------------------------------------------------------------ helpers for turns

    async def _authorized(self, identity: str | None, call: Callable[[str], Awaitable[T]]) -> T:
        """Run ``call`` with the identity's token; once more with a fresh one if it is refused."""
        return await with_token(self._tokens, identity, call)

    async def _create_chat(self, identity: str | None, request: SendMessage) -> str | None:
        """Create the chat over REST first (v-current); None where chats start with a message."""
        rest = self._rest
        if rest is None or self._chat_create_missing:
            return None

        async def create(token: str) -> str | None:
            return await rest.create_chat(
                token, title=request.title, integration_id=request.integration_id
            )

        chat_id = await self._authorized(identity, create)
        if chat_id is None:
            self._chat_create_missing = True
        return chat_id

    async def _dispatch(
        self,
        identity: str | None,
        frame: str,
        sink: _Sink,
        *,
        pace: bool,
        on_queued: Callable[[], Awaitable[None]] | None,
    ) -> _Connection:
        """Get a socket, route its events to ``sink`` and send ``frame`` on it."""

        async def attempt(token: str) -> _Connection:
            for _ in range(_SEND_ATTEMPTS):
                pool = self._pool_for(token)
                conn = await pool.acquire(on_queued)
                try:
                    if pace:
                        await self._pace(conn)
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

        return await self._authorized(identity, attempt)

    async def _exchange(
        self,
        identity: str | None,
        frame: str,
        done: Callable[[TrellisEvent], bool],
        within: float,
    ) -> TrellisEvent:
        """Send one non-streaming action and wait for its answer (or an error event)."""
        self._check_open()
        sink: _Sink = asyncio.Queue()
        conn = await self._dispatch(identity, frame, sink, pace=False, on_queued=None)
        try:
            async with asyncio.timeout(within):
                while True:
                    item = await sink.get()
                    if isinstance(item, _Lost):
                        raise TrellisConnectionLost("the connection to Trellis dropped")
                    if isinstance(item, ErrorEvent):
                        conn.detach()
                        conn.pool.release(conn)
                        raise _api_error(item)
                    if done(item):
                        conn.detach()
                        conn.pool.release(conn)
                        return item
        except TimeoutError:
            conn.detach()
            conn.pool.discard(conn)
            raise TrellisTimeout(f"Trellis did not answer within {within:g} s") from None
        except TrellisAPIError:
            raise
        except BaseException:
            conn.detach()
            conn.pool.discard(conn)
            raise

    async def _pace(self, conn: _Connection) -> None:
        if not self._pace_sends:
            return
        delay = conn.pacer.reserve()
        if delay > 0:
            logger.info("socket #%d: pacing send_message by %.1f s", conn.number, delay)
            await self.sleep(delay)

    def _check_open(self) -> None:
        if self.closing:
            raise TrellisUnavailable("the Trellis client is shut down")

    # ------------------------------------------------------------------ pools and sockets

    def _pool_for(self, token: str) -> _Pool:
        pool = self._pools.get(token)
        if pool is None:
            pool = self._pools[token] = _Pool(self, token)
        return pool

    def _forget_if_empty(self, pool: _Pool) -> None:
        if pool.empty and self._pools.get(pool.token) is pool:
            del self._pools[pool.token]

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("a Trellis background task failed: %r", exc)

    async def _keep_idle(self, pool: _Pool, conn: _Connection) -> None:
        """Ping an idle socket every ping_interval; close it after idle_timeout unused."""
        loop = asyncio.get_running_loop()
        closes_at = loop.time() + self._idle_timeout
        while True:
            remaining = closes_at - loop.time()
            wait = min(self._ping_interval, remaining) if self._ping_interval > 0 else remaining
            if wait > 0:
                await asyncio.sleep(wait)  # a timer, not waiting for something to happen
            if loop.time() >= closes_at:
                logger.info("socket #%d: closing after %g s idle", conn.number, self._idle_timeout)
                conn.idle_task = None
                pool.discard(conn)
                return
            try:
                await conn.send(protocol.ping())
            except ConnectionClosed:
                return

    async def _open(self, pool: _Pool) -> _Connection:
        """Open and authenticate a socket with the pool's token, backing off between tries."""
        failures = 0
        while True:
            self._check_open()
            outcome = await self._connect(pool)
            if isinstance(outcome, _Connection):
                return outcome
            retry = outcome
            failures += 1
            if failures >= self.backoff.max_attempts:
                logger.error(
                    "could not open a Trellis socket after %d attempts (%s)",
                    failures,
                    retry.reason,
                )
                raise TrellisUnavailable(
                    f"could not connect to Trellis after {failures} attempts ({retry.reason})"
                ) from None
            delay = self.backoff.delay(failures)
            if retry.retry_after is not None:
                delay = max(delay, retry.retry_after)
            logger.warning(
                "Trellis socket attempt %d failed (%s); retrying in %.2f s",
                failures,
                retry.reason,
                delay,
            )
            await self.sleep(delay)

    async def _connect(self, pool: _Pool) -> _Connection | _Retry:
        """One attempt: connect, send the authenticate frame, wait for ``authenticated``."""
        ws: ClientConnection | None = None
        refusal: ErrorEvent | None = None
        try:
            async with asyncio.timeout(self._connect_timeout):
                ws = await connect(
                    self._ws_url,
                    proxy=None,
                    open_timeout=None,
                    max_size=_MAX_FRAME,
                    close_timeout=min(self._connect_timeout, 5.0),
                    logger=_WS_LOGGER,
                )
                await ws.send(protocol.authenticate(pool.token))
                while True:
                    event = _parse_quietly(await ws.recv())
                    if isinstance(event, Authenticated):
                        break
                    if isinstance(event, ErrorEvent):
                        refusal = event
                        logger.warning(
                            "Trellis refused a socket: %s (code %s)", event.message, event.code
                        )
        except InvalidURI:
            raise TrellisUnavailable("the Trellis WebSocket URL is invalid") from None
        except BaseException as exc:
            if ws is not None:
                self._spawn(ws.close())
            outcome = _translate_open_error(exc, refusal)
            if isinstance(outcome, _Retry):
                return outcome
            if outcome is exc:
                raise
            raise outcome from None
        if self.closing:
            self._spawn(ws.close())
            raise TrellisUnavailable("the Trellis client is shut down")
        conn = _Connection(ws, next(self._numbers), pool)
        conn.start()
        logger.info("socket #%d: authenticated", conn.number)
        return conn


@dataclass(frozen=True, slots=True)
class _Retry:
    """One failed attempt to open a socket: try again after a backoff delay."""

    reason: str
    retry_after: float | None = None


def _translate_open_error(exc: BaseException, refusal: ErrorEvent | None) -> BaseException | _Retry:
    """What a failed open means: retry later, a TrellisError to raise, or ``exc`` itself."""
    retry_after = refusal.retry_after if refusal is not None else None
    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd is not None else None
        if code == CLOSE_AUTH:
            return TrellisAuthError("Trellis rejected the token (close code 4001)")
        if code == CLOSE_TOO_MANY:
            return _Retry("too many sockets for this token (4429)", retry_after)
        return _Retry(f"closed with code {code} before authenticating")
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status in (401, 403):
            return TrellisAuthError(f"Trellis refused the connection (HTTP {status})")
        return _Retry(f"HTTP {status} on the upgrade")
    if isinstance(exc, TimeoutError):
        return _Retry("timed out")
    if isinstance(exc, OSError | InvalidHandshake):
        return _Retry(type(exc).__name__)
    return exc


def _parse_quietly(raw: str | bytes) -> TrellisEvent | None:
    try:
        return protocol.parse_frame(raw)
    except TrellisProtocolError as exc:
        logger.warning("skipped a bad frame from Trellis while authenticating: %s", exc)
        return None


def _api_error(event: ErrorEvent) -> TrellisAPIError:
    return TrellisAPIError(
        event.message, code=event.code, retryable=event.retryable, debug_id=event.debug_id
    )


class Turn:
    """One question (or edit) and its streamed answer, on one socket.

    Use ``async with client.turn(...) as turn: async for event in turn: ...``. Entering sends the
    request (after queueing for a socket if all are busy); iterating yields :class:`ChatMetadata`,
    :class:`Processing`, :class:`TextDelta`, :class:`Visualization` and finally one of
    :class:`Message`, :class:`Interrupted` or :class:`ErrorEvent`, then stops. Leaving the
    ``async with`` block early interrupts the answer and drops its socket; without the block,
    iterate to the end.
    """

    def __init__(
        self,
        client: TrellisClient,
        request: SendMessage | EditMessage,
        *,
        identity: str | None,
        on_queued: Callable[[], Awaitable[None]] | None,
    ) -> None:
        self.chat_id: str | None = request.chat_id if isinstance(request, SendMessage) else None
        self.user_message_id: str | None = None
        self.queued = False
        self._client = client
        self._request = request
        self._identity = identity
        self._on_queued = on_queued
        self._sink: _Sink = asyncio.Queue()
        self._conn: _Connection | None = None
        self._frame = ""
        self._started = False
        self._finished = False
        self._interrupt_sent = False
        self._answering = False
        self._resends = 0
        self._deadline = 0.0
        self._last_frame_at: float | None = None

    @property
    def last_frame_at(self) -> float | None:
        """``time.monotonic()`` when this turn's socket last received a frame (for latency metrics)."""
        return self._last_frame_at

    def __repr__(self) -> str:
        state = "finished" if self._finished else "streaming" if self._started else "new"
        return f"<Turn chat={self.chat_id} {state}>"

    async def __aenter__(self) -> Turn:
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._started and not self._finished:
            # Left before the end (an error, a cancel, a break): stop the answer, drop the socket.
            self._end(discard=True, interrupt=True)

    def __aiter__(self) -> AsyncIterator[TrellisEvent]:
        return self

    async def __anext__(self) -> TrellisEvent:
        if not self._started:
            await self._start()
        loop = asyncio.get_running_loop()
        while not self._finished:
            try:
                async with asyncio.timeout_at(self._deadline):
                    item = await self._sink.get()
                if self._conn is not None:
                    self._last_frame_at = self._conn.last_frame_at
            except TimeoutError:
                timeout = self._client.turn_timeout
                logger.warning("chat %s: nothing for %g s; interrupting", self.chat_id, timeout)
                self._end(discard=True, interrupt=True)
                raise TrellisTimeout(
                    f"Trellis sent nothing for {timeout:g} s; the answer was stopped"
                ) from None
            if isinstance(item, _Lost):
                self._end(discard=True)
                logger.warning(
                    "chat %s: the socket closed mid-turn (code %s)", self.chat_id, item.code
                )
                raise TrellisConnectionLost("the connection to Trellis dropped during the answer")
            if not isinstance(item, protocol.Heartbeat | Pong):
                self._deadline = loop.time() + self._client.turn_timeout
            event = await self._handle(item)
            if event is not None:
                return event
        raise StopAsyncIteration

    async def interrupt(self) -> None:
        """Ask Trellis to stop this answer; does nothing before the start or after the end."""
        conn = self._conn
        if conn is None or self._finished or self._interrupt_sent:
            return
        self._interrupt_sent = True
        logger.info("chat %s: interrupting", self.chat_id)
        with contextlib.suppress(ConnectionClosed):
            await conn.send(protocol.interrupt())

    # ------------------------------------------------------------------ internals

    async def _start(self) -> None:
        if self._started:
            return
        self._client._check_open()
        self._started = True
        request = self._request
        try:
            if isinstance(request, SendMessage):
                if self.chat_id is None:
                    self.chat_id = await self._client._create_chat(self._identity, request)
                self._frame = protocol.send_message(
                    request.text,
                    chat_id=self.chat_id,
                    integration_id=request.integration_id,
                    model=request.model,
                    title=request.title,
                )
            else:
                self._frame = protocol.edit_message(
                    request.message_id,
                    request.text,
                    integration_id=request.integration_id,
                    model=request.model,
                )
            self._conn = await self._client._dispatch(
                self._identity,
                self._frame,
                self._sink,
                pace=isinstance(request, SendMessage),
                on_queued=self._queued,
            )
        except BaseException:
            self._finished = True
            raise
        self._deadline = asyncio.get_running_loop().time() + self._client.turn_timeout
        logger.info("chat %s: request sent on socket #%d", self.chat_id, self._conn.number)

    async def _queued(self) -> None:
        if self.queued:
            return
        self.queued = True
        logger.info("chat %s: every Trellis socket is busy; queued", self.chat_id)
        if self._on_queued is not None:
            try:
                await self._on_queued()
            except Exception:
                logger.exception("chat %s: the on_queued callback failed", self.chat_id)

    async def _handle(self, event: TrellisEvent) -> TrellisEvent | None:
        """The event to yield, or None to read on."""
        match event:
            case ChatMetadata():
                self._answering = True
                self.chat_id = event.chat_id
                self.user_message_id = event.user_message_id
                return event
            case Processing() | TextDelta() | Visualization():
                return event
            case Message():
                self._end()
                return event
            case Interrupted():
                self._end(interrupted=True)
                return event
            case ErrorEvent():
                if self._should_resend(event):
                    await self._resend(event)
                    return None
                logger.info(
                    "chat %s: Trellis error (code %s, debug id %s)",
                    self.chat_id,
                    event.code,
                    event.debug_id,
                )
                self._end()
                return event
            case _:  # tool events, pongs, heartbeats and the like are not for the caller
                return None

    def _should_resend(self, event: ErrorEvent) -> bool:
        return (
            event.code == "RATE_LIMIT"
            and isinstance(self._request, SendMessage)
            and not self._answering
            and not self._interrupt_sent
            and self._resends < self._client.backoff.max_attempts
        )

    async def _resend(self, event: ErrorEvent) -> None:
        conn = self._conn
        assert conn is not None
        self._resends += 1
        delay = event.retry_after
        if delay is None:
            delay = self._client.backoff.delay(self._resends)
        logger.info("chat %s: rate limited; resending in %.2f s", self.chat_id, delay)
        await self._client.sleep(delay)
        await self._client._pace(conn)
        try:
            await conn.send(self._frame)
        except ConnectionClosed:
            self._end(discard=True)
            raise TrellisConnectionLost("the connection to Trellis dropped") from None
        self._deadline = asyncio.get_running_loop().time() + self._client.turn_timeout

    def _end(
        self, *, discard: bool = False, interrupt: bool = False, interrupted: bool = False
    ) -> None:
        """The turn is over: free its socket, or drop it when its state is unknown."""
        self._finished = True
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.detach()
        # An interrupt that crossed the end of the answer gets a stray error later: drop the socket.
        if discard or (self._interrupt_sent and not interrupted):
            conn.pool.discard(conn, interrupt=interrupt)
        else:
            conn.pool.release(conn)
