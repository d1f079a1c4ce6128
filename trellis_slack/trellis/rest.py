"""Trellis REST calls the bridge needs: tokens, chats, uploads, ratings, models, integrations."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal
from urllib.parse import quote

import aiohttp

from trellis_slack.errors import (
    TrellisAPIError,
    TrellisAuthError,
    TrellisProtocolError,
    TrellisRateLimited,
    TrellisUnavailable,
)
from trellis_slack.trellis.uploads import FileToUpload, Uploaded, parse_upload

__all__ = [
    "OPEN_CHAT_CAP",
    "RATINGS",
    "Integration",
    "MintedToken",
    "Model",
    "ModelList",
    "Rating",
    "TrellisRest",
]

logger = logging.getLogger(__name__)

#: A rating of an answer, as Trellis's feedback endpoint takes it.
Rating = Literal["positive", "negative"]
RATINGS: Final[frozenset[str]] = frozenset({"positive", "negative"})

#: The code of Trellis's refusal to open another chat for a member (``409`` on chat creation).
OPEN_CHAT_CAP: Final = "OPEN_CHAT_CAP"

#: Longest ``detail`` text copied from an error answer into an exception message.
_MAX_DETAIL = 300


@dataclass(frozen=True, slots=True)
class MintedToken:
    """A JWT minted for one member; ``repr`` never shows the token."""

    token: str = field(repr=False)
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Model:
    """An AI model Trellis can answer with."""

    model_id: str
    display_name: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ModelList:
    """The models on offer and the one used when none is named."""

    models: tuple[Model, ...]
    default: str | None


@dataclass(frozen=True, slots=True)
class Integration:
    """A database integration questions can be asked against."""

    id: str
    display_name: str
    type: str | None


class TrellisRest:
    """Trellis's REST API over one lazily created aiohttp session; call :meth:`aclose` when done."""

    def __init__(self, api_url: str, *, timeout: float = 30.0) -> None:
        self._api_url = api_url.rstrip("/")
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"TrellisRest({self._api_url!r})"

    async def aclose(self) -> None:
        """Close the HTTP session (a later call opens a new one)."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def authenticate(self, api_key: str, email: str) -> MintedToken:
        """Mint a JWT for the member with this e-mail (created by Trellis when unknown)."""
        body = await self._call(
            "POST", "/v1/authenticate", headers={"X-API-Key": api_key}, payload={"email": email}
        )
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TrellisProtocolError("Trellis's authenticate answer has no token")
        return MintedToken(token, _parse_datetime(body.get("expires_at")))

    async def create_chat(
        self, token: str, *, title: str | None = None, integration_id: str | None = None
    ) -> str | None:
        """Create a chat and return its id; None when this Trellis has no such endpoint (v-seed)."""
        payload = {
            key: value
            for key, value in (("title", title), ("integration_id", integration_id))
            if value is not None
        }
        body = await self._call(
            "POST", "/v1/chats/create", token=token, payload=payload, missing_ok=True
        )
        if body is _MISSING:
            logger.info("Trellis has no chat-create endpoint; chats start with the first message")
            return None
        chat_id = body.get("id") if isinstance(body, dict) else None
        if isinstance(chat_id, int) and not isinstance(chat_id, bool):
            chat_id = str(chat_id)
        if not isinstance(chat_id, str) or not chat_id:
            raise TrellisProtocolError("Trellis's chat-create answer has no id")
        return chat_id

    async def delete_chat(self, token: str, chat_id: str) -> bool:
        """Delete a chat (``DELETE /v1/chats/{id}``) so it no longer counts toward the open-chat cap.

        False when Trellis does not have it (already deleted, or a Trellis without the endpoint);
        other refusals raise as every call here does.
        """
        path = f"/v1/chats/{quote(chat_id, safe='')}"
        body = await self._call("DELETE", path, token=token, missing_ok=True, body_optional=True)
        return body is not _MISSING

    async def upload(
        self, token: str, chat_id: str, files: Sequence[FileToUpload]
    ) -> tuple[Uploaded, ...]:
        """Upload files into a chat (``POST /v1/chats/uploads``, multipart) as its member.

        The caller keeps within Trellis's limits (`trellis.uploads`); a refusal raises as every call here does (`TrellisAPIError` with
        Trellis's ``code``, `TrellisRateLimited` with ``retry_after`` for a ``429``). A Trellis
        without the endpoint (v-seed) raises `TrellisAPIError` with ``status`` 404.
        """
        if not files:
            return ()
        form = aiohttp.FormData()
        form.add_field("chat_id", chat_id)
        for file in files:
            form.add_field(
                "files", file.content, filename=file.filename, content_type=file.mime_type
            )
        body = await self._call("POST", "/v1/chats/uploads", token=token, data=form)
        items = body.get("uploads") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise TrellisProtocolError("Trellis's uploads answer has no uploads")
        uploaded = tuple(found for item in items if (found := parse_upload(item)) is not None)
        if len(uploaded) != len(files):
            raise TrellisProtocolError("Trellis's uploads answer does not name every file")
        return uploaded

    async def feedback(
        self, token: str, message_id: str, rating: Rating, *, note: str | None = None
    ) -> None:
        """Rate an assistant message (``PATCH /v1/chats/messages/{id}/feedback``) as its member.

        ``token`` must be the identity that owns the chat: another member's message is unknown to
        it. A refusal raises as every call here does: `TrellisAPIError` with ``status`` 404 for a
        message Trellis does not have (or a Trellis without the endpoint, such as v-seed), 400
        for a rating it refused; `TrellisAuthError`, `TrellisRateLimited`, `TrellisUnavailable`.
        """
        if rating not in RATINGS:
            raise ValueError(f"a rating is positive or negative, not {rating!r}")
        payload: dict[str, Any] = {"feedback": rating}
        if note:
            payload["note"] = note
        path = f"/v1/chats/messages/{quote(message_id, safe='')}/feedback"
        await self._call("PATCH", path, token=token, payload=payload, body_optional=True)

    async def list_models(self, token: str) -> ModelList:
        """The models on offer; each may be a bare id (older Trellis) or an object (newer)."""
        body = await self._call("GET", "/v1/models", token=token)
        items = body.get("models") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise TrellisProtocolError("Trellis's model list has no models")
        models = tuple(model for item in items if (model := _parse_model(item)) is not None)
        default = body.get("default") if isinstance(body, dict) else None
        return ModelList(models, default if isinstance(default, str) and default else None)

    async def list_integrations(self, token: str) -> tuple[Integration, ...]:
        """The database integrations this member can query."""
        body = await self._call("GET", "/v1/integrations", token=token)
        items = body.get("integrations") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise TrellisProtocolError("Trellis's integration list has no integrations")
        return tuple(found for item in items if (found := _parse_integration(item)) is not None)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        payload: dict[str, Any] | None = None,
        data: aiohttp.FormData | None = None,
        missing_ok: bool = False,
        body_optional: bool = False,
    ) -> Any:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        session = self._session_for_call()
        try:
            async with session.request(
                method, self._api_url + path, headers=all_headers, json=payload, data=data
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("Trellis REST %s %s failed: %s", method, path, type(exc).__name__)
            raise TrellisUnavailable(f"could not reach Trellis ({method} {path})") from exc
        if missing_ok and status in (404, 405):
            return _MISSING
        body = _parse_json(text)
        if status >= 400:
            raise _error_for(method, path, status, body, retry_after)
        if body is _NOT_JSON and not body_optional:
            raise TrellisProtocolError(f"Trellis answered {method} {path} with something not JSON")
        return body

    def _session_for_call(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        return self._session


_MISSING = object()
_NOT_JSON = object()


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_JSON


def _error_for(
    method: str, path: str, status: int, body: Any, retry_after: str | None
) -> Exception:
    detail, code = _detail(body)
    where = f"{method} {path}"
    logger.warning("Trellis REST %s answered HTTP %d (code %s)", where, status, code)
    if status in (401, 403):
        return TrellisAuthError(f"Trellis refused the credentials ({where}, HTTP {status})")
    if status == 429:
        seconds = _parse_retry_after(retry_after)
        return TrellisRateLimited(f"Trellis asked us to slow down ({where})", retry_after=seconds)
    message = f"Trellis answered HTTP {status} to {where}" + (f": {detail}" if detail else "")
    return TrellisAPIError(message, code=code, status=status, retryable=status >= 500)


def _detail(body: Any) -> tuple[str | None, str | None]:
    if not isinstance(body, dict):
        return None, None
    code = body.get("code") if isinstance(body.get("code"), str) else None
    detail = body.get("detail")
    if isinstance(detail, dict):
        code = code or (detail.get("code") if isinstance(detail.get("code"), str) else None)
        detail = detail.get("message") or detail.get("detail")
    if isinstance(detail, list):  # validation errors: [{"msg": ...}, ...]
        detail = "; ".join(
            str(item.get("msg")) for item in detail if isinstance(item, dict) and "msg" in item
        )
    if not isinstance(detail, str) or not detail:
        return None, code
    return detail[:_MAX_DETAIL], code


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _parse_datetime(value: object) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return None


def _parse_model(item: object) -> Model | None:
    if isinstance(item, str) and item:
        return Model(item, item)
    if not isinstance(item, dict):
        return None
    model_id = item.get("model_id", item.get("id"))
    if not isinstance(model_id, str) or not model_id:
        return None
    name = item.get("display_name", item.get("name"))
    description = item.get("description")
    return Model(
        model_id,
        name if isinstance(name, str) and name else model_id,
        description if isinstance(description, str) and description else None,
    )


def _parse_integration(item: object) -> Integration | None:
    if not isinstance(item, dict):
        return None
    integration_id = item.get("id")
    if not isinstance(integration_id, str) or not integration_id:
        return None
    name = item.get("display_name", item.get("name"))
    kind = item.get("type")
    return Integration(
        integration_id,
        name if isinstance(name, str) and name else integration_id,
        kind if isinstance(kind, str) and kind else None,
    )
