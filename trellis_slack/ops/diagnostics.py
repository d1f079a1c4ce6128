"""``trellis-slack check``: try every connection the bot needs and say, in words, what to fix.

Choices made here (the docs leave them open):

* Every check runs even after one failed, so one run shows every problem.
* Slack: ``auth.test`` with the bot token, and ``apps.connections.open`` with the app token. The
  Socket Mode URL it hands out is neither opened nor shown (it works like a one-time ticket).
* Trellis: one connection is opened and authenticated, then pinged; no retries (a diagnostic
  reports what happens now). Then the integrations and models are listed over REST; a Trellis
  without those endpoints (the older API) makes them *skipped*, not failed.
* Per-user identity (``TRELLIS_API_KEY``): checking the key means minting a token for some
  e-mail, and Trellis creates a member for an e-mail it does not know. So the key is only tried
  with ``CHECK_EMAIL`` (a real address the admin chose); without it the Trellis checks are
  skipped and the report says how to run them. Skipped and warning lines do not fail the check.
* No token or key ever appears in the report (it is scrubbed again before printing).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from trellis_slack import logs
from trellis_slack.errors import (
    TrellisAPIError,
    TrellisAuthError,
    TrellisError,
    TrellisRateLimited,
    TrellisTimeout,
    TrellisUnavailable,
)
from trellis_slack.settings import Settings
from trellis_slack.trellis.client import Backoff, TrellisClient
from trellis_slack.trellis.rest import TrellisRest
from trellis_slack.trellis.tokens import StaticToken

log = logging.getLogger(__name__)

Status = Literal["ok", "warning", "skipped", "failed"]

_MARKS: dict[Status, str] = {"ok": "✓", "warning": "!", "skipped": "-", "failed": "✗"}
#: Slack errors that mean the token itself is no good (wrong, revoked, app uninstalled).
_BAD_TOKEN = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)
#: How many integrations or models are named in a line before "…".
_NAMED = 5


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one check: what was tried, what came of it, and what to do about a failure."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """Every check, in the order they ran."""

    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        """True when nothing failed (warnings and skipped checks do not count as failures)."""
        return all(check.status != "failed" for check in self.checks)

    def render(self, secrets: tuple[str, ...] = ()) -> str:
        """The report as lines of text: a mark, the check, the detail, and the fix to try."""
        lines: list[str] = []
        for check in self.checks:
            lines.append(f"{_MARKS[check.status]} {check.name}: {check.detail}")
            if check.fix:
                lines.append(f"    fix: {check.fix}")
        failed = sum(check.status == "failed" for check in self.checks)
        lines.append("")
        warned = sum(check.status == "warning" for check in self.checks)
        also = f" ({warned} warning{'s' if warned != 1 else ''})" if warned else ""
        if failed:
            lines.append(f"{failed} of {len(self.checks)} checks failed{also}.")
        else:
            lines.append(f"All {len(self.checks)} checks passed{also}.")
        return logs.scrub("\n".join(lines), secrets)


async def run_checks(settings: Settings, *, per_call: float = 10.0) -> Report:
    """Run every check against the configured Slack and Trellis; never raises for their failures.

    ``per_call`` bounds each network call (seconds), so an unreachable host fails the check.
    """
    checks = [_configuration(settings)]
    checks += await _slack_checks(settings, per_call)
    checks += await _trellis_checks(settings, per_call)
    return Report(tuple(checks))


def _configuration(settings: Settings) -> Check:
    mode = (
        "per-user identity: a Trellis token is minted for each asker from TRELLIS_API_KEY"
        if settings.per_user_identity
        else "one Trellis token (TRELLIS_TOKEN) shared by every Slack user"
    )
    if settings.warnings:
        return Check("Configuration", "warning", f"{mode}; " + "; ".join(settings.warnings))
    return Check("Configuration", "ok", mode)


async def _guarded(name: str, check: Callable[[], Awaitable[Check]]) -> Check:
    """Run ``check``; a bug in it becomes a failed line (with the traceback in the log)."""
    try:
        return await check()
    except Exception as exc:
        return _unexpected(name, exc)


def _unexpected(name: str, exc: Exception) -> Check:
    log.error("the check %r failed unexpectedly", name, exc_info=exc)
    return Check(name, "failed", f"unexpected error ({type(exc).__name__})", "see the log")


# ---------------------------------------------------------------------------------------- Slack


async def _slack_checks(settings: Settings, per_call: float) -> list[Check]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=per_call)) as session:
        client = AsyncWebClient(
            token=settings.slack_bot_token, base_url=settings.slack_api_url, session=session
        )
        return [
            await _guarded("Slack bot token", lambda: _bot_token(client)),
            await _guarded("Slack app token", lambda: _app_token(client, settings.slack_app_token)),
        ]


async def _bot_token(client: AsyncWebClient) -> Check:
    name = "Slack bot token (auth.test)"
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        error = str(exc.response.get("error", "unknown_error"))
        if error in _BAD_TOKEN:
            fix = (
                "SLACK_BOT_TOKEN is wrong or the app was uninstalled: reinstall the app and "
                "copy the Bot User OAuth Token (xoxb-…) from Install App (or OAuth & Permissions)"
            )
        else:
            fix = _slack_fix(error)
        return Check(name, "failed", f"Slack answered {error}", fix)
    except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        return _slack_unreachable(name, exc)
    if not auth.get("bot_id"):
        return Check(
            name,
            "failed",
            "this token belongs to a user, not to the app's bot",
            "copy the Bot User OAuth Token (xoxb-…) from Install App (or OAuth & Permissions)",
        )
    return Check(
        name,
        "ok",
        f"workspace {auth.get('team')} ({auth.get('team_id')}), "
        f"bot user @{auth.get('user')} ({auth.get('user_id')})",
    )


async def _app_token(client: AsyncWebClient, app_token: str) -> Check:
    name = "Slack app token (apps.connections.open, Socket Mode)"
    try:
        await client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        error = str(exc.response.get("error", "unknown_error"))
        if error in _BAD_TOKEN:
            fix = (
                "SLACK_APP_TOKEN is wrong or was revoked: create an app-level token with the "
                "connections:write scope (Basic Information → App-Level Tokens)"
            )
        elif error == "missing_scope":
            fix = (
                "the app-level token lacks connections:write: create one with that scope "
                "(Basic Information → App-Level Tokens)"
            )
        elif error == "not_allowed_token_type":
            fix = "SLACK_APP_TOKEN must be the app-level token (xapp-…), not the bot token"
        else:
            fix = f"{_slack_fix(error)}; check that Socket Mode is turned on in the app's settings"
        return Check(name, "failed", f"Slack answered {error}", fix)
    except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        return _slack_unreachable(name, exc)
    return Check(name, "ok", "Slack would open a Socket Mode connection (not opened)")


def _slack_fix(error: str) -> str:
    if error == "ratelimited":
        return "Slack is rate limiting this app: wait a minute and run the check again"
    return f"look up `{error}` in Slack's documentation of the method"


def _slack_unreachable(name: str, exc: BaseException) -> Check:
    return Check(
        name,
        "failed",
        f"could not reach Slack ({type(exc).__name__})",
        "check SLACK_API_URL (default https://slack.com/api/), the network, and any proxy or "
        "firewall between this host and Slack",
    )


# ---------------------------------------------------------------------------------------- Trellis


async def _trellis_checks(settings: Settings, per_call: float) -> list[Check]:
    rest = TrellisRest(settings.trellis_api_url, timeout=per_call)
    try:
        checks: list[Check] = []
        token = settings.trellis_token
        if settings.per_user_identity:
            try:
                minted, token = await _mint(settings, rest)
            except Exception as exc:
                minted, token = _unexpected("Trellis API key", exc), None
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
            await _guarded("Trellis connection", lambda: _socket(settings, token, per_call))
        )
        checks.append(
            await _guarded("Trellis integrations", lambda: _integrations(settings, rest, token))
        )
        checks.append(await _guarded("Trellis models", lambda: _models(settings, rest, token)))
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
