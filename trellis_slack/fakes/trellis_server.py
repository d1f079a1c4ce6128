"""A local fake of the Trellis chat API (WebSocket and REST, seed and current) for tests and demos.

The fake is split by job: :mod:`.trellis_state` holds what it knows, :mod:`.trellis_session`
serves the WebSocket actions, :mod:`.trellis_turns` plays scripted answers, :mod:`.trellis_rest`
serves the REST API, and :mod:`.trellis_script` builds the scripts. :class:`FakeTrellis` puts
them on two ports of 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from websockets.asyncio.server import Server, serve

from trellis_slack.fakes.trellis_rest import build_rest_app
from trellis_slack.fakes.trellis_script import (
    Question,
    Responder,
    Step,
    answer,
    echo,
    split_pieces,
)
from trellis_slack.fakes.trellis_session import WS_PATH, SocketServer
from trellis_slack.fakes.trellis_state import (
    DEFAULT_INTEGRATIONS,
    DEFAULT_MODELS,
    FakeChat,
    FakeMessage,
    Received,
    TrellisState,
    Version,
)

__all__ = [
    "DEFAULT_INTEGRATIONS",
    "DEFAULT_MODELS",
    "WS_PATH",
    "FakeChat",
    "FakeMessage",
    "FakeTrellis",
    "Question",
    "Received",
    "Responder",
    "Step",
    "Version",
    "answer",
    "echo",
    "split_pieces",
]

logger = logging.getLogger(__name__)


class FakeTrellis(TrellisState):
    """A Trellis chat server on 127.0.0.1: ``/v1/chats/ws`` plus (v-current) the REST API.

    Use ``async with FakeTrellis(...) as trellis:``; point clients at :attr:`ws_url` and
    :attr:`api_url`. A turn plays the steps the :attr:`responder` returns for the question,
    after a ``chat_metadata``; it stops streaming at the first ``message`` or ``error`` (later
    steps are still sent). Chats belong to the token's ``sub``.

    ``error`` events (v-current adds ``code``, ``retryable``, ``debug_id``, ``error_type``):
    ``INVALID_REQUEST`` (a required field is missing), ``UNKNOWN_ACTION``, ``BUSY`` (a turn is
    streaming on this socket; retryable), ``RATE_LIMIT`` (``retry_after_seconds``; retryable),
    ``CHAT_ID_REQUIRED`` (v-current send_message), ``CHAT_NOT_FOUND``, ``MESSAGE_NOT_FOUND``,
    ``NOT_USER_MESSAGE`` (edit of an assistant message), ``NO_DATASOURCE``, ``NOT_STREAMING``
    (interrupt with nothing streaming), ``WS_CONNECTION_CAP`` (before close 4429), and
    ``AGENT_ERROR`` (the default for a scripted :meth:`Step.error`).

    REST chats (v-current): ``POST /v1/chats/create`` answers ``409 OPEN_CHAT_CAP`` once the
    member has ``max_open_chats`` chats (counted in ``cap_refusals``) and, with
    ``enforce_rate_limits``, ``429`` past ``chat_create_limit`` per token; ``DELETE
    /v1/chats/{id}`` deletes one of the caller's chats (kept in ``deleted_chats``; 404 if not).

    REST feedback (v-current; the seed has no REST, so 404): ``PATCH
    /v1/chats/messages/{id}/feedback`` rates an assistant message of the caller's own chats;
    every request is kept in ``feedback_requests``, the ratings in each chat's ``feedback``.

    Close codes: 4001 bad or missing authentication, 4002 a frame that is not a JSON object,
    4429 too many sockets for one token (v-current), 1011 the responder raised, 1001 on
    :meth:`stop`.

    The settings (``responder``, ``require_integration``, …), the recorded ``received`` frames,
    ``chats``, ``members`` and the connection counters are those of :class:`TrellisState`.
    """

    def __init__(
        self,
        *,
        version: Version = "current",
        responder: Responder | None = None,
        api_keys: Iterable[str] = ("test-api-key",),
        max_sockets_per_token: int = 3,
        enforce_rate_limits: bool = False,
        require_integration: bool = False,
        models: list[Any] | None = None,
        integrations: list[dict[str, Any]] | None = None,
        token_ttl: float = 6 * 3600,
        heartbeat_interval: float = 15.0,
        max_open_chats: int = 500,
        chat_create_limit: tuple[int, float] = (20, 60.0),
        refuse_past_cap: bool = False,
    ) -> None:
        super().__init__(
            version=version,
            responder=responder,
            api_keys=api_keys,
            max_sockets_per_token=max_sockets_per_token,
            enforce_rate_limits=enforce_rate_limits,
            require_integration=require_integration,
            models=models,
            integrations=integrations,
            token_ttl=token_ttl,
            heartbeat_interval=heartbeat_interval,
            max_open_chats=max_open_chats,
            chat_create_limit=chat_create_limit,
            refuse_past_cap=refuse_past_cap,
        )
        self.ws_url = ""
        self.api_url = ""
        self._sockets = SocketServer(self)
        self._ws_server: Server | None = None
        self._runner: web.AppRunner | None = None

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Listen on two free ports of 127.0.0.1 (WebSocket, REST); a second call does nothing."""
        if self._ws_server is not None:
            return
        self._ws_server = await serve(
            self._sockets.handle,
            "127.0.0.1",
            0,
            process_request=self._sockets.process_request,
            close_timeout=1.0,
        )
        ws_port = self._ws_server.sockets[0].getsockname()[1]
        self.ws_url = f"ws://127.0.0.1:{ws_port}{WS_PATH}"
        self._runner = web.AppRunner(build_rest_app(self), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        api_port = self._runner.addresses[0][1]
        self.api_url = f"http://127.0.0.1:{api_port}"
        logger.info("fake Trellis (%s) on %s and %s", self.version, self.ws_url, self.api_url)

    async def stop(self) -> None:
        """Close every socket (1001), cancel running scripts, stop both listeners."""
        server, self._ws_server = self._ws_server, None
        runner, self._runner = self._runner, None
        await self._sockets.cancel_all()
        if server is not None:
            server.close()
            await server.wait_closed()
        if runner is not None:
            await runner.cleanup()
        self.cancel_waiters()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ---------------------------------------------------------------- recording and waiting

    @property
    def open_connections(self) -> int:
        """WebSocket connections open right now (authenticated or not)."""
        return len(self._sockets.conns)

    async def wait_for_action(
        self,
        action: str,
        *,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109 - part of the API the tests share
    ) -> Received:
        """Wait until ``count`` frames with ``action`` were received in total; return that one.

        Raises ``TimeoutError`` naming what did arrive, so a test fails instead of hanging.
        """
        try:
            async with asyncio.timeout(timeout):
                await self.wait_until(lambda: len(self.actions(action)) >= count)
        except TimeoutError:
            seen = [r.frame.get("action") for r in self.received if isinstance(r.frame, dict)]
            raise TimeoutError(
                f"{action!r} x{count} not received within {timeout}s; received: {seen[-8:]}"
            ) from None
        return self.actions(action)[count - 1]

    # ---------------------------------------------------------------- fault injection

    def reject_next_connections(self, n: int, *, code: int = 1011, reason: str = "") -> None:
        """Accept the next ``n`` upgrades, then close them with ``code`` instead of authenticating.

        A v-current 4429 is preceded by its ``WS_CONNECTION_CAP`` error frame.
        """
        self.rejections.extend([(code, reason)] * n)

    def rate_limit_next(self, n: int, *, retry_after: float = 0.0) -> None:
        """Answer the next ``n`` ``send_message`` with an error ``RATE_LIMIT``."""
        self.forced_rate_limits.extend([retry_after] * n)

    def inject_before_next_turn(self, frames: Sequence[str]) -> None:
        """Send ``frames`` raw at the start of the next turn, before its ``chat_metadata``."""
        self.injections.append(tuple(frames))

    def fail_next_rest(
        self,
        n: int,
        *,
        status: int = 429,
        detail: str = "Too many requests",
        retry_after: float | None = 1.0,
    ) -> None:
        """Answer the next ``n`` REST requests with ``status`` and ``{"detail"}``.

        ``retry_after`` becomes a ``Retry-After`` header on a 429.
        """
        self.rest_faults.extend([(status, detail, retry_after)] * n)

    async def disconnect_all(self, code: int = 1012, reason: str = "") -> None:
        """Close every open WebSocket with ``code`` (a server restart, say)."""
        await self._sockets.close_all(code, reason)
