"""The fake Trellis's WebSocket side: the handshake, authentication, and each action a client sends."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from trellis_slack.fakes.trellis_state import (
    SOCKET_LIMITS,
    TOKEN_LIMITS,
    FakeChat,
    FakeMessage,
    Problem,
    Received,
    TrellisState,
    new_id,
    opt_str,
    prune,
    retry_after,
)
from trellis_slack.fakes.trellis_turns import Conn, TurnPlayer

__all__ = ["WS_PATH", "SocketServer"]

WS_PATH: Final = "/v1/chats/ws"

_RATE_LIMIT_CODES: Final = frozenset({"RATE_LIMIT", "WS_CONNECTION_CAP"})


class SocketServer:
    """Serves ``/v1/chats/ws`` over one :class:`TrellisState`: one :class:`Conn` per socket."""

    def __init__(self, state: TrellisState) -> None:
        self.state = state
        self.conns: dict[int, Conn] = {}
        self._next_conn_id = 0
        self._token_conns: dict[str, set[int]] = {}
        self._turns = TurnPlayer(state)

    async def close_all(self, code: int, reason: str = "") -> None:
        """Close every open socket with ``code``."""
        conns = list(self.conns.values())
        if conns:
            await asyncio.gather(*(c.ws.close(code, reason) for c in conns))

    async def cancel_all(self) -> None:
        """Cancel every running script (before the server stops)."""
        for conn in list(self.conns.values()):
            await conn.cancel_tasks()

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse other paths, and (v-current) a token in the query string."""
        url = urlsplit(request.path)
        if url.path != WS_PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        if self.state.version == "current" and "token" in parse_qs(url.query):
            self.state.auth_failures += 1
            return connection.respond(
                HTTPStatus.FORBIDDEN,
                "A token in the query string is not accepted; use the Authorization header "
                "or an authenticate frame.\n",
            )
        return None

    async def handle(self, ws: ServerConnection) -> None:
        """Serve one socket until it closes."""
        state = self.state
        self._next_conn_id += 1
        request = ws.request
        assert request is not None  # the handler only runs after the opening handshake
        query = parse_qs(urlsplit(request.path).query)
        conn = Conn(
            self._next_conn_id,
            ws,
            heartbeat=state.version == "current"
            and query.get("heartbeat", [""])[0] in {"1", "true"},
        )
        self.conns[conn.id] = conn
        state.accepted_connections += 1
        state.peak_connections = max(state.peak_connections, len(self.conns))
        state.changed()
        try:
            await self._serve(conn, query, request.headers.get("Authorization", ""))
        except ConnectionClosed:
            pass
        finally:
            await conn.cancel_tasks()
            del self.conns[conn.id]
            self._release_token(conn)
            state.changed()

    async def _serve(self, conn: Conn, query: Mapping[str, list[str]], authorization: str) -> None:
        if self.state.rejections:
            code, reason = self.state.rejections.popleft()
            if code == 4429 and self.state.version == "current":
                await self._send_error(conn, self._cap_problem())
            await conn.ws.close(code, reason)
            return
        token: str | None = None
        if self.state.version == "seed":
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

    def _cap_problem(self) -> Problem:
        return Problem(
            f"Too many connections for this token (at most {self.state.max_sockets_per_token})",
            "WS_CONNECTION_CAP",
            retryable=True,
        )

    async def _authenticate(self, conn: Conn, token: str) -> bool:
        state = self.state
        claims = state.verify(token)
        if claims is None:
            state.auth_failures += 1
            await conn.ws.close(4001, "Invalid or expired token")
            return False
        if conn.sub is None:
            open_for_token = self._token_conns.get(token, set())
            if state.version == "current" and len(open_for_token) >= state.max_sockets_per_token:
                await self._send_error(conn, self._cap_problem())
                await conn.ws.close(4429, "Too many connections")
                return False
            conn.token = token
            conn.sub = str(claims["sub"])
            self._token_conns.setdefault(token, set()).add(conn.id)
            state.authenticated_connections += 1
        await conn.send_event("authenticated", {"status": "ok"})
        return True

    def _release_token(self, conn: Conn) -> None:
        if conn.token is None:
            return
        ids = self._token_conns.get(conn.token)
        if ids is not None:
            ids.discard(conn.id)
            if not ids:
                del self._token_conns[conn.token]
        token_sends = self.state.token_sends
        sends = token_sends.get(conn.token)
        if sends is not None:
            prune(sends, time.monotonic(), TOKEN_LIMITS[-1][0])
            if not sends:
                del token_sends[conn.token]

    async def _on_frame(self, conn: Conn, raw: str | bytes) -> bool:
        """Handle one frame; False when the connection is being closed."""
        text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
        try:
            frame: Any = json.loads(text)
        except ValueError:
            frame = None
        self.state.received.append(
            Received(conn.id, conn.sub, frame if isinstance(frame, dict) else text)
        )
        self.state.changed()
        if not isinstance(frame, dict):
            await conn.cancel_tasks()
            await conn.ws.close(4002, "Invalid JSON message")
            return False
        action = frame.get("action")
        if action == "authenticate":
            token = frame.get("token")
            return await self._authenticate(conn, token if isinstance(token, str) else "")
        if conn.sub is None:
            self.state.auth_failures += 1
            await conn.ws.close(4001, "Authentication required")
            return False
        if action == "send_message":
            problem = self._send_message(conn, frame)
        elif action == "edit_message":
            problem = self._edit_message(conn, frame)
        elif action == "delete_message":
            problem = await self._delete_message(conn, frame)
        elif action == "interrupt":
            problem = await self._turns.interrupt(conn)
        elif action == "ping":
            await conn.send_event("pong", {})
            problem = None
        else:
            problem = Problem(f"Unknown action: {action!r}", "UNKNOWN_ACTION")
        if problem is not None:
            await self._send_error(conn, problem)
        return True

    def _error_data(self, problem: Problem) -> dict[str, Any]:
        if self.state.version == "seed":
            # The seed's errors are bare text; a cap refusal (when made to refuse) names its code.
            if problem.code == "OPEN_CHAT_CAP":
                return {"error": problem.text, "code": problem.code}
            return {"error": problem.text}
        return {
            "error": problem.text,
            "code": problem.code,
            "retryable": problem.retryable,
            "debug_id": new_id("dbg"),
            "error_type": "rate_limit" if problem.code in _RATE_LIMIT_CODES else "invalid_request",
            **problem.extra,
        }

    async def _send_error(self, conn: Conn, problem: Problem) -> None:
        await conn.send_event("error", self._error_data(problem))

    # ---------------------------------------------------------------- actions

    def _rate_limit(self, conn: Conn) -> Problem | None:
        state = self.state
        wait_for: float | None = None
        if state.forced_rate_limits:
            wait_for = state.forced_rate_limits.popleft()
        elif state.enforce_rate_limits and state.version == "current" and conn.token is not None:
            now = time.monotonic()
            token_sends = state.token_sends.setdefault(conn.token, deque())
            prune(conn.sends, now, SOCKET_LIMITS[-1][0])
            prune(token_sends, now, TOKEN_LIMITS[-1][0])
            wait = max(
                retry_after(conn.sends, now, SOCKET_LIMITS),
                retry_after(token_sends, now, TOKEN_LIMITS),
            )
            if wait > 0:
                wait_for = round(wait, 3)
            else:
                conn.sends.append(now)
                token_sends.append(now)
        if wait_for is None:
            return None
        return Problem(
            f"Rate limit exceeded; retry in {wait_for:g} s",
            "RATE_LIMIT",
            retryable=True,
            extra={"retry_after_seconds": wait_for},
        )

    def _send_message(self, conn: Conn, frame: Mapping[str, Any]) -> Problem | None:
        state = self.state
        assert conn.sub is not None
        text = frame.get("message")
        if not isinstance(text, str) or not text.strip():
            return Problem("message is required", "INVALID_REQUEST")
        if conn.streaming:
            return Problem("A response is already streaming on this connection", "BUSY", True)
        problem = self._rate_limit(conn)
        if problem is not None:
            return problem
        integration_id = opt_str(frame.get("integration_id"))
        chat_id = frame.get("chat_id")
        chat: FakeChat | None = None
        if chat_id is None and state.version == "current":
            return Problem(
                "chat_id is required: create a chat with POST /v1/chats/create first",
                "CHAT_ID_REQUIRED",
            )
        if chat_id is not None:
            chat = state.owned_chat(str(chat_id), conn.sub)
            if chat is None:
                return Problem(f"Chat not found: {chat_id}", "CHAT_NOT_FOUND")
            integration_id = integration_id or chat.integration_id
            problem = state.upload_problem(chat, frame.get("upload_ids"))
            if problem is not None:
                return problem
        elif frame.get("upload_ids") is not None:
            return Problem("upload_ids requires chat_id", "INVALID_REQUEST")
        problem = state.datasource_problem(integration_id)
        if problem is not None:
            return problem
        if chat is None:
            open_chats = state.open_chats(conn.sub)
            if state.refuse_past_cap and len(open_chats) >= state.max_open_chats:
                state.cap_refusals[conn.sub] = state.cap_refusals.get(conn.sub, 0) + 1
                return Problem("Too many open chats", "OPEN_CHAT_CAP")
            for old in open_chats[: max(0, len(open_chats) - state.max_open_chats + 1)]:
                del state.chats[old.id]
            title = opt_str(frame.get("title")) or text.strip()[:60]
            chat = state.create_chat(conn.sub, title, integration_id)
        user_message = FakeMessage(new_id("msg"), "user", text)
        chat.messages.append(user_message)
        self._turns.start(conn, chat, frame, user_message, integration_id, is_edit=False)
        return None

    def _edit_message(self, conn: Conn, frame: Mapping[str, Any]) -> Problem | None:
        assert conn.sub is not None
        message_id = frame.get("message_id")
        content = frame.get("content")
        if not isinstance(message_id, str) or not isinstance(content, str) or not content.strip():
            return Problem("message_id and content are required", "INVALID_REQUEST")
        if conn.streaming:
            return Problem("A response is already streaming on this connection", "BUSY", True)
        found = self.state.find_message(message_id, conn.sub)
        if found is None:
            return Problem(f"Message not found: {message_id}", "MESSAGE_NOT_FOUND")
        chat, index = found
        if chat.messages[index].role != "user":
            return Problem("Only user messages can be edited", "NOT_USER_MESSAGE")
        integration_id = opt_str(frame.get("integration_id")) or chat.integration_id
        problem = self.state.datasource_problem(integration_id)
        if problem is not None:
            return problem
        user_message = FakeMessage(new_id("msg"), "user", content)
        chat.messages[index:] = [user_message]
        self._turns.start(conn, chat, frame, user_message, integration_id, is_edit=True)
        return None

    async def _delete_message(self, conn: Conn, frame: Mapping[str, Any]) -> Problem | None:
        assert conn.sub is not None
        message_id = frame.get("message_id")
        found = (
            self.state.find_message(message_id, conn.sub) if isinstance(message_id, str) else None
        )
        if found is None:
            return Problem(f"Message not found: {message_id}", "MESSAGE_NOT_FOUND")
        chat, index = found
        del chat.messages[index:]
        await conn.send_event("deleted", {"message_id": message_id})
        return None
