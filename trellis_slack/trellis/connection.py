"""One Trellis WebSocket: opening and authenticating it (with backoff), reading it, closing it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from trellis_slack.errors import (
    TrellisAuthError,
    TrellisProtocolError,
    TrellisUnavailable,
)
from trellis_slack.trellis import protocol
from trellis_slack.trellis.pacing import Backoff, SendPacer
from trellis_slack.trellis.protocol import (
    Authenticated,
    ErrorEvent,
    MalformedFinal,
    Pong,
    TrellisEvent,
    Unknown,
)

__all__ = [
    "CLOSE_AUTH",
    "CLOSE_TOO_MANY",
    "Background",
    "Connection",
    "ConnectionHome",
    "Connector",
    "Item",
    "Lost",
    "Sink",
]

logger = logging.getLogger(__name__)

#: Close codes Trellis uses: bad or missing token, and too many sockets for one token.
CLOSE_AUTH = 4001
CLOSE_TOO_MANY = 4429
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
class Lost:
    """Put on a turn's queue when its socket closed."""

    code: int | None


#: What a socket hands to the request using it: a parsed event, or word that it closed.
Item = TrellisEvent | Lost
Sink = asyncio.Queue[Item]


class Background:
    """The client's background tasks (closing sockets, keeping idle ones alive), awaited on close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as a task that is kept until it ends; a failure is logged."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    async def wait(self) -> None:
        """Return once every task (including ones they start meanwhile) has ended."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("a Trellis background task failed: %r", exc)


class ConnectionHome(Protocol):
    """Where a socket belongs (its pool): told when it closes, and given it back after a request."""

    def on_closed(self, conn: Connection) -> None: ...

    def release(self, conn: Connection) -> None: ...

    def discard(self, conn: Connection, *, interrupt: bool = False) -> None: ...


class Connection:
    """One authenticated socket; its reader hands every parsed event to the current sink."""

    __slots__ = (
        "closed",
        "home",
        "idle_task",
        "last_frame_at",
        "number",
        "pacer",
        "reader",
        "sink",
        "ws",
    )

    def __init__(self, ws: ClientConnection, number: int, home: ConnectionHome) -> None:
        self.ws = ws
        self.number = number
        #: The pool it belongs to: give the socket back with ``conn.home.release(conn)``.
        self.home = home
        self.pacer = SendPacer()
        self.sink: Sink | None = None
        self.closed = False
        self.idle_task: asyncio.Task[None] | None = None
        self.reader: asyncio.Task[None] | None = None
        #: ``time.monotonic()`` when the last frame arrived.
        self.last_frame_at: float | None = None

    def __repr__(self) -> str:
        return f"<Trellis socket #{self.number}{' closed' if self.closed else ''}>"

    def start(self) -> None:
        """Start reading frames."""
        self.reader = asyncio.create_task(self._read(), name=f"trellis-reader-{self.number}")

    def attach(self, sink: Sink) -> bool:
        """Route events to ``sink``; False when the socket already closed."""
        if self.closed:
            return False
        self.sink = sink
        return True

    def detach(self) -> None:
        """Events that arrive from now on are for nobody."""
        self.sink = None

    async def send(self, frame: str) -> None:
        await self.ws.send(frame)

    def stop_idle(self) -> None:
        """Cancel the task keeping this socket alive while idle, unless it is the caller."""
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
                self.sink.put_nowait(Lost(code))
            self.home.on_closed(self)

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
        if isinstance(event, MalformedFinal):
            logger.warning(
                "socket #%d: a final %s from Trellis is malformed: %s",
                self.number,
                event.name,
                event.problem,
            )
            logger.debug("socket #%d: the bad frame began %r", self.number, raw[:_FRAME_PREVIEW])
        if self.sink is not None:
            self.sink.put_nowait(event)
        elif not isinstance(event, Pong):
            logger.debug("socket #%d: %s arrived with no turn", self.number, type(event).__name__)


@dataclass(frozen=True, slots=True)
class _Retry:
    """One failed attempt to open a socket: try again after a backoff delay."""

    reason: str
    retry_after: float | None = None


class Connector:
    """Opens authenticated sockets to one Trellis URL, backing off between failed attempts."""

    def __init__(
        self,
        ws_url: str,
        *,
        connect_timeout: float,
        backoff: Backoff,
        sleep: Callable[[float], Awaitable[None]],
        background: Background,
    ) -> None:
        self._ws_url = ws_url
        self.connect_timeout = connect_timeout
        self.backoff = backoff
        self._sleep = sleep
        self._background = background
        self._numbers = itertools.count(1)
        #: Set on shut-down: no socket is opened after that.
        self.closing = False

    def __repr__(self) -> str:
        return f"<Trellis connector{' closing' if self.closing else ''}>"

    def check_open(self) -> None:
        """Raise :class:`TrellisUnavailable` once the client is shut down."""
        if self.closing:
            raise TrellisUnavailable("the Trellis client is shut down")

    async def open(self, token: str, home: ConnectionHome) -> Connection:
        """Open and authenticate a socket with ``token``, backing off between tries."""
        failures = 0
        while True:
            self.check_open()
            outcome = await self._attempt(token, home)
            if isinstance(outcome, Connection):
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
            await self._sleep(delay)

    async def _attempt(self, token: str, home: ConnectionHome) -> Connection | _Retry:
        """One attempt: connect, send the authenticate frame, wait for ``authenticated``."""
        ws: ClientConnection | None = None
        refusal: ErrorEvent | None = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                ws = await connect(
                    self._ws_url,
                    proxy=None,
                    open_timeout=None,
                    max_size=_MAX_FRAME,
                    close_timeout=min(self.connect_timeout, 5.0),
                    logger=_WS_LOGGER,
                )
                await ws.send(protocol.authenticate(token))
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
                self._background.spawn(ws.close())
            outcome = _translate_open_error(exc, refusal)
            if isinstance(outcome, _Retry):
                return outcome
            if outcome is exc:
                raise
            raise outcome from None
        if self.closing:
            self._background.spawn(ws.close())
            raise TrellisUnavailable("the Trellis client is shut down")
        conn = Connection(ws, next(self._numbers), home)
        conn.start()
        logger.info("socket #%d: authenticated", conn.number)
        return conn


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
