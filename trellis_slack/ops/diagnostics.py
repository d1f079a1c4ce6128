"""``trellis-slack check``: try every connection the bot needs and say, in words, what to fix.

Choices made here (the docs leave them open):

* Every check runs even after one failed, so one run shows every problem. A configuration
  problem is one of them: the report lists it, then checks the half it does not touch (an expired
  ``TRELLIS_TOKEN`` still lets Slack be checked, a bad ``SLACK_BOT_TOKEN`` still lets Trellis be);
  a half the problem does touch is *skipped*, and the check fails (exit 1).
* Slack: ``auth.test`` with the bot token, and ``apps.connections.open`` with the app token. The
  Socket Mode URL it hands out is neither opened nor shown (it works like a one-time ticket).
* Trellis: one connection is opened and authenticated, then pinged; no retries (a diagnostic
  reports what happens now). Then the integrations and models are listed over REST; a Trellis
  without those endpoints (the older API) makes them *skipped*, not failed.
* Per-user identity (``TRELLIS_API_KEY``): checking the key means minting a token for some
  e-mail, and Trellis creates a member for an e-mail it does not know. So the key is only tried
  with ``CHECK_EMAIL`` (a real address the admin chose); without it the Trellis checks are
  skipped and the report says how to run them. Skipped and warning lines do not fail the check.
* The state store (``TRELLIS_SLACK_DB``): reachable, its schema version, writable; nothing is
  created or migrated (see ``ops/store_checks.py``). A URL's password is never shown.
* No token or key ever appears in the report (it is scrubbed again before printing).
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from trellis_slack.errors import ConfigError, SlackRefused, SlackUnavailable
from trellis_slack.ops.check_report import Check, Report, guarded
from trellis_slack.ops.store_checks import NAME as STORE_CHECK
from trellis_slack.ops.store_checks import store_check
from trellis_slack.ops.trellis_checks import trellis_checks
from trellis_slack.settings import Settings
from trellis_slack.slack.web import SlackIO, web_client

__all__ = ["Check", "Report", "check_environment", "run_checks"]

#: Slack errors that mean the token itself is no good (wrong, revoked, app uninstalled).
_BAD_TOKEN = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)


async def run_checks(settings: Settings, *, per_call: float = 10.0) -> Report:
    """Run every check against the configured Slack and Trellis; never raises for their failures.

    ``per_call`` bounds each network call (seconds), so an unreachable host fails the check.
    """
    checks = [_configuration(settings)]
    checks += await _slack_checks(settings, per_call)
    checks += await trellis_checks(settings, per_call)
    checks.append(await guarded(STORE_CHECK, lambda: store_check(settings.db_path, per_call)))
    return Report(tuple(checks))


async def check_environment(env: Mapping[str, str], *, per_call: float = 10.0) -> Report:
    """Check the configuration in ``env``, then whatever it still lets be checked."""
    try:
        settings = Settings.from_mapping(env)
    except ConfigError as exc:
        problems = exc.problems
    else:
        return await run_checks(settings, per_call=per_call)
    checks = [
        Check(
            "Configuration",
            "failed",
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''}:\n"
            + "\n".join(f"- {problem}" for problem in problems),
            "fix the variables named (`trellis-slack config` lists them all)",
        )
    ]
    slack_half = _settings_or_none(env, require_trellis=False)
    if slack_half is None:
        checks += _skipped(_SLACK_CHECKS, "the Slack configuration has a problem (above)")
    else:
        checks += await _slack_checks(slack_half, per_call)
    # The Trellis half without the Slack tokens (a malformed one must not hide Trellis).
    trellis_env = {k: v for k, v in env.items() if k not in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN")}
    trellis_half = _settings_or_none(trellis_env, require_slack=False)
    if trellis_half is None:
        checks += _skipped(_TRELLIS_CHECKS, "the Trellis configuration has a problem (above)")
    else:
        checks += await trellis_checks(trellis_half, per_call)
    target = _store_target(env)
    if target is None:
        checks += _skipped((STORE_CHECK,), "TRELLIS_SLACK_DB has a problem (above)")
    else:
        checks.append(await guarded(STORE_CHECK, lambda: store_check(target, per_call)))
    return Report(tuple(checks))


_SLACK_CHECKS = ("Slack bot token", "Slack app token")
_TRELLIS_CHECKS = ("Trellis connection", "Trellis integrations", "Trellis models")


def _settings_or_none(
    env: Mapping[str, str], *, require_slack: bool = True, require_trellis: bool = True
) -> Settings | None:
    try:
        return Settings.from_mapping(
            env, require_slack=require_slack, require_trellis=require_trellis
        )
    except ConfigError:
        return None


def _store_target(env: Mapping[str, str]) -> str | None:
    """``TRELLIS_SLACK_DB`` as the bot would read it, or None when it is itself a problem."""
    try:
        settings = Settings.from_mapping(
            {"TRELLIS_SLACK_DB": env.get("TRELLIS_SLACK_DB", "")},
            require_slack=False,
            require_trellis=False,
        )
    except ConfigError:
        return None
    return settings.db_path


def _skipped(names: tuple[str, ...], reason: str) -> list[Check]:
    return [Check(name, "skipped", reason) for name in names]


def _configuration(settings: Settings) -> Check:
    mode = (
        "per-user identity: a Trellis token is minted for each asker from TRELLIS_API_KEY"
        if settings.per_user_identity
        else "one Trellis token (TRELLIS_TOKEN) shared by every Slack user"
    )
    if settings.warnings:
        return Check("Configuration", "warning", f"{mode}; " + "; ".join(settings.warnings))
    return Check("Configuration", "ok", mode)


# ---------------------------------------------------------------------------------------- Slack


async def _slack_checks(settings: Settings, per_call: float) -> list[Check]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=per_call)) as session:
        slack = SlackIO(
            web_client(settings.slack_bot_token, settings.slack_api_url, session, retries=False)
        )
        return [
            await guarded("Slack bot token", lambda: _bot_token(slack)),
            await guarded("Slack app token", lambda: _app_token(slack, settings.slack_app_token)),
        ]


async def _bot_token(slack: SlackIO) -> Check:
    name = "Slack bot token (auth.test)"
    try:
        auth = await slack.auth_test()
    except SlackRefused as exc:
        if exc.error in _BAD_TOKEN:
            fix = (
                "SLACK_BOT_TOKEN is wrong or the app was uninstalled: reinstall the app and "
                "copy the Bot User OAuth Token (xoxb-…) from Install App (or OAuth & Permissions)"
            )
        else:
            fix = _slack_fix(exc.error)
        return Check(name, "failed", f"Slack answered {exc.error}", fix)
    except SlackUnavailable as exc:
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


async def _app_token(slack: SlackIO, app_token: str) -> Check:
    name = "Slack app token (apps.connections.open, Socket Mode)"
    try:
        await slack.check_app_token(app_token)
    except SlackRefused as exc:
        error = exc.error
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
    except SlackUnavailable as exc:
        return _slack_unreachable(name, exc)
    return Check(name, "ok", "Slack would open a Socket Mode connection (not opened)")


def _slack_fix(error: str) -> str:
    if error == "ratelimited":
        return "Slack is rate limiting this app: wait a minute and run the check again"
    return f"look up `{error}` in Slack's documentation of the method"


def _slack_unreachable(name: str, exc: SlackUnavailable) -> Check:
    cause = exc.__cause__
    return Check(
        name,
        "failed",
        f"could not reach Slack ({type(cause).__name__ if cause else 'no answer'})",
        "check SLACK_API_URL (default https://slack.com/api/), the network, and any proxy or "
        "firewall between this host and Slack",
    )
