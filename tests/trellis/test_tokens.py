"""Tests for trellis_slack.trellis.tokens: static tokens, JWT inspection and per-user minting over HTTP."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from trellis_slack.errors import TrellisAuthError
from trellis_slack.trellis.rest import TrellisRest
from trellis_slack.trellis.tokens import (
    ApiKeyTokens,
    JwtInfo,
    RefreshableTokenProvider,
    StaticToken,
    TokenProvider,
    inspect_jwt,
)

SIGNING_KEY = "a-test-signing-key-that-is-long-enough-for-hs256"
API_KEY = "api-key-that-must-stay-hidden"
NOW = 1_900_000_000.0


def make_jwt(sub: str, exp: float | None = None, jti: str = "") -> str:
    claims: dict[str, Any] = {"sub": sub, "jti": jti}
    if exp is not None:
        claims["exp"] = int(exp)
    return jwt.encode(claims, SIGNING_KEY, algorithm="HS256")


@dataclass
class Minter:
    """A /v1/authenticate endpoint that counts calls and can hold them at a gate."""

    lifetime: float | None = 6 * 3600.0
    send_expires_at: bool = True
    fail: bool = False
    gate: asyncio.Event | None = None
    calls: list[str] = field(default_factory=list)
    arrived: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    async def handle(self, request: web.Request) -> web.Response:
        email = (await request.json())["email"]
        assert request.headers["X-API-Key"] == API_KEY
        self.calls.append(email)
        self.arrived.put_nowait(email)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            return web.json_response({"detail": "invalid key"}, status=401)
        exp = NOW + self.lifetime if self.lifetime is not None else None
        body: dict[str, Any] = {"token": make_jwt(email, exp, jti=str(next(self.counter)))}
        if self.send_expires_at and exp is not None:
            body["expires_at"] = datetime.fromtimestamp(exp, UTC).isoformat()
        return web.Response(text=json.dumps(body), content_type="application/json")


@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def minter() -> AsyncIterator[tuple[Minter, TrellisRest]]:
    state = Minter()
    app = web.Application()
    app.router.add_post("/v1/authenticate", state.handle)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        rest = TrellisRest(str(server.make_url("/")))
        try:
            yield state, rest
        finally:
            await rest.aclose()


async def test_static_token_is_the_same_for_everyone() -> None:
    """Shared mode hands every identity the one configured token."""
    provider: TokenProvider = StaticToken("tok-123")
    assert await provider.token_for(None) == "tok-123"
    assert await provider.token_for("a@b.c") == "tok-123"


def test_static_token_repr_hides_the_token() -> None:
    """Neither repr nor str of a StaticToken shows the token."""
    provider = StaticToken("tok-123-secret")
    assert "tok-123-secret" not in repr(provider)
    assert "tok-123-secret" not in str(provider)
    assert not isinstance(provider, RefreshableTokenProvider)


def test_inspect_jwt_reads_subject_and_expiry() -> None:
    """inspect_jwt reads sub and exp without verifying the signature."""
    token = make_jwt("ada@example.com", exp=NOW)
    assert inspect_jwt(token) == JwtInfo("ada@example.com", datetime.fromtimestamp(NOW, UTC))
    assert inspect_jwt(make_jwt("x")) == JwtInfo("x", None)


def test_inspect_jwt_rejects_non_jwt_without_echoing_it() -> None:
    """A value that is not a JWT raises ValueError whose message does not contain it."""
    with pytest.raises(ValueError, match="not a JWT") as info:
        inspect_jwt("secret-but-not-a-jwt")
    assert "secret-but-not-a-jwt" not in str(info.value)


async def test_minted_token_is_cached_per_email(minter: tuple[Minter, TrellisRest]) -> None:
    """One e-mail is minted once and then served from cache; another e-mail gets its own."""
    state, rest = minter
    tokens = ApiKeyTokens(rest, API_KEY, clock=Clock())
    first = await tokens.token_for("ada@example.com")
    assert await tokens.token_for("ada@example.com") == first
    other = await tokens.token_for("bob@example.com")
    assert other != first
    assert inspect_jwt(other).subject == "bob@example.com"
    assert state.calls == ["ada@example.com", "bob@example.com"]
    assert isinstance(tokens, RefreshableTokenProvider)


async def test_concurrent_requests_share_one_mint(minter: tuple[Minter, TrellisRest]) -> None:
    """Many turns asking at once for one e-mail cause a single authenticate call."""
    state, rest = minter
    state.gate = asyncio.Event()
    tokens = ApiKeyTokens(rest, API_KEY, clock=Clock())
    tasks = [asyncio.create_task(tokens.token_for("ada@example.com")) for _ in range(5)]
    async with asyncio.timeout(5):
        await state.arrived.get()
        state.gate.set()
        results = await asyncio.gather(*tasks)
    assert len(set(results)) == 1
    assert state.calls == ["ada@example.com"]


async def test_token_is_refreshed_before_it_expires(minter: tuple[Minter, TrellisRest]) -> None:
    """Within refresh_margin of expires_at a new token is minted; before that the cache is used."""
    state, rest = minter
    clock = Clock()
    tokens = ApiKeyTokens(rest, API_KEY, refresh_margin=300.0, clock=clock)
    first = await tokens.token_for("ada@example.com")
    clock.now = NOW + 6 * 3600 - 301
    assert await tokens.token_for("ada@example.com") == first
    clock.now = NOW + 6 * 3600 - 299
    second = await tokens.token_for("ada@example.com")
    assert second != first
    assert len(state.calls) == 2


async def test_expiry_read_from_jwt_when_answer_lacks_it(
    minter: tuple[Minter, TrellisRest],
) -> None:
    """Without expires_at in the answer, the JWT's exp decides when to refresh."""
    state, rest = minter
    state.send_expires_at = False
    state.lifetime = 1000.0
    clock = Clock()
    tokens = ApiKeyTokens(rest, API_KEY, refresh_margin=100.0, clock=clock)
    first = await tokens.token_for("ada@example.com")
    clock.now = NOW + 899
    assert await tokens.token_for("ada@example.com") == first
    clock.now = NOW + 901
    assert await tokens.token_for("ada@example.com") != first


async def test_invalidate_forces_a_fresh_token(minter: tuple[Minter, TrellisRest]) -> None:
    """After Trellis rejects a token, invalidating it makes the next request mint anew."""
    state, rest = minter
    tokens = ApiKeyTokens(rest, API_KEY, clock=Clock())
    first = await tokens.token_for("ada@example.com")
    tokens.invalidate("ada@example.com", "some-other-token")
    assert await tokens.token_for("ada@example.com") == first
    tokens.invalidate("ada@example.com", first)
    assert await tokens.token_for("ada@example.com") != first
    assert len(state.calls) == 2


async def test_missing_identity_is_an_auth_error(minter: tuple[Minter, TrellisRest]) -> None:
    """Per-user mode without an e-mail fails clearly instead of minting a shared token."""
    _, rest = minter
    tokens = ApiKeyTokens(rest, API_KEY)
    with pytest.raises(TrellisAuthError):
        await tokens.token_for(None)


async def test_refused_api_key_reaches_every_waiter(minter: tuple[Minter, TrellisRest]) -> None:
    """A rejected API key fails all concurrent requests, and a later request tries again."""
    state, rest = minter
    state.fail = True
    state.gate = asyncio.Event()
    tokens = ApiKeyTokens(rest, API_KEY, clock=Clock())
    tasks = [asyncio.create_task(tokens.token_for("ada@example.com")) for _ in range(3)]
    async with asyncio.timeout(5):
        await state.arrived.get()
        state.gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(result, TrellisAuthError) for result in results)
    state.fail = False
    assert inspect_jwt(await tokens.token_for("ada@example.com")).subject == "ada@example.com"
    assert len(state.calls) == 2


def test_api_key_tokens_repr_hides_the_key() -> None:
    """The API key never shows in the provider's repr."""
    tokens = ApiKeyTokens(TrellisRest("http://127.0.0.1:1"), API_KEY)
    assert API_KEY not in repr(tokens)
    assert API_KEY not in str(tokens)
