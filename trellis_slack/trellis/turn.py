"""One turn on Trellis: a question (or an edit) sent on a pooled socket, and its streamed answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, runtime_checkable

from websockets.exceptions import ConnectionClosed

from trellis_slack.errors import (
    TrellisConnectionLost,
    TrellisMalformedAnswer,
    TrellisTimeout,
)
from trellis_slack.trellis import protocol
from trellis_slack.trellis.connection import Connection, Lost, Sink
from trellis_slack.trellis.pacing import Backoff
from trellis_slack.trellis.protocol import (
    ChatMetadata,
    ErrorEvent,
    Interrupted,
    MalformedFinal,
    Message,
    Pong,
    Processing,
    TextDelta,
    ToolEvent,
    TrellisEvent,
    Visualization,
)
from trellis_slack.trellis.uploads import NOT_TAKEN, FileToUpload, Uploaded, attach

__all__ = ["EditMessage", "SendMessage", "Turn", "TurnHost", "UploadingHost"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Ask a question; a new chat when ``chat_id`` is None."""

    text: str
    chat_id: str | None = None
    integration_id: str | None = None
    model: str | None = None
    title: str | None = None
    #: Ask for the steps Trellis takes (`protocol.ToolEvent`s come back among the events).
    include_tool_events: bool = False
    #: Files to upload into the chat (REST, once it exists) and attach to the question.
    files: tuple[FileToUpload, ...] = ()


@dataclass(frozen=True, slots=True)
class EditMessage:
    """Replace an earlier user message and get a fresh answer."""

    message_id: str
    text: str
    integration_id: str | None = None
    model: str | None = None
    include_tool_events: bool = False


class TurnHost(Protocol):
    """What a turn needs from the client running it: chats, sockets, and the client's timings."""

    turn_timeout: float
    backoff: Backoff

    def check_open(self) -> None:
        """Raise ``TrellisUnavailable`` once the client is shut down."""

    async def create_chat(
        self,
        identity: str | None,
        request: SendMessage,
        *,
        on_wait: Callable[[], Awaitable[None]] | None = None,
    ) -> str | None:
        """A new chat for ``request`` (REST), or None where a chat starts with its first message.

        ``on_wait`` runs when creation must wait for Trellis's chat-creation limit.
        """

    async def send(
        self,
        identity: str | None,
        frame: str,
        sink: Sink,
        *,
        pace: bool,
        on_queued: Callable[[], Awaitable[None]] | None,
    ) -> Connection:
        """Send ``frame`` on a socket of the identity's token whose events now go to ``sink``."""

    async def pace(self, conn: Connection) -> None:
        """Wait until ``conn`` may carry another ``send_message``."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (injected: zero in tests)."""


@runtime_checkable
class UploadingHost(TurnHost, Protocol):
    """A turn host that can also upload files into a chat (Trellis REST, v-current)."""

    async def upload(
        self, identity: str | None, chat_id: str, files: tuple[FileToUpload, ...]
    ) -> tuple[Uploaded, ...]:
        """Upload ``files`` into ``chat_id`` as ``identity``; raises as `TrellisRest.upload`."""


class Turn:
    """One question (or edit) and its streamed answer, on one socket.

    Use ``async with client.turn(...) as turn: async for event in turn: ...``. Entering sends the
    request (after queueing for a socket if all are busy); iterating yields :class:`ChatMetadata`,
    :class:`Processing`, :class:`TextDelta`, :class:`Visualization` and finally one of
    :class:`Message`, :class:`Interrupted` or :class:`ErrorEvent`, then stops. A final frame
    too malformed to read raises :class:`TrellisMalformedAnswer` at once. Leaving the
    ``async with`` block early interrupts the answer and drops its socket; without the block,
    iterate to the end.
    """

    def __init__(
        self,
        host: TurnHost,
        request: SendMessage | EditMessage,
        *,
        identity: str | None,
        on_queued: Callable[[], Awaitable[None]] | None,
    ) -> None:
        #: The chat this turn is in: the one the request named; else the one created over REST
        #: before sending (kept even when entering then fails or is cancelled, so a retry can
        #: continue it); then the one Trellis names in ``chat_metadata``. None until known.
        self.chat_id: str | None = request.chat_id if isinstance(request, SendMessage) else None
        #: The files Trellis took for the question, attached to it by their ids.
        self.uploaded: tuple[Uploaded, ...] = ()
        #: Why the request's files were not attached (the question went without them), if so.
        self.files_refused: str | None = None
        #: The persisted id of the question in Trellis, from ``chat_metadata``.
        self.user_message_id: str | None = None
        #: True once the request had to wait (for a free socket, or to create its chat).
        self.queued = False
        #: What it waits for, while ``on_queued`` runs: ``"connection"`` or ``"chat"``.
        self.waiting_for = "connection"
        self._announced: set[str] = set()
        self._host = host
        self._request = request
        self._identity = identity
        self._on_queued = on_queued
        self._sink: Sink = asyncio.Queue()
        self._conn: Connection | None = None
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
                timeout = self._host.turn_timeout
                logger.warning("chat %s: nothing for %g s; interrupting", self.chat_id, timeout)
                self._end(discard=True, interrupt=True)
                raise TrellisTimeout(
                    f"Trellis sent nothing for {timeout:g} s; the answer was stopped"
                ) from None
            if isinstance(item, Lost):
                self._end(discard=True)
                logger.warning(
                    "chat %s: the socket closed mid-turn (code %s)", self.chat_id, item.code
                )
                raise TrellisConnectionLost("the connection to Trellis dropped during the answer")
            if not isinstance(item, protocol.Heartbeat | Pong):
                self._deadline = loop.time() + self._host.turn_timeout
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
        self._host.check_open()
        self._started = True
        request = self._request
        try:
            if isinstance(request, SendMessage):
                if self.chat_id is None:
                    self.chat_id = await self._host.create_chat(
                        self._identity, request, on_wait=self._chat_queued
                    )
                await self._upload(request)
                self._frame = protocol.send_message(
                    request.text,
                    chat_id=self.chat_id,
                    integration_id=request.integration_id,
                    model=request.model,
                    title=request.title,
                    include_tool_events=request.include_tool_events,
                    upload_ids=tuple(upload.id for upload in self.uploaded),
                )
            else:
                self._frame = protocol.edit_message(
                    request.message_id,
                    request.text,
                    integration_id=request.integration_id,
                    model=request.model,
                    include_tool_events=request.include_tool_events,
                )
            self._conn = await self._host.send(
                self._identity,
                self._frame,
                self._sink,
                pace=isinstance(request, SendMessage),
                on_queued=self._queued,
            )
        except BaseException:
            self._finished = True
            raise
        self._deadline = asyncio.get_running_loop().time() + self._host.turn_timeout
        logger.info("chat %s: request sent on socket #%d", self.chat_id, self._conn.number)

    async def _upload(self, request: SendMessage) -> None:
        """Upload the files into the chat; if Trellis cannot take them, say why and go without."""
        host, chat_id, files = self._host, self.chat_id, request.files
        if not files:
            return
        if chat_id is None or not isinstance(host, UploadingHost):
            self.files_refused = NOT_TAKEN  # v-seed: no chat before the first message
        else:
            self.uploaded, self.files_refused = await attach(
                lambda: host.upload(self._identity, chat_id, files), host.sleep
            )
        if self.files_refused is not None:
            logger.warning("chat %s: files not attached: %s", self.chat_id, self.files_refused)

    async def _chat_queued(self) -> None:
        logger.info("a new chat waits for Trellis's chat-creation limit; queued")
        await self._announce("chat")

    async def _queued(self) -> None:
        if "connection" not in self._announced:
            logger.info("chat %s: every Trellis socket is busy; queued", self.chat_id)
        await self._announce("connection")

    async def _announce(self, reason: str) -> None:
        """Run ``on_queued`` once for each thing the request waits for."""
        if reason in self._announced:
            return
        self._announced.add(reason)
        self.queued = True
        self.waiting_for = reason
        if self._on_queued is not None:
            try:
                await self._on_queued()
            except Exception:
                logger.exception("chat %s: the on_queued callback failed", self.chat_id)

    async def _handle(self, event: TrellisEvent) -> TrellisEvent | None:
        """The event to yield, or None to read on; raises when the turn ends unreadably."""
        match event:
            case ChatMetadata():
                self._answering = True
                self.chat_id = event.chat_id
                self.user_message_id = event.user_message_id
                return event
            case Processing() | TextDelta() | Visualization() | ToolEvent():
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
            case MalformedFinal():
                # The answer is over, but unreadable: end now rather than wait for the time-out.
                logger.warning(
                    "chat %s: the final %s could not be read (%s); the turn ends",
                    self.chat_id,
                    event.name,
                    event.problem,
                )
                self._end(discard=True)
                raise TrellisMalformedAnswer()
            case _:  # pongs, heartbeats and the like are not for the caller
                return None

    def _should_resend(self, event: ErrorEvent) -> bool:
        return (
            event.code == "RATE_LIMIT"
            and isinstance(self._request, SendMessage)
            and not self._answering
            and not self._interrupt_sent
            and self._resends < self._host.backoff.max_attempts
        )

    async def _resend(self, event: ErrorEvent) -> None:
        conn = self._conn
        assert conn is not None
        self._resends += 1
        delay = event.retry_after
        if delay is None:
            delay = self._host.backoff.delay(self._resends)
        logger.info("chat %s: rate limited; resending in %.2f s", self.chat_id, delay)
        await self._host.sleep(delay)
        await self._host.pace(conn)
        try:
            await conn.send(self._frame)
        except ConnectionClosed:
            self._end(discard=True)
            raise TrellisConnectionLost("the connection to Trellis dropped") from None
        self._deadline = asyncio.get_running_loop().time() + self._host.turn_timeout

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
            conn.home.discard(conn, interrupt=interrupt)
        else:
            conn.home.release(conn)
