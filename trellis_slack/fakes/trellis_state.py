"""What the fake Trellis holds: its settings, chats, members, tokens, counters and queued faults."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import jwt

from trellis_slack.fakes.trellis_script import Responder, echo

__all__ = [
    "DEFAULT_INTEGRATIONS",
    "DEFAULT_MODELS",
    "UPLOAD_TYPES",
    "FakeChat",
    "FakeMessage",
    "FakeUpload",
    "Problem",
    "Received",
    "TrellisState",
    "Version",
    "new_id",
    "opt_str",
]

Version = Literal["seed", "current"]

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

#: The MIME types ``POST /v1/chats/uploads`` takes: PDF, CSV, XLSX, PNG, JPEG.
UPLOAD_TYPES: Final = frozenset(
    {
        "application/pdf",
        "text/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "image/png",
        "image/jpeg",
    }
)

# (window in seconds, most send_message allowed in it) per socket, and per token.
SOCKET_LIMITS: Final = ((10.0, 3), (60.0, 10))
TOKEN_LIMITS: Final = ((60.0, 30),)


def new_id(prefix: str) -> str:
    """A fresh id such as ``chat_1a2b3c4d5e6f``."""
    return f"{prefix}_{secrets.token_hex(6)}"


def opt_str(value: object) -> str | None:
    """``value`` when it is a non-empty string, else None."""
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
    #: Feedback given on its assistant messages: message id -> ``{"feedback", "note"?}``.
    feedback: dict[str, dict[str, str]] = field(default_factory=dict)

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
            "messages": [self._message_json(m) for m in self.messages],
        }

    def _message_json(self, message: FakeMessage) -> dict[str, Any]:
        found: dict[str, Any] = {"id": message.id, "role": message.role, "content": message.content}
        rated = self.feedback.get(message.id)
        if rated is not None:
            found["metadata"] = {"feedback": rated["feedback"]}
        return found


@dataclass(frozen=True, slots=True)
class FakeUpload:
    """A file uploaded into a chat (``POST /v1/chats/uploads``), kept in memory."""

    id: str
    chat_id: str
    owner: str
    filename: str
    mime_type: str
    content: bytes

    def as_json(self) -> dict[str, Any]:
        """The upload as the uploads answer lists it."""
        kind = "image" if self.mime_type.startswith("image/") else "document"
        return {
            "id": self.id,
            "filename": self.filename,
            "mime_type": self.mime_type,
            "file_size": len(self.content),
            "upload_type": kind,
        }


@dataclass(frozen=True, slots=True)
class Received:
    """One frame a client sent: the parsed JSON object, or the raw text when it was not one."""

    conn_id: int
    token_sub: str | None
    frame: dict[str, Any] | str


@dataclass(frozen=True, slots=True)
class Problem:
    """An error the server answers with an ``error`` event."""

    text: str
    code: str
    retryable: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


def prune(sends: deque[float], now: float, longest: float) -> None:
    """Forget sends older than the longest window."""
    while sends and sends[0] <= now - longest:
        sends.popleft()


def retry_after(sends: deque[float], now: float, limits: Sequence[tuple[float, int]]) -> float:
    """Seconds until ``sends`` is back under every limit (0 when it already is)."""
    wait = 0.0
    for window, limit in limits:
        recent = [t for t in sends if t > now - window]
        if len(recent) >= limit:
            wait = max(wait, recent[len(recent) - limit] + window - now)
    return wait


class TrellisState:
    """The fake's state, shared by its WebSocket side and its REST side (see ``FakeTrellis``)."""

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
        max_upload_files: int = 5,
        max_upload_bytes: int = 30 * 1024 * 1024,
        upload_limit: tuple[int, float] = (30, 60.0),
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
        #: With ``enforce_rate_limits``: at most this many chats created per token per window (s).
        self.chat_create_limit = chat_create_limit
        #: A chat started by ``send_message`` past the cap: refused (``OPEN_CHAT_CAP``) when
        #: True, else the member's oldest chats are dropped silently (the seed's documented way).
        self.refuse_past_cap = refuse_past_cap
        #: Uploads: most files a request, largest file, and (with ``enforce_rate_limits``) most
        #: requests per token per window (s).
        self.max_upload_files = max_upload_files
        self.max_upload_bytes = max_upload_bytes
        self.upload_limit = upload_limit
        self.organization_id = new_id("org")
        self._secret = secrets.token_hex(32)

        self.received: list[Received] = []
        self.chats: dict[str, FakeChat] = {}
        self.members: dict[str, str] = {}  # e-mail -> member id
        #: Every feedback PATCH (accepted or refused): (token sub, message id, JSON body).
        self.feedback_requests: list[tuple[str | None, str, Any]] = []
        self.peak_connections = 0
        self.accepted_connections = 0
        self.authenticated_connections = 0
        self.auth_failures = 0

        #: Faults queued by the tests, taken one at a time by the server.
        self.rejections: deque[tuple[int, str]] = deque()
        self.forced_rate_limits: deque[float] = deque()
        self.rest_faults: deque[tuple[int, str, float | None]] = deque()
        self.injections: deque[tuple[str, ...]] = deque()
        #: send_message times per token, for the rate limits.
        self.token_sends: dict[str, deque[float]] = {}
        #: Chat creations (REST) per token, for the creation limit.
        self.token_creations: dict[str, deque[float]] = {}
        #: Every chat deleted with ``DELETE /v1/chats/{id}``: (token sub, chat id).
        self.deleted_chats: list[tuple[str, str]] = []
        #: Every file uploaded, by upload id.
        self.uploads: dict[str, FakeUpload] = {}
        #: Upload requests per token, for the uploads limit.
        self.token_uploads: dict[str, deque[float]] = {}
        #: Upload requests refused (any reason): (token sub, HTTP status, code).
        self.upload_refusals: list[tuple[str | None, int, str]] = []
        #: Chat creations refused with ``409 OPEN_CHAT_CAP``, per token sub.
        self.cap_refusals: dict[str, int] = {}
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

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

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this server issued and that has not expired, else None."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=["HS256"], options={"require": ["exp", "sub"]}
            )
        except jwt.InvalidTokenError:
            return None
        return claims

    # ---------------------------------------------------------------- waiting

    def changed(self) -> None:
        """Something happened: wake the waiters whose predicate now holds."""
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

    def cancel_waiters(self) -> None:
        for _, future in self._waiters:
            future.cancel()
        self._waiters.clear()

    def actions(self, action: str) -> list[Received]:
        """Every received frame whose ``action`` is ``action``, oldest first."""
        return [
            r
            for r in self.received
            if isinstance(r.frame, dict) and r.frame.get("action") == action
        ]

    # ---------------------------------------------------------------- chats

    def owned_chat(self, chat_id: str, sub: str) -> FakeChat | None:
        chat = self.chats.get(chat_id)
        return chat if chat is not None and chat.owner == sub else None

    def find_message(self, message_id: str, sub: str) -> tuple[FakeChat, int] | None:
        for chat in self.chats.values():
            if chat.owner == sub:
                index = chat.find(message_id)
                if index is not None:
                    return chat, index
        return None

    def feedback_on(self, message_id: str) -> dict[str, str] | None:
        """The feedback an assistant message holds (``{"feedback", "note"?}``), if any."""
        for chat in self.chats.values():
            if message_id in chat.feedback:
                return chat.feedback[message_id]
        return None

    def assistant_messages(self) -> list[FakeMessage]:
        """Every assistant message of every chat, in the order the chats were created."""
        return [m for chat in self.chats.values() for m in chat.messages if m.role == "assistant"]

    def open_chats(self, sub: str) -> list[FakeChat]:
        return [chat for chat in self.chats.values() if chat.owner == sub]

    def create_chat(self, owner: str, title: str, integration_id: str | None) -> FakeChat:
        chat = FakeChat(new_id("chat"), title, integration_id, owner=owner)
        self.chats[chat.id] = chat
        return chat

    def datasource_problem(self, integration_id: str | None) -> Problem | None:
        if self.require_integration and integration_id is None:
            return Problem("No datasource connected", "NO_DATASOURCE")
        return None

    def upload_problem(self, chat: FakeChat, upload_ids: object) -> Problem | None:
        """Why ``send_message``'s ``upload_ids`` cannot be attached in ``chat`` (None: they can).

        Each id must name an upload made into that very chat.
        """
        if upload_ids is None:
            return None
        if not isinstance(upload_ids, list) or not all(isinstance(i, str) for i in upload_ids):
            return Problem("upload_ids must be a list of upload ids", "INVALID_REQUEST")
        for upload_id in upload_ids:
            upload = self.uploads.get(upload_id)
            if upload is None or upload.chat_id != chat.id:
                return Problem(f"Upload not found in this chat: {upload_id}", "UPLOAD_NOT_FOUND")
        return None
