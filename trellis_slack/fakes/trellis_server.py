"""A local fake of the Trellis chat API (WebSocket and REST, seed and current) for tests and demos."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final, Literal, Self
from urllib.parse import parse_qs, urlsplit

import jwt
from aiohttp import web
from aiohttp.typedefs import Handler
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from trellis_slack.fakes.trellis_script import (
    CLOSE,
    DROP,
    PAUSE,
    RAW,
    Question,
    Responder,
    Step,
    answer,
    echo,
    new_visualization_id,
    split_pieces,
)

__all__ = [
    "DEFAULT_INTEGRATIONS",
    "DEFAULT_MODELS",
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

Version = Literal["seed", "current"]

WS_PATH: Final = "/v1/chats/ws"

DEFAULT_MODELS: Final[tuple[dict[str, str], ...]] = (
    {
        "model_id": "claude-sonnet-4-6",
        "display_name": "Claude Sonnet 4.6",
        "description": "Balanced speed and depth; the default.",
    },
    {
        "model_id": "claude-opus-4-6",
        "display_name": "Claude Opus 4.6",
        "description": "Deepest analysis, slower.",
    },
    {
        "model_id": "claude-haiku-4-5",
        "display_name": "Claude Haiku 4.5",
        "description": "Fastest answers for simple questions.",
    },
)

DEFAULT_INTEGRATIONS: Final[tuple[dict[str, str], ...]] = (
    {
        "id": "550e8400-e29b-41d4-a716-446655440000",
        "display_name": "Demo warehouse",
        "type": "postgres",
    },
)

_TOOL_EVENTS: Final = frozenset({"tool_call", "tool_result", "tool_message"})
_SEED_NEVER_SENDS: Final = frozenset({"text_delta", "heartbeat"})
_RATE_LIMIT_CODES: Final = frozenset({"RATE_LIMIT", "WS_CONNECTION_CAP"})
# (window in seconds, most send_message allowed in it) per socket, and per token.
_SOCKET_LIMITS: Final = ((10.0, 3), (60.0, 10))
_TOKEN_LIMITS: Final = ((60.0, 30),)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class FakeMessage:
    """One message in a fake chat."""

    id: str
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class FakeChat:
    """A chat the fake holds; ``messages`` is edited in place as the conversation goes."""

    id: str
    title: str
    integration_id: str | None
    messages: list[FakeMessage] = field(default_factory=list)
    #: The ``sub`` of the token that created it; other members cannot see it.
    owner: str | None = None

    def find(self, message_id: str) -> int | None:
        """Index of the message with ``message_id``, if it is in this chat."""
        for index, message in enumerate(self.messages):
            if message.id == message_id:
                return index
        return None

    def as_json(self) -> dict[str, Any]:
        """The chat as ``GET /v1/chats/{id}`` answers it."""
        return {
            "id": self.id,
            "title": self.title,
            "integration_id": self.integration_id,
            "messages": [{"id": m.id, "role": m.role, "content": m.content} for m in self.messages],
        }


@dataclass(frozen=True, slots=True)
class Received:
    """One frame a client sent: the parsed JSON object, or the raw text when it was not one."""

    conn_id: int
    token_sub: str | None
    frame: dict[str, Any] | str


@dataclass(frozen=True, slots=True)
class _Problem:
    """An error the server answers with an ``error`` event."""

    text: str
    code: str
    retryable: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


class _Turn:
    """One streaming response on one connection."""

    __slots__ = ("announced", "heartbeat", "streaming", "task")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.heartbeat: asyncio.Task[None] | None = None
        self.streaming = True
        #: Set once ``chat_metadata`` went out: every response starts with it, even one that is
        #: interrupted at once (the user message is already stored).
        self.announced = asyncio.Event()

    def finish(self) -> None:
        """The terminal event is going out: the connection may take a new turn."""
        self.streaming = False
        if self.heartbeat is not None:
            self.heartbeat.cancel()


class _Conn:
    """Server-side state of one WebSocket connection."""

    __slots__ = ("heartbeat", "id", "sends", "sub", "tasks", "token", "turn", "ws")

    def __init__(self, conn_id: int, ws: ServerConnection, *, heartbeat: bool) -> None:
        self.id = conn_id
        self.ws = ws
        self.heartbeat = heartbeat
        self.token: str | None = None
        self.sub: str | None = None
        self.turn: _Turn | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.sends: deque[float] = deque()

    @property
    def streaming(self) -> bool:
        return self.turn is not None and self.turn.streaming

    def spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def cancel_tasks(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def send_event(self, event: str, data: Mapping[str, Any]) -> None:
        await self.ws.send(json.dumps({"event": event, "data": data}))


def _prune(sends: deque[float], now: float, longest: float) -> None:
    while sends and sends[0] <= now - longest:
        sends.popleft()


def _retry_after(sends: deque[float], now: float, limits: Sequence[tuple[float, int]]) -> float:
    """Seconds until ``sends`` is back under every limit (0 when it already is)."""
    wait = 0.0
    for window, limit in limits:
        recent = [t for t in sends if t > now - window]
        if len(recent) >= limit:
            wait = max(wait, recent[len(recent) - limit] + window - now)
    return wait


class FakeTrellis:
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

    Close codes: 4001 bad or missing authentication, 4002 a frame that is not a JSON object,
    4429 too many sockets for one token (v-current), 1011 the responder raised, 1001 on
    :meth:`stop`.
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
    ) -> None:
        self.version: Version = version
        self.responder: Responder = responder if responder is not None else echo
        #: Called with (event, data) just before each scripted event is sent (benchmarks time it).
        self.on_step: Callable[[str, Mapping[str, Any]], None] | None = None
        self.api_keys = frozenset(api_keys)
        self.max_sockets_per_token = max_sockets_per_token
        self.enforce_rate_limits = enforce_rate_limits
        self.require_integration = require_integration
        self.models: list[Any] = (
            list(models) if models is not None else [dict(m) for m in DEFAULT_MODELS]
        )
        self.integrations: list[dict[str, Any]] = (
            list(integrations)
            if integrations is not None
            else [dict(i) for i in DEFAULT_INTEGRATIONS]
        )
        self.token_ttl = token_ttl
        self.heartbeat_interval = heartbeat_interval
        self.max_open_chats = max_open_chats
        self.organization_id = _new_id("org")
        self._secret = secrets.token_hex(32)

        self.ws_url = ""
        self.api_url = ""
        self.received: list[Received] = []
        self.chats: dict[str, FakeChat] = {}
        self.members: dict[str, str] = {}  # e-mail -> member id
        self.peak_connections = 0
        self.accepted_connections = 0
        self.authenticated_connections = 0
        self.auth_failures = 0

        self._conns: dict[int, _Conn] = {}
        self._next_conn_id = 0
        self._token_conns: dict[str, set[int]] = {}
        self._token_sends: dict[str, deque[float]] = {}
        self._rejections: deque[tuple[int, str]] = deque()
        self._forced_rate_limits: deque[float] = deque()
        self._rest_faults: deque[tuple[int, str, float | None]] = deque()
        self._injections: deque[tuple[str, ...]] = deque()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._ws_server: Server | None = None
        self._runner: web.AppRunner | None = None

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Listen on two free ports of 127.0.0.1 (WebSocket, REST); a second call does nothing."""
        if self._ws_server is not None:
            return
        self._ws_server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            close_timeout=1.0,
        )
        ws_port = self._ws_server.sockets[0].getsockname()[1]
        self.ws_url = f"ws://127.0.0.1:{ws_port}{WS_PATH}"
        self._runner = web.AppRunner(self._build_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        api_port = self._runner.addresses[0][1]
        self.api_url = f"http://127.0.0.1:{api_port}"
        logger.info("fake Trellis (%s) on %s and %s", self.version, self.ws_url, self.api_url)

    async def stop(self) -> None:
        """Close every socket (1001), cancel running scripts, stop both listeners."""
        server, self._ws_server = self._ws_server, None
        runner, self._runner = self._runner, None
        for conn in list(self._conns.values()):
            await conn.cancel_tasks()
        if server is not None:
            server.close()
            await server.wait_closed()
        if runner is not None:
            await runner.cleanup()
        for _, future in self._waiters:
            future.cancel()
        self._waiters.clear()

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

    # ---------------------------------------------------------------- tokens

    def make_token(
        self, sub: str = "user-1", *, ttl: float = 3600.0, exp: float | None = None
    ) -> str:
        """A JWT this server accepts (HS256, its own secret); ``exp`` in the past makes it expired."""
        now = time.time()
        claims: dict[str, Any] = {
            "sub": sub,
            "org": self.organization_id,
            "iat": int(now),
            "exp": int(exp if exp is not None else now + ttl),
        }
        if self.version == "current":
            claims["jti"] = uuid.uuid4().hex
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def _verify(self, token: str) -> dict[str, Any] | None:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=["HS256"], options={"require": ["exp", "sub"]}
            )
        except jwt.InvalidTokenError:
            return None
        return claims

    # ---------------------------------------------------------------- recording and waiting

    @property
    def open_connections(self) -> int:
        """WebSocket connections open right now (authenticated or not)."""
        return len(self._conns)

    def _changed(self) -> None:
        for predicate, future in self._waiters:
            if future.done():
                continue
            try:
                if predicate():
                    future.set_result(None)
            except Exception as exc:  # handed to the waiting test
                future.set_exception(exc)

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` is true; checked on every frame and connect/disconnect.

        There is no timeout here: wrap the call in ``asyncio.timeout(...)``.
        """
        if predicate():
            return
        entry = (predicate, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            await entry[1]
        finally:
            self._waiters.remove(entry)

    def actions(self, action: str) -> list[Received]:
        """Every received frame whose ``action`` is ``action``, oldest first."""
        return [
            r
            for r in self.received
            if isinstance(r.frame, dict) and r.frame.get("action") == action
        ]

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
        self._rejections.extend([(code, reason)] * n)

    def rate_limit_next(self, n: int, *, retry_after: float = 0.0) -> None:
        """Answer the next ``n`` ``send_message`` with an error ``RATE_LIMIT``."""
        self._forced_rate_limits.extend([retry_after] * n)

    def inject_before_next_turn(self, frames: Sequence[str]) -> None:
        """Send ``frames`` raw at the start of the next turn, before its ``chat_metadata``."""
        self._injections.append(tuple(frames))

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
        self._rest_faults.extend([(status, detail, retry_after)] * n)

    async def disconnect_all(self, code: int = 1012, reason: str = "") -> None:
        """Close every open WebSocket with ``code`` (a server restart, say)."""
        conns = list(self._conns.values())
        if conns:
            await asyncio.gather(*(c.ws.close(code, reason) for c in conns))

    # ---------------------------------------------------------------- WebSocket

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path != WS_PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        if self.version == "current" and "token" in parse_qs(url.query):
            self.auth_failures += 1
            return connection.respond(
                HTTPStatus.FORBIDDEN,
                "A token in the query string is not accepted; use the Authorization header "
                "or an authenticate frame.\n",
            )
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self._next_conn_id += 1
        request = ws.request
        assert request is not None  # the handler only runs after the opening handshake
        query = parse_qs(urlsplit(request.path).query)
        conn = _Conn(
            self._next_conn_id,
            ws,
            heartbeat=self.version == "current"
            and query.get("heartbeat", [""])[0] in {"1", "true"},
        )
        self._conns[conn.id] = conn
        self.accepted_connections += 1
        self.peak_connections = max(self.peak_connections, len(self._conns))
        self._changed()
        try:
            await self._serve(conn, query, request.headers.get("Authorization", ""))
        except ConnectionClosed:
            pass
        finally:
            await conn.cancel_tasks()
            del self._conns[conn.id]
            self._release_token(conn)
            self._changed()

    async def _serve(self, conn: _Conn, query: Mapping[str, list[str]], authorization: str) -> None:
        if self._rejections:
            code, reason = self._rejections.popleft()
            if code == 4429 and self.version == "current":
                await self._send_error(conn, self._cap_problem())
            await conn.ws.close(code, reason)
            return
        token: str | None = None
        if self.version == "seed":
            token = query.get("token", [None])[0]
        else:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer":
                token = value.strip()
        if token is not None and not await self._authenticate(conn, token):
            return
        async for raw in conn.ws:
            if not await self._on_frame(conn, raw):
                return

    def _cap_problem(self) -> _Problem:
        return _Problem(
            f"Too many connections for this token (at most {self.max_sockets_per_token})",
            "WS_CONNECTION_CAP",
            retryable=True,
        )

    async def _authenticate(self, conn: _Conn, token: str) -> bool:
        claims = self._verify(token)
        if claims is None:
            self.auth_failures += 1
            await conn.ws.close(4001, "Invalid or expired token")
            return False
        if conn.sub is None:
            open_for_token = self._token_conns.get(token, set())
            if self.version == "current" and len(open_for_token) >= self.max_sockets_per_token:
                await self._send_error(conn, self._cap_problem())
                await conn.ws.close(4429, "Too many connections")
                return False
            conn.token = token
            conn.sub = str(claims["sub"])
            self._token_conns.setdefault(token, set()).add(conn.id)
            self.authenticated_connections += 1
        await conn.send_event("authenticated", {"status": "ok"})
        return True

    def _release_token(self, conn: _Conn) -> None:
        if conn.token is None:
            return
        ids = self._token_conns.get(conn.token)
        if ids is not None:
            ids.discard(conn.id)
            if not ids:
                del self._token_conns[conn.token]
        sends = self._token_sends.get(conn.token)
        if sends is not None:
            _prune(sends, time.monotonic(), _TOKEN_LIMITS[-1][0])
            if not sends:
                del self._token_sends[conn.token]

    async def _on_frame(self, conn: _Conn, raw: str | bytes) -> bool:
        """Handle one frame; False when the connection is being closed."""
        text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
        try:
            frame: Any = json.loads(text)
        except ValueError:
            frame = None
        self.received.append(
            Received(conn.id, conn.sub, frame if isinstance(frame, dict) else text)
        )
        self._changed()
        if not isinstance(frame, dict):
            await conn.cancel_tasks()
            await conn.ws.close(4002, "Invalid JSON message")
            return False
        action = frame.get("action")
        if action == "authenticate":
            token = frame.get("token")
            return await self._authenticate(conn, token if isinstance(token, str) else "")
        if conn.sub is None:
            self.auth_failures += 1
            await conn.ws.close(4001, "Authentication required")
            return False
        if action == "send_message":
            problem = self._send_message(conn, frame)
        elif action == "edit_message":
            problem = self._edit_message(conn, frame)
        elif action == "delete_message":
            problem = await self._delete_message(conn, frame)
        elif action == "interrupt":
            problem = await self._interrupt(conn)
        elif action == "ping":
            await conn.send_event("pong", {})
            problem = None
        else:
            problem = _Problem(f"Unknown action: {action!r}", "UNKNOWN_ACTION")
        if problem is not None:
            await self._send_error(conn, problem)
        return True

    def _error_data(self, problem: _Problem) -> dict[str, Any]:
        if self.version == "seed":
            return {"error": problem.text}
        return {
            "error": problem.text,
            "code": problem.code,
            "retryable": problem.retryable,
            "debug_id": _new_id("dbg"),
            "error_type": "rate_limit" if problem.code in _RATE_LIMIT_CODES else "invalid_request",
            **problem.extra,
        }

    async def _send_error(self, conn: _Conn, problem: _Problem) -> None:
        await conn.send_event("error", self._error_data(problem))

    # ---------------------------------------------------------------- actions

    def _owned_chat(self, chat_id: str, sub: str) -> FakeChat | None:
        chat = self.chats.get(chat_id)
        return chat if chat is not None and chat.owner == sub else None

    def _find_message(self, message_id: str, sub: str) -> tuple[FakeChat, int] | None:
        for chat in self.chats.values():
            if chat.owner == sub:
                index = chat.find(message_id)
                if index is not None:
                    return chat, index
        return None

    def _open_chats(self, sub: str) -> list[FakeChat]:
        return [chat for chat in self.chats.values() if chat.owner == sub]

    def _create_chat(self, owner: str, title: str, integration_id: str | None) -> FakeChat:
        chat = FakeChat(_new_id("chat"), title, integration_id, owner=owner)
        self.chats[chat.id] = chat
        return chat

    def _rate_limit(self, conn: _Conn) -> _Problem | None:
        retry_after: float | None = None
        if self._forced_rate_limits:
            retry_after = self._forced_rate_limits.popleft()
        elif self.enforce_rate_limits and self.version == "current" and conn.token is not None:
            now = time.monotonic()
            token_sends = self._token_sends.setdefault(conn.token, deque())
            _prune(conn.sends, now, _SOCKET_LIMITS[-1][0])
            _prune(token_sends, now, _TOKEN_LIMITS[-1][0])
            wait = max(
                _retry_after(conn.sends, now, _SOCKET_LIMITS),
                _retry_after(token_sends, now, _TOKEN_LIMITS),
            )
            if wait > 0:
                retry_after = round(wait, 3)
            else:
                conn.sends.append(now)
                token_sends.append(now)
        if retry_after is None:
            return None
        return _Problem(
            f"Rate limit exceeded; retry in {retry_after:g} s",
            "RATE_LIMIT",
            retryable=True,
            extra={"retry_after_seconds": retry_after},
        )

    def _datasource_problem(self, integration_id: str | None) -> _Problem | None:
        if self.require_integration and integration_id is None:
            return _Problem("No datasource connected", "NO_DATASOURCE")
        return None

    def _send_message(self, conn: _Conn, frame: Mapping[str, Any]) -> _Problem | None:
        assert conn.sub is not None
        text = frame.get("message")
        if not isinstance(text, str) or not text.strip():
            return _Problem("message is required", "INVALID_REQUEST")
        if conn.streaming:
            return _Problem("A response is already streaming on this connection", "BUSY", True)
        problem = self._rate_limit(conn)
        if problem is not None:
            return problem
        integration_id = _opt_str(frame.get("integration_id"))
        chat_id = frame.get("chat_id")
        chat: FakeChat | None = None
        if chat_id is None and self.version == "current":
            return _Problem(
                "chat_id is required: create a chat with POST /v1/chats/create first",
                "CHAT_ID_REQUIRED",
            )
        if chat_id is not None:
            chat = self._owned_chat(str(chat_id), conn.sub)
            if chat is None:
                return _Problem(f"Chat not found: {chat_id}", "CHAT_NOT_FOUND")
            integration_id = integration_id or chat.integration_id
        problem = self._datasource_problem(integration_id)
        if problem is not None:
            return problem
        if chat is None:
            open_chats = self._open_chats(conn.sub)
            for old in open_chats[: max(0, len(open_chats) - self.max_open_chats + 1)]:
                del self.chats[old.id]
            title = _opt_str(frame.get("title")) or text.strip()[:60]
            chat = self._create_chat(conn.sub, title, integration_id)
        user_message = FakeMessage(_new_id("msg"), "user", text)
        chat.messages.append(user_message)
        self._start_turn(conn, chat, frame, user_message, integration_id, is_edit=False)
        return None

    def _edit_message(self, conn: _Conn, frame: Mapping[str, Any]) -> _Problem | None:
        assert conn.sub is not None
        message_id = frame.get("message_id")
        content = frame.get("content")
        if not isinstance(message_id, str) or not isinstance(content, str) or not content.strip():
            return _Problem("message_id and content are required", "INVALID_REQUEST")
        if conn.streaming:
            return _Problem("A response is already streaming on this connection", "BUSY", True)
        found = self._find_message(message_id, conn.sub)
        if found is None:
            return _Problem(f"Message not found: {message_id}", "MESSAGE_NOT_FOUND")
        chat, index = found
        if chat.messages[index].role != "user":
            return _Problem("Only user messages can be edited", "NOT_USER_MESSAGE")
        integration_id = _opt_str(frame.get("integration_id")) or chat.integration_id
        problem = self._datasource_problem(integration_id)
        if problem is not None:
            return problem
        user_message = FakeMessage(_new_id("msg"), "user", content)
        chat.messages[index:] = [user_message]
        self._start_turn(conn, chat, frame, user_message, integration_id, is_edit=True)
        return None

    async def _delete_message(self, conn: _Conn, frame: Mapping[str, Any]) -> _Problem | None:
        assert conn.sub is not None
        message_id = frame.get("message_id")
        found = self._find_message(message_id, conn.sub) if isinstance(message_id, str) else None
        if found is None:
            return _Problem(f"Message not found: {message_id}", "MESSAGE_NOT_FOUND")
        chat, index = found
        del chat.messages[index:]
        await conn.send_event("deleted", {"message_id": message_id})
        return None

    async def _interrupt(self, conn: _Conn) -> _Problem | None:
        turn = conn.turn
        if turn is None or not turn.streaming or turn.task is None:
            return _Problem("No response is streaming on this connection", "NOT_STREAMING")
        task = turn.task
        announced = asyncio.ensure_future(turn.announced.wait())
        await asyncio.wait([task, announced], return_when=asyncio.FIRST_COMPLETED)
        announced.cancel()
        turn.finish()
        task.cancel()
        await asyncio.wait([task])
        await conn.send_event("interrupted", {"status": "interrupted"})
        return None

    # ---------------------------------------------------------------- turns

    def _start_turn(
        self,
        conn: _Conn,
        chat: FakeChat,
        frame: Mapping[str, Any],
        user_message: FakeMessage,
        integration_id: str | None,
        *,
        is_edit: bool,
    ) -> None:
        assert conn.sub is not None
        question = Question(
            text=user_message.content,
            chat_id=chat.id,
            integration_id=integration_id,
            model=_opt_str(frame.get("model")),
            is_edit=is_edit,
            token_sub=conn.sub,
            user_message_id=user_message.id,
            include_tool_events=frame.get("include_tool_events") is True,
        )
        injected = self._injections.popleft() if self._injections else ()
        turn = _Turn()
        conn.turn = turn
        turn.task = conn.spawn(self._run_turn(conn, turn, chat, question, injected))

    async def _run_turn(
        self,
        conn: _Conn,
        turn: _Turn,
        chat: FakeChat,
        question: Question,
        injected: Sequence[str],
    ) -> None:
        try:
            for text in injected:
                await conn.ws.send(text)
            await conn.send_event(
                "chat_metadata", {"id": chat.id, "user_message_id": question.user_message_id}
            )
            turn.announced.set()
            if conn.heartbeat:
                turn.heartbeat = conn.spawn(self._heartbeat(conn))
            try:
                steps = list(self.responder(question))
            except Exception:
                logger.exception("the responder failed on a question in chat %s", chat.id)
                await conn.ws.close(1011, "Internal server error")
                return
            for step in steps:
                if not await self._play(conn, turn, chat, question, step):
                    return
        except ConnectionClosed:
            return
        finally:
            turn.finish()
            if conn.turn is turn:
                conn.turn = None
            self._changed()

    async def _heartbeat(self, conn: _Conn) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.heartbeat_interval)
                await conn.send_event("heartbeat", {})

    async def _play(
        self, conn: _Conn, turn: _Turn, chat: FakeChat, question: Question, step: Step
    ) -> bool:
        """Perform one step; False when it ended the connection."""
        if step.gate is not None:
            await step.gate.wait()
        if step.delay > 0:
            await asyncio.sleep(step.delay)
        event = step.event
        if event == PAUSE:
            return True
        if event == DROP:
            conn.ws.transport.abort()
            return False
        if event == CLOSE:
            await conn.ws.close(int(step.data.get("code", 1011)), str(step.data.get("reason", "")))
            return False
        if event == RAW:
            await conn.ws.send(str(step.data["text"]))
            return True
        if self.version == "seed" and event in _SEED_NEVER_SENDS:
            return True
        if event in _TOOL_EVENTS and not question.include_tool_events:
            return True
        data = dict(step.data)
        if event == "message":
            data.setdefault("id", _new_id("msg"))
            chat.messages.append(
                FakeMessage(str(data["id"]), "assistant", str(data.get("content", "")))
            )
            turn.finish()
        elif event == "error":
            data = self._scripted_error(data)
            turn.finish()
        elif event == "visualization":
            data.setdefault("id", new_visualization_id())
        if self.on_step is not None:
            self.on_step(event, data)
        await conn.send_event(event, data)
        self._changed()
        return True

    def _scripted_error(self, data: Mapping[str, Any]) -> dict[str, Any]:
        text = str(data.get("error", "Something went wrong"))
        if self.version == "seed":
            return {"error": text}
        return {
            "code": "AGENT_ERROR",
            "retryable": False,
            "debug_id": _new_id("dbg"),
            "error_type": "agent_error",
            **data,
        }

    # ---------------------------------------------------------------- REST

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._rest_middleware])
        if self.version == "current":
            app.router.add_post("/v1/authenticate", self._rest_authenticate)
            app.router.add_post("/v1/chats/create", self._rest_create_chat)
            app.router.add_get("/v1/models", self._rest_models)
            app.router.add_get("/v1/integrations", self._rest_integrations)
            app.router.add_get("/v1/chats/{chat_id}", self._rest_get_chat)
        return app

    @web.middleware
    async def _rest_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._rest_faults:
            status, detail, retry_after = self._rest_faults.popleft()
            headers = {}
            if status == 429 and retry_after is not None:
                headers["Retry-After"] = f"{retry_after:g}"
            return web.json_response({"detail": detail}, status=status, headers=headers)
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return web.json_response({"detail": exc.reason}, status=exc.status)

    def _bearer_sub(self, request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        claims = self._verify(token.strip()) if scheme.lower() == "bearer" else None
        if claims is None:
            self.auth_failures += 1
            return None
        return str(claims["sub"])

    @staticmethod
    def _unauthorized() -> web.Response:
        return web.json_response(
            {"detail": "Invalid or missing bearer token"},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any] | None:
        if not request.can_read_body:
            return {}
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _rest_authenticate(self, request: web.Request) -> web.Response:
        if request.headers.get("X-API-Key") not in self.api_keys:
            self.auth_failures += 1
            return web.json_response({"detail": "Invalid API key"}, status=401)
        body = await self._json_body(request)
        email = body.get("email") if body is not None else None
        if not isinstance(email, str) or "@" not in email:
            return web.json_response({"detail": "email is required"}, status=422)
        member_id = self.members.setdefault(email.lower(), _new_id("mem"))
        expires = time.time() + self.token_ttl
        return web.json_response(
            {
                "token": self.make_token(member_id, exp=expires),
                "member_id": member_id,
                "organization_id": self.organization_id,
                "expires_at": datetime.fromtimestamp(int(expires), UTC).isoformat(),
            }
        )

    async def _rest_create_chat(self, request: web.Request) -> web.Response:
        sub = self._bearer_sub(request)
        if sub is None:
            return self._unauthorized()
        body = await self._json_body(request)
        if body is None:
            return web.json_response({"detail": "body must be a JSON object"}, status=422)
        if len(self._open_chats(sub)) >= self.max_open_chats:
            return web.json_response(
                {"detail": "Too many open chats", "code": "OPEN_CHAT_CAP"}, status=409
            )
        chat = self._create_chat(
            sub, _opt_str(body.get("title")) or "New chat", _opt_str(body.get("integration_id"))
        )
        return web.json_response(
            {
                "id": chat.id,
                "title": chat.title,
                "integration_id": chat.integration_id,
                "created_at": datetime.now(UTC).isoformat(),
            }
        )

    async def _rest_models(self, request: web.Request) -> web.Response:
        if self._bearer_sub(request) is None:
            return self._unauthorized()
        first = self.models[0] if self.models else None
        default = first.get("model_id") if isinstance(first, Mapping) else first
        return web.json_response({"models": self.models, "default": default})

    async def _rest_integrations(self, request: web.Request) -> web.Response:
        if self._bearer_sub(request) is None:
            return self._unauthorized()
        return web.json_response({"integrations": self.integrations})

    async def _rest_get_chat(self, request: web.Request) -> web.Response:
        sub = self._bearer_sub(request)
        if sub is None:
            return self._unauthorized()
        chat = self._owned_chat(request.match_info["chat_id"], sub)
        if chat is None:
            return web.json_response({"detail": "Chat not found"}, status=404)
        return web.json_response(chat.as_json())
