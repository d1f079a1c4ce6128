"""Where Trellis JWTs come from: one static token, or one minted per Slack user from an API key."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar, runtime_checkable

import jwt

from trellis_slack.errors import TrellisAuthError
from trellis_slack.trellis.rest import MintedToken, TrellisRest

__all__ = [
    "ApiKeyTokens",
    "JwtInfo",
    "RefreshableTokenProvider",
    "StaticToken",
    "TokenProvider",
    "inspect_jwt",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a minted token is trusted when neither Trellis nor the JWT says (Trellis's 6 hours).
DEFAULT_LIFETIME = 6 * 3600.0


class TokenProvider(Protocol):
    """Gives the JWT to open a Trellis socket with."""

    async def token_for(self, identity: str | None) -> str:
        """The token for ``identity`` (the asker's e-mail in per-user mode, None in shared mode)."""
        ...


@runtime_checkable
class RefreshableTokenProvider(TokenProvider, Protocol):
    """A provider that can mint a fresh token after Trellis rejected the one it gave."""

    def invalidate(self, identity: str | None, token: str) -> None:
        """Forget ``token`` for ``identity`` so the next :meth:`token_for` mints a new one."""
        ...


async def with_token(
    tokens: TokenProvider, identity: str | None, call: Callable[[str], Awaitable[T]]
) -> T:
    """Run ``call`` with the identity's token; once more with a fresh one if Trellis refuses it.

    Only a provider that can mint (``RefreshableTokenProvider``) gets the second try: a static
    token that was refused will be refused again.
    """
    token = await tokens.token_for(identity)
    try:
        return await call(token)
    except TrellisAuthError:
        if not isinstance(tokens, RefreshableTokenProvider):
            raise
        tokens.invalidate(identity, token)
        logger.warning("Trellis refused a token; trying once more with a fresh one")
    return await call(await tokens.token_for(identity))


class StaticToken:
    """One JWT shared by every Slack user (shared mode)."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticToken(<hidden>)"

    __str__ = __repr__

    async def token_for(self, identity: str | None) -> str:
        """The same token whatever the identity."""
        return self._token


@dataclass(frozen=True, slots=True)
class JwtInfo:
    """What an unverified look inside a JWT tells us."""

    subject: str | None
    expires_at: datetime | None


def inspect_jwt(token: str) -> JwtInfo:
    """Read ``sub`` and ``exp`` without verifying the signature; ValueError if it is no JWT."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise ValueError("the value is not a JWT") from None
    subject = claims.get("sub")
    exp = claims.get("exp")
    expires_at = None
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        try:
            expires_at = datetime.fromtimestamp(exp, UTC)
        except (OverflowError, OSError, ValueError):
            expires_at = None
    return JwtInfo(subject if isinstance(subject, str) else None, expires_at)


@dataclass(frozen=True, slots=True)
class _Cached:
    token: str
    refresh_at: float


class ApiKeyTokens:
    """Mints one JWT per e-mail with the API key, caches it and refreshes it before it expires."""

    def __init__(
        self,
        rest: TrellisRest,
        api_key: str,
        *,
        refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._rest = rest
        self._api_key = api_key
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._minting: dict[str, asyncio.Task[MintedToken]] = {}

    def __repr__(self) -> str:
        return f"ApiKeyTokens({self._rest!r}, api_key=<hidden>, members={len(self._cache)})"

    __str__ = __repr__

    async def token_for(self, identity: str | None) -> str:
        """The cached token for this e-mail, minted (once, however many ask at once) when due."""
        if not identity:
            raise TrellisAuthError("per-user mode needs the asker's e-mail address")
        cached = self._cache.get(identity)
        if cached is not None and self._clock() < cached.refresh_at:
            return cached.token
        task = self._minting.get(identity)
        if task is None:
            task = asyncio.create_task(self._mint(identity))
            task.add_done_callback(lambda done: self._minting.pop(identity, None))
            task.add_done_callback(_consume_exception)
            self._minting[identity] = task
        minted = await asyncio.shield(task)
        return minted.token

    def invalidate(self, identity: str | None, token: str) -> None:
        """Drop the cached token for ``identity`` if it is still ``token``."""
        if identity is None:
            return
        cached = self._cache.get(identity)
        if cached is not None and cached.token == token:
            del self._cache[identity]

    async def _mint(self, identity: str) -> MintedToken:
        logger.info("minting a Trellis token for a member")
        minted = await self._rest.authenticate(self._api_key, identity)
        expires_at = minted.expires_at
        if expires_at is None:
            try:
                expires_at = inspect_jwt(minted.token).expires_at
            except ValueError:
                logger.warning("Trellis minted a token that is not a JWT; assuming 6 hours")
        now = self._clock()
        expiry = expires_at.timestamp() if expires_at is not None else now + DEFAULT_LIFETIME
        # A token living less than twice the margin is refreshed at half its remaining life.
        refresh_at = expiry - min(self._refresh_margin, max(0.0, expiry - now) / 2)
        self._cache[identity] = _Cached(minted.token, refresh_at)
        return minted


def _consume_exception(task: asyncio.Task[MintedToken]) -> None:
    # Every waiter may have been cancelled; do not let asyncio report the error as unretrieved.
    if not task.cancelled():
        task.exception()
