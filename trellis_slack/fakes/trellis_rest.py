"""The fake Trellis's REST API (v-current): authenticate, chats (cap, limit), uploads, feedback."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.typedefs import Handler

from trellis_slack.fakes.trellis_state import (
    UPLOAD_TYPES,
    FakeUpload,
    TrellisState,
    new_id,
    opt_str,
    prune,
)

#: The ratings ``PATCH /v1/chats/messages/{id}/feedback`` takes.
RATINGS = frozenset({"positive", "negative"})

__all__ = ["build_rest_app"]


def build_rest_app(state: TrellisState) -> web.Application:
    """The aiohttp app serving ``state``; the seed version has no REST routes at all."""
    return _Routes(state).app()


class _Routes:
    """The REST handlers over one :class:`TrellisState`."""

    def __init__(self, state: TrellisState) -> None:
        self.state = state

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        if self.state.version == "current":
            app.router.add_post("/v1/authenticate", self._authenticate)
            app.router.add_post("/v1/chats/create", self._create_chat)
            app.router.add_get("/v1/models", self._models)
            app.router.add_get("/v1/integrations", self._integrations)
            app.router.add_post("/v1/chats/uploads", self._upload)
            app.router.add_get("/v1/chats/{chat_id}", self._get_chat)
            app.router.add_delete("/v1/chats/{chat_id}", self._delete_chat)
            app.router.add_patch("/v1/chats/messages/{message_id}/feedback", self._feedback)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.state.rest_faults:
            status, detail, retry_after = self.state.rest_faults.popleft()
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
        claims = self.state.verify(token.strip()) if scheme.lower() == "bearer" else None
        if claims is None:
            self.state.auth_failures += 1
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

    async def _authenticate(self, request: web.Request) -> web.Response:
        state = self.state
        if request.headers.get("X-API-Key") not in state.api_keys:
            state.auth_failures += 1
            return web.json_response({"detail": "Invalid API key"}, status=401)
        body = await self._json_body(request)
        email = body.get("email") if body is not None else None
        if not isinstance(email, str) or "@" not in email:
            return web.json_response({"detail": "email is required"}, status=422)
        member_id = state.members.setdefault(email.lower(), new_id("mem"))
        expires = time.time() + state.token_ttl
        return web.json_response(
            {
                "token": state.make_token(member_id, exp=expires),
                "member_id": member_id,
                "organization_id": state.organization_id,
                "expires_at": datetime.fromtimestamp(int(expires), UTC).isoformat(),
            }
        )

    async def _create_chat(self, request: web.Request) -> web.Response:
        sub = self._bearer_sub(request)
        if sub is None:
            return self._unauthorized()
        body = await self._json_body(request)
        if body is None:
            return web.json_response({"detail": "body must be a JSON object"}, status=422)
        limited = self._creation_limited(request)
        if limited is not None:
            return limited
        if len(self.state.open_chats(sub)) >= self.state.max_open_chats:
            self.state.cap_refusals[sub] = self.state.cap_refusals.get(sub, 0) + 1
            self.state.changed()
            return web.json_response(
                {"detail": "Too many open chats", "code": "OPEN_CHAT_CAP"}, status=409
            )
        chat = self.state.create_chat(
            sub, opt_str(body.get("title")) or "New chat", opt_str(body.get("integration_id"))
        )
        return web.json_response(
            {
                "id": chat.id,
                "title": chat.title,
                "integration_id": chat.integration_id,
                "created_at": datetime.now(UTC).isoformat(),
            }
        )

    def _creation_limited(self, request: web.Request) -> web.Response | None:
        """``429`` with ``Retry-After`` past the chat-creation limit per token (if enforced)."""
        state = self.state
        if not state.enforce_rate_limits:
            return None
        count, window = state.chat_create_limit
        token = request.headers.get("Authorization", "")
        times = state.token_creations.setdefault(token, deque())
        now = time.monotonic()
        prune(times, now, window)
        if len(times) >= count:
            wait = times[0] + window - now
            return web.json_response(
                {"detail": "Too many chats created; slow down", "code": "RATE_LIMIT"},
                status=429,
                headers={"Retry-After": f"{max(1, math.ceil(wait))}"},
            )
        times.append(now)
        return None

    async def _upload(self, request: web.Request) -> web.Response:
        """Files into one of the caller's chats: multipart ``files`` (repeated) and ``chat_id``.

        400 ``MISSING_CHAT_ID`` without a chat id, 404 ``CHAT_NOT_FOUND`` for a chat the caller
        does not have, 400 ``TOO_MANY_FILES`` past ``max_upload_files`` (or ``NO_FILES``), 413
        ``FILE_TOO_LARGE`` past ``max_upload_bytes``, 415 ``UNSUPPORTED_FILE_TYPE``; with
        ``enforce_rate_limits``, 429 with ``Retry-After`` past ``upload_limit`` per token.
        Nothing is stored unless every file is accepted.
        """
        state = self.state
        sub = self._bearer_sub(request)
        if sub is None:
            return self._unauthorized()
        limited = self._uploads_limited(request)
        if limited is not None:
            return self._refuse_upload(sub, limited, "RATE_LIMIT")
        chat_id: str | None = None
        files: list[tuple[str, str, bytes]] = []
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError):
            return self._upload_error(sub, 400, "INVALID_REQUEST", "multipart/form-data expected")
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "chat_id":
                chat_id = (await part.text()).strip() or None
                continue
            if part.name != "files":
                await part.release()
                continue
            if len(files) >= state.max_upload_files:
                return self._upload_error(
                    sub, 400, "TOO_MANY_FILES", f"At most {state.max_upload_files} files a request"
                )
            name = part.filename or "upload"
            mime = part.headers.get("Content-Type", "application/octet-stream").split(";")[0]
            content = bytearray()
            while chunk := await part.read_chunk():
                content += chunk
                if len(content) > state.max_upload_bytes:
                    return self._upload_error(
                        sub, 413, "FILE_TOO_LARGE", f"{name} is larger than the limit per file"
                    )
            if mime.strip().lower() not in UPLOAD_TYPES:
                return self._upload_error(
                    sub, 415, "UNSUPPORTED_FILE_TYPE", f"{name}: {mime} is not supported"
                )
            files.append((name, mime.strip().lower(), bytes(content)))
        if chat_id is None:
            return self._upload_error(sub, 400, "MISSING_CHAT_ID", "chat_id is required")
        if state.owned_chat(chat_id, sub) is None:
            return self._upload_error(sub, 404, "CHAT_NOT_FOUND", "Chat not found")
        if not files:
            return self._upload_error(sub, 400, "NO_FILES", "At least one file is required")
        uploads = [
            FakeUpload(new_id("upl"), chat_id, sub, name, mime, content)
            for name, mime, content in files
        ]
        for upload in uploads:
            state.uploads[upload.id] = upload
        state.changed()
        return web.json_response(
            {"chat_id": chat_id, "uploads": [upload.as_json() for upload in uploads]}
        )

    def _upload_error(self, sub: str, status: int, code: str, detail: str) -> web.Response:
        response = web.json_response({"detail": detail, "code": code}, status=status)
        return self._refuse_upload(sub, response, code)

    def _refuse_upload(self, sub: str, response: web.Response, code: str) -> web.Response:
        self.state.upload_refusals.append((sub, response.status, code))
        self.state.changed()
        return response

    def _uploads_limited(self, request: web.Request) -> web.Response | None:
        """``429`` with ``Retry-After`` past the uploads limit per token (if enforced)."""
        state = self.state
        if not state.enforce_rate_limits:
            return None
        count, window = state.upload_limit
        times = state.token_uploads.setdefault(request.headers.get("Authorization", ""), deque())
        now = time.monotonic()
        prune(times, now, window)
        if len(times) >= count:
            wait = (times[0] if times else now) + window - now
            return web.json_response(
                {"detail": "Too many uploads; slow down", "code": "RATE_LIMIT"},
                status=429,
                headers={"Retry-After": f"{max(1, math.ceil(wait))}"},
            )
        times.append(now)
        return None

    async def _delete_chat(self, request: web.Request) -> web.Response:
        """Delete one of the caller's chats (it stops counting toward the open-chat cap)."""
        sub = self._bearer_sub(request)
        if sub is None:
            return self._unauthorized()
        chat_id = request.match_info["chat_id"]
        if self.state.owned_chat(chat_id, sub) is None:
            return web.json_response(
                {"detail": "Chat not found", "code": "CHAT_NOT_FOUND"}, status=404
            )
        del self.state.chats[chat_id]
        self.state.deleted_chats.append((sub, chat_id))
        self.state.changed()
        return web.json_response({"id": chat_id, "deleted": True})

    async def _models(self, request: web.Request) -> web.Response:
        if self._bearer_sub(request) is None:
            return self._unauthorized()
        models = self.state.models
        first = models[0] if models else None
        default = first.get("model_id") if isinstance(first, Mapping) else first
        return web.json_response({"models": models, "default": default})

    async def _integrations(self, request: web.Request) -> web.Response:
        if self._bearer_sub(request) is None:
            return self._unauthorized()
        return web.json_response({"integrations": self.state.integrations})

    async def _get_chat(self, request: web.Request) -> web.Response:
        sub = self._bearer_sub(request)
        if sub is None:
            return self._unauthorized()
        chat = self.state.owned_chat(request.match_info["chat_id"], sub)
        if chat is None:
            return web.json_response({"detail": "Chat not found"}, status=404)
        return web.json_response(chat.as_json())

    async def _feedback(self, request: web.Request) -> web.Response:
        """Rate an assistant message of one of the caller's chats (``{"feedback", "note"?}``).

        404 ``MESSAGE_NOT_FOUND`` for a message the caller's member does not have, 400
        ``INVALID_FEEDBACK`` for a rating other than positive/negative or a note that is not a
        string, 400 ``NOT_ASSISTANT_MESSAGE`` for a user message. The docs set no limit on the
        note's length, so neither does the fake. Rating again replaces the rating (and the note).
        """
        state = self.state
        message_id = request.match_info["message_id"]
        sub = self._bearer_sub(request)
        body = await self._json_body(request)
        state.feedback_requests.append((sub, message_id, body))
        state.changed()
        if sub is None:
            return self._unauthorized()
        if body is None:
            return web.json_response({"detail": "body must be a JSON object"}, status=422)
        rating, note = body.get("feedback"), body.get("note")
        if rating not in RATINGS or (note is not None and not isinstance(note, str)):
            return web.json_response(
                {
                    "detail": 'feedback must be "positive" or "negative"; note, a string',
                    "code": "INVALID_FEEDBACK",
                },
                status=400,
            )
        found = state.find_message(message_id, sub)
        if found is None:
            return web.json_response(
                {"detail": "Message not found", "code": "MESSAGE_NOT_FOUND"}, status=404
            )
        chat, index = found
        if chat.messages[index].role != "assistant":
            return web.json_response(
                {
                    "detail": "Feedback is only for assistant messages",
                    "code": "NOT_ASSISTANT_MESSAGE",
                },
                status=400,
            )
        metadata = {"feedback": str(rating)} | ({"note": note} if note else {})
        chat.feedback[message_id] = metadata
        state.changed()
        return web.json_response({"id": message_id, "metadata": metadata})
