"""Tests for trellis_slack.trellis.rest against a scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from trellis_slack.errors import (
    TrellisAPIError,
    TrellisAuthError,
    TrellisProtocolError,
    TrellisRateLimited,
    TrellisUnavailable,
)
from trellis_slack.fakes.trellis_server import FakeChat, FakeMessage, FakeTrellis, Version
from trellis_slack.trellis.rest import Integration, MintedToken, Model, ModelList, TrellisRest

TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-token-body.sig"
API_KEY = "test-api-key-very-secret"


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: dict[str, str]
    body: Any


@dataclass
class Script:
    """Canned answers by (method, path); every request is recorded."""

    answers: dict[tuple[str, str], tuple[int, str, dict[str, str]]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def answer(
        self, method: str, path: str, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        self.answers[method, path] = (status, text, headers or {})

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.text()
        self.seen.append(
            Seen(request.method, request.path_qs, dict(request.headers), json.loads(raw or "null"))
        )
        status, text, headers = self.answers.get(
            (request.method, request.path), (404, '{"detail": "Not Found"}', {})
        )
        return web.Response(status=status, text=text, headers=headers)


@dataclass
class Harness:
    script: Script
    rest: TrellisRest


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    script = Script()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", script.handle)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        rest = TrellisRest(str(server.make_url("/")))
        try:
            yield Harness(script, rest)
        finally:
            await rest.aclose()


async def test_authenticate_posts_key_and_email(harness: Harness) -> None:
    """Minting sends the API key as X-API-Key and the e-mail in the body, and reads the expiry."""
    harness.script.answer(
        "POST",
        "/v1/authenticate",
        200,
        {"token": TOKEN, "member_id": "m1", "expires_at": "2030-01-02T03:04:05Z"},
    )
    minted = await harness.rest.authenticate(API_KEY, "ada@example.com")
    assert minted == MintedToken(TOKEN, datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    seen = harness.script.seen[0]
    assert seen.headers["X-API-Key"] == API_KEY
    assert seen.body == {"email": "ada@example.com"}
    assert TOKEN not in repr(minted)


async def test_authenticate_reads_epoch_or_missing_expiry(harness: Harness) -> None:
    """An epoch-seconds expiry is understood and a missing one reads as unknown."""
    harness.script.answer("POST", "/v1/authenticate", 200, {"token": TOKEN, "expires_at": 0})
    assert (await harness.rest.authenticate(API_KEY, "a@b.c")).expires_at == datetime(
        1970, 1, 1, tzinfo=UTC
    )
    harness.script.answer("POST", "/v1/authenticate", 200, {"token": TOKEN})
    assert (await harness.rest.authenticate(API_KEY, "a@b.c")).expires_at is None


async def test_authenticate_without_token_is_a_protocol_error(harness: Harness) -> None:
    """An authenticate answer lacking a token is reported, not returned as an empty token."""
    harness.script.answer("POST", "/v1/authenticate", 200, {"member_id": "m"})
    with pytest.raises(TrellisProtocolError):
        await harness.rest.authenticate(API_KEY, "a@b.c")


async def test_create_chat_uses_bearer_header_and_returns_id(harness: Harness) -> None:
    """Creating a chat sends the token as a Bearer header (never in the URL) with title and db."""
    harness.script.answer("POST", "/v1/chats/create", 200, {"id": "chat_42", "title": "T"})
    chat_id = await harness.rest.create_chat(TOKEN, title="T", integration_id="db1")
    assert chat_id == "chat_42"
    seen = harness.script.seen[0]
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.body == {"title": "T", "integration_id": "db1"}
    assert TOKEN not in seen.path_qs


@pytest.mark.parametrize("status", [404, 405])
async def test_create_chat_missing_endpoint_returns_none(harness: Harness, status: int) -> None:
    """On a Trellis without the chat-create endpoint (v-seed), create_chat answers None."""
    harness.script.answer("POST", "/v1/chats/create", status, {"detail": "Not Found"})
    assert await harness.rest.create_chat(TOKEN) is None
    assert harness.script.seen[0].body == {}


async def test_list_models_accepts_strings(harness: Harness) -> None:
    """The older model list of plain ids is understood, with its default."""
    harness.script.answer("GET", "/v1/models", 200, {"models": ["m-a", "m-b"], "default": "m-b"})
    assert await harness.rest.list_models(TOKEN) == ModelList(
        (Model("m-a", "m-a"), Model("m-b", "m-b")), "m-b"
    )


async def test_list_models_accepts_objects(harness: Harness) -> None:
    """The newer model list of objects is understood; malformed entries are skipped."""
    harness.script.answer(
        "GET",
        "/v1/models",
        200,
        {
            "models": [
                {"model_id": "claude", "display_name": "Claude", "description": "Smart"},
                {"model_id": "bare"},
                {"display_name": "no id"},
                7,
            ],
            "default": "claude",
        },
    )
    assert await harness.rest.list_models(TOKEN) == ModelList(
        (Model("claude", "Claude", "Smart"), Model("bare", "bare")), "claude"
    )


async def test_list_integrations(harness: Harness) -> None:
    """Integrations come back as typed values."""
    harness.script.answer(
        "GET",
        "/v1/integrations",
        200,
        {"integrations": [{"id": "i1", "display_name": "Warehouse", "type": "postgres"}]},
    )
    assert await harness.rest.list_integrations(TOKEN) == (
        Integration("i1", "Warehouse", "postgres"),
    )


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_raise_auth_error(harness: Harness, status: int) -> None:
    """HTTP 401/403 become TrellisAuthError, whose message holds no token."""
    harness.script.answer("GET", "/v1/models", status, {"detail": "bad token"})
    with pytest.raises(TrellisAuthError) as info:
        await harness.rest.list_models(TOKEN)
    assert TOKEN not in str(info.value)


async def test_429_raises_rate_limited_with_retry_after(harness: Harness) -> None:
    """HTTP 429 becomes TrellisRateLimited carrying Retry-After in seconds."""
    harness.script.answer(
        "POST", "/v1/chats/create", 429, {"detail": "slow"}, headers={"Retry-After": "7"}
    )
    with pytest.raises(TrellisRateLimited) as info:
        await harness.rest.create_chat(TOKEN)
    assert info.value.retry_after == 7.0


async def test_other_errors_carry_detail_and_code(harness: Harness) -> None:
    """Other HTTP errors become TrellisAPIError with the detail text, status and code."""
    harness.script.answer(
        "POST",
        "/v1/chats/create",
        409,
        {"detail": "Too many open chats", "code": "OPEN_CHAT_CAP"},
    )
    with pytest.raises(TrellisAPIError) as info:
        await harness.rest.create_chat(TOKEN)
    assert "Too many open chats" in str(info.value)
    assert (info.value.status, info.value.code, info.value.retryable) == (
        409,
        "OPEN_CHAT_CAP",
        False,
    )
    harness.script.answer("GET", "/v1/models", 503, "upstream down")
    with pytest.raises(TrellisAPIError) as server_error:
        await harness.rest.list_models(TOKEN)
    assert server_error.value.retryable


async def test_non_json_success_is_a_protocol_error(harness: Harness) -> None:
    """A 200 answer that is not JSON is reported as a protocol error."""
    harness.script.answer("GET", "/v1/integrations", 200, "<html>")
    with pytest.raises(TrellisProtocolError):
        await harness.rest.list_integrations(TOKEN)


async def test_unreachable_server_raises_unavailable() -> None:
    """A refused connection becomes TrellisUnavailable."""
    async with TestServer(web.Application(), host="127.0.0.1", port=0) as server:
        url = str(server.make_url("/"))
    rest = TrellisRest(url)
    try:
        with pytest.raises(TrellisUnavailable):
            await rest.list_models(TOKEN)
    finally:
        await rest.aclose()


async def test_session_reopens_after_aclose(harness: Harness) -> None:
    """After aclose the client opens a fresh session on the next call."""
    harness.script.answer("GET", "/v1/integrations", 200, {"integrations": []})
    assert await harness.rest.list_integrations(TOKEN) == ()
    await harness.rest.aclose()
    assert await harness.rest.list_integrations(TOKEN) == ()


async def test_no_secret_in_logs(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """Neither the API key nor a token appears in any log line, errors included."""
    caplog.set_level(logging.DEBUG)
    harness.script.answer("POST", "/v1/authenticate", 401, {"detail": "bad key"})
    with pytest.raises(TrellisAuthError):
        await harness.rest.authenticate(API_KEY, "a@b.c")
    harness.script.answer("GET", "/v1/models", 500, {"detail": "boom"})
    with pytest.raises(TrellisAPIError):
        await harness.rest.list_models(TOKEN)
    assert caplog.records
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
        assert TOKEN not in record.getMessage()


# --- feedback on answers ------------------------------------------------------------------------


async def test_feedback_patches_the_rating(harness: Harness) -> None:
    """A rating is a PATCH of the message's feedback with a Bearer token; a note goes along."""
    path = "/v1/chats/messages/msg_7/feedback"
    harness.script.answer("PATCH", path, 200, {"id": "msg_7", "metadata": {"feedback": "x"}})
    await harness.rest.feedback(TOKEN, "msg_7", "positive")
    await harness.rest.feedback(TOKEN, "msg_7", "negative", note="wrong month")
    first, second = harness.script.seen
    assert (first.method, first.path_qs, first.body) == ("PATCH", path, {"feedback": "positive"})
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    assert second.body == {"feedback": "negative", "note": "wrong month"}


async def test_feedback_accepts_an_empty_success_and_quotes_the_id(harness: Harness) -> None:
    """A 204 without a body is a success, and an odd message id cannot change the path."""
    harness.script.answer("PATCH", "/v1/chats/messages/a/b/feedback", 204, "")  # decoded
    await harness.rest.feedback(TOKEN, "a/b", "positive")
    assert harness.script.seen[0].path_qs == "/v1/chats/messages/a%2Fb/feedback"


async def test_feedback_refusals_are_trellis_errors(harness: Harness) -> None:
    """404 and 400 become TrellisAPIError with the status; 429 TrellisRateLimited; 401 auth."""
    path = "/v1/chats/messages/m/feedback"
    harness.script.answer("PATCH", path, 404, {"detail": "Message not found"})
    with pytest.raises(TrellisAPIError) as info:
        await harness.rest.feedback(TOKEN, "m", "positive")
    assert info.value.status == 404
    harness.script.answer("PATCH", path, 400, {"detail": "bad", "code": "INVALID_FEEDBACK"})
    with pytest.raises(TrellisAPIError) as info:
        await harness.rest.feedback(TOKEN, "m", "positive")
    assert (info.value.status, info.value.code) == (400, "INVALID_FEEDBACK")
    harness.script.answer("PATCH", path, 429, {"detail": "slow"}, {"Retry-After": "2"})
    with pytest.raises(TrellisRateLimited):
        await harness.rest.feedback(TOKEN, "m", "positive")
    harness.script.answer("PATCH", path, 401, {"detail": "no"})
    with pytest.raises(TrellisAuthError):
        await harness.rest.feedback(TOKEN, "m", "positive")


async def test_feedback_rejects_an_unknown_rating_before_calling(harness: Harness) -> None:
    """Only positive or negative is sent; anything else fails here, with no request."""
    with pytest.raises(ValueError, match="positive or negative"):
        await harness.rest.feedback(TOKEN, "m", "meh")  # type: ignore[arg-type]
    assert harness.script.seen == []


@pytest.mark.parametrize("version", ["seed", "current"])
async def test_feedback_against_the_fake_trellis(version: Version) -> None:
    """The current fake keeps the rating of a real answer; the seed one has no endpoint (404)."""
    async with FakeTrellis(version=version) as trellis:
        trellis.chats["chat_1"] = chat = FakeChat("chat_1", "T", None, owner="member-1")
        chat.messages.extend(
            [FakeMessage("msg_q", "user", "hi"), FakeMessage("msg_a", "assistant", "hello")]
        )
        rest = TrellisRest(trellis.api_url)
        try:
            token = trellis.make_token("member-1")
            if version == "seed":
                with pytest.raises(TrellisAPIError) as info:
                    await rest.feedback(token, "msg_a", "positive")
                assert info.value.status == 404
            else:
                await rest.feedback(token, "msg_a", "negative", note="wrong")
                assert trellis.feedback_on("msg_a") == {"feedback": "negative", "note": "wrong"}
                with pytest.raises(TrellisAPIError) as info:
                    await rest.feedback(trellis.make_token("member-2"), "msg_a", "positive")
                assert info.value.status == 404
                assert trellis.feedback_on("msg_a") == {"feedback": "negative", "note": "wrong"}
        finally:
            await rest.aclose()
