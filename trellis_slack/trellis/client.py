"""The Trellis WebSocket client: runs turns and one-off actions on pooled, authenticated sockets.

The work is split by job: :mod:`.connection` opens and reads one socket, :mod:`.pool` keeps each
token's sockets (at most ``max_connections``, handed out FIFO), :mod:`.turn` runs one question's
stream; this module ties them to tokens and REST behind :class:`TrellisClient`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from trellis_slack.errors import (
    TrellisAPIError,
    TrellisConnectionLost,
    TrellisMalformedAnswer,
    TrellisRateLimited,
    TrellisTimeout,
)
from trellis_slack.trellis import protocol
from trellis_slack.trellis.connection import (
    CLOSE_AUTH,
    CLOSE_TOO_MANY,
    Background,
    Connection,
    Connector,
    Lost,
    Sink,
)
from trellis_slack.trellis.pacing import CHAT_CREATE_LIMITS, Backoff, SendPacer
from trellis_slack.trellis.pool import Pools
from trellis_slack.trellis.protocol import ErrorEvent, MalformedFinal, Pong, TrellisEvent
from trellis_slack.trellis.rest import TrellisRest
from trellis_slack.trellis.shared import FleetLimits, member_key
from trellis_slack.trellis.tokens import TokenProvider, with_token
from trellis_slack.trellis.turn import EditMessage, SendMessage, Turn
from trellis_slack.trellis.uploads import UPLOADS_PER_MINUTE, FileToUpload, Uploaded

__all__ = [
    "CLOSE_AUTH",
    "CLOSE_TOO_MANY",
    "Backoff",
    "EditMessage",
    "SendMessage",
    "TrellisClient",
    "Turn",
]

logger = logging.getLogger(__name__)


OnQueued = Callable[[], Awaitable[None]]


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
        chat_create_limits: Sequence[tuple[int, float]] = CHAT_CREATE_LIMITS,
        limits: FleetLimits | None = None,
    ) -> None:
        self._background = Background()
        connector = Connector(
            ws_url,
            connect_timeout=connect_timeout,
            backoff=backoff,
            sleep=sleep,
            background=self._background,
        )
        self._pools = Pools(
            connector,
            self._background,
            max_connections=max_connections,
            idle_timeout=idle_timeout,
            ping_interval=ping_interval,
            pace=pace,
            sleep=sleep,
            limits=limits,
        )
        self._host = _TurnHost(
            self._pools,
            tokens,
            rest,
            turn_timeout=turn_timeout,
            backoff=backoff,
            sleep=sleep,
            chat_create_limits=chat_create_limits if pace else (),
            upload_limits=((UPLOADS_PER_MINUTE, 60.0),) if pace else (),
            limits=limits,
        )
        self._connect_timeout = connect_timeout
        #: At most this many sockets per token.
        self.max_connections = self._pools.max_connections

    def __repr__(self) -> str:
        return (
            f"<TrellisClient sockets={self.open_connections} queued={self.queued_turns}"
            f" pools={len(self._pools)}>"
        )

    def close_idle(self, member: str) -> bool:
        """Close one idle socket of the member ``member`` (`shared.member_key`), if it has one."""
        return self._pools.close_idle(member)

    @property
    def turn_timeout(self) -> float:
        """A turn that gets no event for this long is interrupted and fails."""
        return self._host.turn_timeout

    @property
    def closing(self) -> bool:
        """True once :meth:`aclose` was called."""
        return self._pools.closing

    def turn(
        self,
        request: SendMessage | EditMessage,
        *,
        identity: str | None = None,
        on_queued: OnQueued | None = None,
    ) -> Turn:
        """A turn to run with ``async with client.turn(...) as turn: async for event in turn``.

        The :class:`Turn` is both the context manager and the handle; its ``chat_id`` is set as
        soon as a chat exists, even when entering then fails.
        """
        return Turn(self._host, request, identity=identity, on_queued=on_queued)

    async def delete_message(self, message_id: str, *, identity: str | None = None) -> None:
        """Delete a message and everything after it; waits for Trellis to confirm."""

        def done(event: TrellisEvent) -> bool:
            return isinstance(event, protocol.Deleted) and event.message_id == message_id

        frame = protocol.delete_message(message_id)
        await self._host.exchange(identity, frame, done, self.turn_timeout)
        logger.info("deleted Trellis message %s", message_id)

    async def delete_chat(self, chat_id: str, *, identity: str | None = None) -> bool:
        """Delete a chat in Trellis (REST) as ``identity``; False when Trellis does not have it.

        Without a REST API (v-seed) there is nothing to delete with: False.
        """
        return await self._host.delete_chat(identity, chat_id)

    async def check(self, *, identity: str | None = None) -> None:
        """Open (or reuse) an authenticated socket and ping it; raises when Trellis is unusable."""
        await self._host.exchange(
            identity, protocol.ping(), lambda e: isinstance(e, Pong), self._connect_timeout
        )

    @property
    def open_connections(self) -> int:
        """Sockets open right now, over all tokens."""
        return self._pools.open_connections

    @property
    def queued_turns(self) -> int:
        """Requests waiting for a free socket."""
        return self._pools.queued

    async def aclose(self) -> None:
        """Close every socket; queued requests fail, streaming turns see the connection lost."""
        self._pools.close()
        await self._background.wait()


class _TurnHost:
    """What turns and actions run on (a :class:`~.turn.TurnHost`): tokens, REST and the pools."""

    def __init__(
        self,
        pools: Pools,
        tokens: TokenProvider,
        rest: TrellisRest | None,
        *,
        turn_timeout: float,
        backoff: Backoff,
        sleep: Callable[[float], Awaitable[None]],
        chat_create_limits: Sequence[tuple[int, float]] = CHAT_CREATE_LIMITS,
        upload_limits: Sequence[tuple[int, float]] = (),
        limits: FleetLimits | None = None,
    ) -> None:
        self._pools = pools
        self._limits = limits
        self._tokens = tokens
        self._rest = rest
        self.turn_timeout = turn_timeout
        self.backoff = backoff
        self._sleep = sleep
        self._chat_create_missing = False
        #: Trellis's limits per token on REST calls (most calls, window in s), by what is paced.
        self._rest_limits = {"chats": tuple(chat_create_limits), "uploads": tuple(upload_limits)}
        #: One pacer per kind and identity (one token each; None: the shared token).
        self._pacers: dict[tuple[str, str | None], SendPacer] = {}

    def __repr__(self) -> str:
        return f"<Trellis turn host {self._pools!r}>"

    def check_open(self) -> None:
        self._pools.connector.check_open()

    async def sleep(self, seconds: float) -> None:
        await self._sleep(seconds)

    async def pace(self, conn: Connection) -> None:
        await self._pools.pace(conn)

    async def upload(
        self, identity: str | None, chat_id: str, files: tuple[FileToUpload, ...]
    ) -> tuple[Uploaded, ...]:
        """Upload ``files`` into ``chat_id`` as ``identity`` (REST); raises as `TrellisRest.upload`."""
        rest = self._rest
        if rest is None:
            raise TrellisAPIError("this Trellis takes no files", status=404)

        async def upload(token: str) -> tuple[Uploaded, ...]:
            return await rest.upload(token, chat_id, files)

        # Within Trellis's 30 upload requests a minute per token, so a burst waits, not fails.
        await self._paced("uploads", identity, None)
        return await with_token(self._tokens, identity, upload)

    async def create_chat(
        self, identity: str | None, request: SendMessage, *, on_wait: OnQueued | None = None
    ) -> str | None:
        """Create the chat over REST first (v-current); None where chats start with a message.

        Creation is paced within Trellis's limit per token (``on_wait`` runs first when it must
        wait), and a ``429`` is waited out and tried again, up to ``backoff.max_attempts`` times.
        A refusal for the open-chat cap raises `TrellisAPIError` with ``code`` ``OPEN_CHAT_CAP``.
        """
        rest = self._rest
        if rest is None or self._chat_create_missing:
            return None

        async def create(token: str) -> str | None:
            return await rest.create_chat(
                token, title=request.title, integration_id=request.integration_id
            )

        attempt = 0
        while True:
            attempt += 1
            await self._paced("chats", identity, on_wait)
            try:
                chat_id = await with_token(self._tokens, identity, create)
            except TrellisRateLimited as exc:
                if attempt >= self.backoff.max_attempts:
                    raise
                delay = exc.retry_after
                if delay is None:
                    delay = self.backoff.delay(attempt)
                logger.info("chat creation rate limited; trying again in %.2f s", delay)
                if on_wait is not None:
                    await on_wait()
                await self._sleep(delay)
                continue
            break
        if chat_id is None:
            self._chat_create_missing = True
        return chat_id

    async def _paced(self, what: str, identity: str | None, on_wait: OnQueued | None) -> None:
        """Wait until ``identity`` may make one more ``what`` call within Trellis's limit."""
        limits = self._rest_limits[what]
        if not limits:
            return
        pacer = self._pacers.get((what, identity))
        if pacer is None:
            pacer = self._pacers[what, identity] = SendPacer(limits)
        wait = pacer.reserve()
        if self._limits is not None:
            # The same limit over every replica: the longer of the two waits.
            member = "shared" if identity is None else member_key(f"identity:{identity}")
            per_minute = next((n for n, per in limits if per == 60.0), None)
            if per_minute is not None:
                wait = max(wait, await self._limits.rate(what, member, per_minute))
        if wait > 0:
            logger.info("%s paced: waiting %.2f s", what, wait)
            if on_wait is not None:
                await on_wait()
            await self._sleep(wait)

    async def delete_chat(self, identity: str | None, chat_id: str) -> bool:
        """Delete ``chat_id`` over REST as ``identity``; False when gone or there is no REST."""
        rest = self._rest
        if rest is None:
            return False

        async def delete(token: str) -> bool:
            return await rest.delete_chat(token, chat_id)

        deleted = await with_token(self._tokens, identity, delete)
        logger.info("deleted Trellis chat %s" if deleted else "Trellis chat %s was gone", chat_id)
        return deleted

    async def send(
        self,
        identity: str | None,
        frame: str,
        sink: Sink,
        *,
        pace: bool,
        on_queued: OnQueued | None,
    ) -> Connection:
        """Send ``frame`` with the identity's token (once more with a fresh one if refused)."""

        async def attempt(token: str) -> Connection:
            return await self._pools.send(token, frame, sink, pace=pace, on_queued=on_queued)

        return await with_token(self._tokens, identity, attempt)

    async def exchange(
        self,
        identity: str | None,
        frame: str,
        done: Callable[[TrellisEvent], bool],
        within: float,
    ) -> TrellisEvent:
        """Send one non-streaming action and wait for its answer (or an error event)."""
        self.check_open()
        sink: Sink = asyncio.Queue()
        conn = await self.send(identity, frame, sink, pace=False, on_queued=None)
        try:
            async with asyncio.timeout(within):
                while True:
                    item = await sink.get()
                    if isinstance(item, Lost):
                        raise TrellisConnectionLost("the connection to Trellis dropped")
                    if isinstance(item, MalformedFinal) and item.name == "error":
                        raise TrellisMalformedAnswer()  # an unreadable error: the socket is dropped
                    if isinstance(item, ErrorEvent):
                        conn.detach()
                        conn.home.release(conn)
                        raise _api_error(item)
                    if done(item):
                        conn.detach()
                        conn.home.release(conn)
                        return item
        except TimeoutError:
            conn.detach()
            conn.home.discard(conn)
            raise TrellisTimeout(f"Trellis did not answer within {within:g} s") from None
        except TrellisAPIError:
            raise
        except BaseException:
            conn.detach()
            conn.home.discard(conn)
            raise


def _api_error(event: ErrorEvent) -> TrellisAPIError:
    return TrellisAPIError(
        event.message, code=event.code, retryable=event.retryable, debug_id=event.debug_id
    )
