"""``trellis-slack check``, the Trellis half: the API key, the WebSocket, integrations and models.

The choices are in ``ops/diagnostics.py``'s docstring.
"""

from __future__ import annotations

from collections.abc import Iterable

from trellis_slack.errors import (
    TrellisAPIError,
    TrellisAuthError,
    TrellisError,
    TrellisRateLimited,
    TrellisTimeout,
    TrellisUnavailable,
)
from trellis_slack.ops.check_report import Check, guarded, unexpected
from trellis_slack.settings import Settings
from trellis_slack.trellis.client import Backoff, TrellisClient
from trellis_slack.trellis.rest import TrellisRest
from trellis_slack.trellis.tokens import StaticToken

__all__ = ["trellis_checks"]

#: How many integrations or models are named in a line before "…".
_NAMED = 5


async def trellis_checks(settings: Settings, per_call: float) -> list[Check]:
    rest = TrellisRest(settings.trellis_api_url, timeout=per_call)
    try:
        checks: list[Check] = []
        token = settings.trellis_token
        if settings.per_user_identity:
            try:
                minted, token = await _mint(settings, rest)
            except Exception as exc:
                minted, token = unexpected("Trellis API key", exc), None
            checks.append(minted)
        if token is None:
            reason = "needs a token: " + (
                "set CHECK_EMAIL to check the API key first"
                if settings.check_email is None
                else "the API key check failed"
            )
            return checks + [
                Check(name, "skipped", reason)
                for name in ("Trellis connection", "Trellis integrations", "Trellis models")
            ]
        checks.append(
            await guarded("Trellis connection", lambda: _socket(settings, token, per_call))
        )
        checks.append(
            await guarded("Trellis integrations", lambda: _integrations(settings, rest, token))
        )
        checks.append(await guarded("Trellis models", lambda: _models(settings, rest, token)))
        return checks
    finally:
        await rest.aclose()


async def _mint(settings: Settings, rest: TrellisRest) -> tuple[Check, str | None]:
    """Mint a token for ``CHECK_EMAIL``: the check, and the token when it worked."""
    name = "Trellis API key (POST /v1/authenticate)"
    email = settings.check_email
    if email is None:
        skipped = Check(
            name,
            "skipped",
            "checking the key mints a token for an e-mail, and Trellis creates a member for an "
            "e-mail it does not know",
            "to check it, set CHECK_EMAIL to your own address and run the check again",
        )
        return skipped, None
    assert settings.trellis_api_key is not None  # per-user identity
    try:
        minted = await rest.authenticate(settings.trellis_api_key, email)
    except TrellisAuthError:
        refused = Check(
            name,
            "failed",
            "Trellis refused TRELLIS_API_KEY",
            "the API key is wrong or was revoked: copy a valid key from Trellis, and check that "
            "TRELLIS_API_URL is the Trellis that issued it",
        )
        return refused, None
    except TrellisError as exc:
        return _rest_failure(name, exc, settings.trellis_api_url, "/v1/authenticate"), None
    return Check(name, "ok", f"minted a token for {email}"), minted.token


async def _socket(settings: Settings, token: str, per_call: float) -> Check:
    name = "Trellis connection (authenticate + ping)"
    client = TrellisClient(
        ws_url=settings.trellis_ws_url,
        tokens=StaticToken(token),
        max_connections=1,
        connect_timeout=per_call,
        backoff=Backoff(max_attempts=1),
        pace=False,
    )
    try:
        await client.check()
    except TrellisAuthError:
        if settings.per_user_identity:
            return Check(
                name,
                "failed",
                "Trellis rejected the token it had just minted (close code 4001)",
                "TRELLIS_WS_URL and TRELLIS_API_URL must point at the same Trellis",
            )
        return Check(
            name,
            "failed",
            "Trellis rejected TRELLIS_TOKEN (close code 4001)",
            "the token is wrong, expired or from another Trellis: ask Trellis for a new token",
        )
    except TrellisUnavailable as exc:
        return Check(
            name,
            "failed",
            f"Trellis at {settings.trellis_ws_url} is unreachable: {exc}",
            "check TRELLIS_WS_URL (default wss://api.trellis.sh/v1/chats/ws), the network, and "
            "any proxy or firewall between this host and Trellis",
        )
    except TrellisTimeout:
        return Check(
            name,
            "failed",
            "Trellis accepted the connection but did not answer a ping",
            "try again in a minute; if it persists, Trellis may be having trouble",
        )
    except TrellisError as exc:
        return Check(name, "failed", str(exc), "try again in a minute")
    finally:
        await client.aclose()
    return Check(name, "ok", f"authenticated at {settings.trellis_ws_url} and answered a ping")


async def _integrations(settings: Settings, rest: TrellisRest, token: str) -> Check:
    name = "Trellis integrations (GET /v1/integrations)"
    try:
        found = await rest.list_integrations(token)
    except TrellisError as exc:
        return _rest_failure(name, exc, settings.trellis_api_url, "/v1/integrations")
    if not found:
        return Check(
            name,
            "failed",
            "this Trellis member has no database integration",
            "connect a database in Trellis (or share one with this member), then check again",
        )
    ids = [integration.id for integration in found]
    named = _names(f"{i.display_name} ({i.id})" for i in found)
    wanted = settings.trellis_integration_id
    if wanted is not None and wanted not in ids:
        return Check(
            name,
            "failed",
            f"TRELLIS_INTEGRATION_ID {wanted} is not one of {named}",
            f"set TRELLIS_INTEGRATION_ID to one of: {', '.join(ids)}",
        )
    if wanted is None:
        return Check(
            name,
            "warning",
            f"{named}; no TRELLIS_INTEGRATION_ID, so questions reach no database until a channel "
            "picks one with /trellis integration",
        )
    return Check(name, "ok", f"{named}; questions go to {wanted} by default")


async def _models(settings: Settings, rest: TrellisRest, token: str) -> Check:
    name = "Trellis models (GET /v1/models)"
    try:
        listed = await rest.list_models(token)
    except TrellisError as exc:
        return _rest_failure(name, exc, settings.trellis_api_url, "/v1/models")
    ids = [model.model_id for model in listed.models]
    wanted = settings.trellis_model
    if wanted is not None and wanted not in ids:
        return Check(
            name,
            "failed",
            f"TRELLIS_MODEL {wanted} is not offered",
            f"set TRELLIS_MODEL to one of: {', '.join(ids) or '(none listed)'}, or unset it to "
            "use Trellis's default",
        )
    default = wanted or listed.default or "chosen by Trellis"
    return Check(name, "ok", f"{_names(ids)}; default {default}")


def _rest_failure(name: str, exc: TrellisError, api_url: str, path: str) -> Check:
    if isinstance(exc, TrellisAPIError) and exc.status in (404, 405):
        return Check(name, "skipped", f"this Trellis has no {path} (an older API version)")
    if isinstance(exc, TrellisAuthError):
        return Check(
            name,
            "failed",
            "Trellis refused the token (HTTP 401/403)",
            "TRELLIS_TOKEN is wrong or expired, or TRELLIS_API_URL is another Trellis than "
            "TRELLIS_WS_URL",
        )
    if isinstance(exc, TrellisUnavailable):
        return Check(
            name,
            "failed",
            f"could not reach the Trellis REST API at {api_url}",
            "check TRELLIS_API_URL (default https://api.trellis.sh), the network, and any proxy "
            "or firewall between this host and Trellis",
        )
    if isinstance(exc, TrellisRateLimited):
        return Check(name, "failed", str(exc), "wait a minute and run the check again")
    return Check(name, "failed", str(exc), "try again in a minute")


def _names(items: Iterable[str]) -> str:
    names = list(items)
    shown = ", ".join(names[:_NAMED])
    more = f" and {len(names) - _NAMED} more" if len(names) > _NAMED else ""
    return f"{len(names)} available: {shown}{more}"
