"""The configuration contract: every variable read, every problem reported at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from trellis_slack.errors import ConfigError
from trellis_slack.settings import Settings

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def make_jwt(expires: datetime | None) -> str:
    claims: dict[str, object] = {"sub": "member-1", "org": "org-1"}
    if expires is not None:
        claims["exp"] = int(expires.timestamp())
    return jwt.encode(claims, "a-secret-of-at-least-32-bytes-length!", algorithm="HS256")


def base_env(**extra: str) -> dict[str, str]:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
        "SLACK_APP_TOKEN": "xapp-1-A1-2-def",
        "TRELLIS_TOKEN": make_jwt(NOW + timedelta(days=30)),
    }
    env.update(extra)
    return env


def load(env: dict[str, str]) -> Settings:
    return Settings.from_mapping(env, now=lambda: NOW)


def test_defaults_when_only_required_variables_are_set() -> None:
    """The documented defaults apply when only the required variables are set."""
    settings = load(base_env())
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.trellis_ws_url == "wss://api.trellis.sh/v1/chats/ws"
    assert settings.trellis_api_url == "https://api.trellis.sh"
    assert settings.db_path == "./trellis-slack.db"
    assert settings.log_level == "INFO"
    assert settings.follow_ups == "all"
    assert settings.max_connections == 3
    assert not settings.per_user_identity


def test_every_missing_variable_is_reported_at_once() -> None:
    """An empty environment names every required variable in one error."""
    with pytest.raises(ConfigError) as caught:
        load({})
    text = "\n".join(caught.value.problems)
    assert "SLACK_BOT_TOKEN is required" in text
    assert "SLACK_APP_TOKEN is required" in text
    assert "TRELLIS_TOKEN or TRELLIS_API_KEY is required" in text
    assert len(caught.value.problems) == 3


def test_invalid_values_are_all_reported() -> None:
    """Wrong prefixes, bad URLs, bad numbers and levels are listed together."""
    env = base_env(
        SLACK_BOT_TOKEN="xoxp-user-token",
        SLACK_API_URL="ftp://example",
        TRELLIS_WS_URL="https://not-a-websocket",
        LOG_LEVEL="LOUD",
        TRELLIS_TURN_TIMEOUT="soon",
        TRELLIS_MAX_CONNECTIONS="0",
        FOLLOW_UPS="sometimes",
        ALLOW_EXTERNAL_USERS="maybe",
    )
    with pytest.raises(ConfigError) as caught:
        load(env)
    problems = caught.value.problems
    assert len(problems) == 8
    assert any("SLACK_BOT_TOKEN must start with 'xoxb-'" in p for p in problems)
    assert any(
        p.startswith("TRELLIS_WS_URL must be a URL starting with wss or ws") for p in problems
    )


def test_api_url_gets_a_trailing_slash() -> None:
    """SLACK_API_URL without a trailing slash still forms valid method URLs."""
    settings = load(base_env(SLACK_API_URL="http://127.0.0.1:9999/api"))
    assert settings.slack_api_url == "http://127.0.0.1:9999/api/"


def test_token_that_is_not_a_jwt_is_refused_without_quoting_it() -> None:
    """A TRELLIS_TOKEN that is not a JWT is a clear error that does not repeat the token."""
    with pytest.raises(ConfigError) as caught:
        load(base_env(TRELLIS_TOKEN="not-a-jwt-secret-value"))
    assert "TRELLIS_TOKEN is not a JWT" in str(caught.value)
    assert "not-a-jwt-secret-value" not in str(caught.value)


def test_expired_token_is_refused() -> None:
    """An expired TRELLIS_TOKEN stops start-up with the expiry time."""
    token = make_jwt(NOW - timedelta(hours=2))
    with pytest.raises(ConfigError) as caught:
        load(base_env(TRELLIS_TOKEN=token))
    assert "TRELLIS_TOKEN expired at 2026-11-28 10:00 UTC" in str(caught.value)
    assert token not in str(caught.value)


def test_token_expiring_soon_is_a_warning() -> None:
    """A token expiring within a day starts, with a warning giving the time left."""
    settings = load(base_env(TRELLIS_TOKEN=make_jwt(NOW + timedelta(hours=5, minutes=30))))
    assert settings.warnings == ("TRELLIS_TOKEN expires in 5 h 30 min (at 2026-11-28 17:30 UTC)",)


def test_api_key_alone_means_per_user_identity() -> None:
    """With only TRELLIS_API_KEY each Slack user gets their own Trellis identity."""
    env = base_env(TRELLIS_API_KEY="key-123")
    del env["TRELLIS_TOKEN"]
    assert load(env).per_user_identity


def test_secrets_stay_out_of_repr() -> None:
    """repr(settings) shows no token or key."""
    env = base_env(TRELLIS_API_KEY="key-very-secret")
    settings = load(env)
    text = repr(settings)
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "TRELLIS_TOKEN", "TRELLIS_API_KEY"):
        assert env[name] not in text


def test_lists_and_switches_are_parsed() -> None:
    """Allowlists are comma-separated ids; switches take true/false words."""
    settings = load(
        base_env(ALLOWED_CHANNELS="C1, C2,", ALLOWED_USERS="U1", ALLOW_EXTERNAL_USERS="yes")
    )
    assert settings.allowed_channels == frozenset({"C1", "C2"})
    assert settings.allowed_users == frozenset({"U1"})
    assert settings.allow_external_users


def test_operations_settings_are_parsed() -> None:
    """Admin users, JSON logs, the health port and host, and the check e-mail are read."""
    settings = load(
        base_env(
            TRELLIS_ADMIN_USERS="U1, U2",
            LOG_FORMAT="JSON",
            HEALTH_PORT="8080",
            HEALTH_HOST="127.0.0.1",
            CHECK_EMAIL="admin@example.com",
        )
    )
    assert settings.admin_users == frozenset({"U1", "U2"})
    assert settings.log_format == "json"
    assert settings.health_port == 8080
    assert settings.health_host == "127.0.0.1"
    assert settings.check_email == "admin@example.com"


def test_operations_defaults() -> None:
    """By default: no extra admins, text logs, no health server (0.0.0.0 when one is set)."""
    settings = load(base_env())
    assert settings.admin_users is None
    assert settings.log_format == "text"
    assert settings.health_port is None
    assert settings.health_host == "0.0.0.0"  # noqa: S104 - checks the documented default
    assert settings.check_email is None


def test_invalid_operations_settings_are_all_reported() -> None:
    """A bad log format, port and e-mail, and an empty admin list, are listed together."""
    env = base_env(
        LOG_FORMAT="xml",
        HEALTH_PORT="99999",
        CHECK_EMAIL="admin",
        TRELLIS_ADMIN_USERS=" , ",
    )
    with pytest.raises(ConfigError) as caught:
        load(env)
    problems = caught.value.problems
    assert problems == [
        "LOG_FORMAT must be one of text, json (got 'xml')",
        "TRELLIS_ADMIN_USERS is set but lists no ids",
        "HEALTH_PORT must be a port number from 0 to 65535 (got '99999')",
        "CHECK_EMAIL must be an e-mail address (got 'admin')",
    ]


def test_quoted_values_are_reported_as_quotes() -> None:
    """A value wrapped in quotes (as docker --env-file keeps them) is named as such, once."""
    env = base_env()
    env["SLACK_BOT_TOKEN"] = '"xoxb-1-2-abc"'
    with pytest.raises(ConfigError) as caught:
        load(env)
    assert caught.value.problems == [
        "SLACK_BOT_TOKEN is wrapped in quotes: remove them (docker --env-file keeps quotes as "
        "part of the value)"
    ]


def test_streaming_defaults_to_native_and_accepts_update() -> None:
    """SLACK_STREAMING is native unless set to update; anything else is a clear problem."""
    assert load(base_env()).slack_streaming == "native"
    assert load(base_env(SLACK_STREAMING="UPDATE")).slack_streaming == "update"
    with pytest.raises(ConfigError) as info:
        load(base_env(SLACK_STREAMING="fast"))
    assert "SLACK_STREAMING must be 'native' or 'update'" in str(info.value)


def test_suggested_prompts_default_and_parse() -> None:
    """Four analyst prompts by default; `Title=question` or a bare question; at most four."""
    assert len(load(base_env()).suggested_prompts) == 4
    settings = load(base_env(SUGGESTED_PROMPTS="Churn=What was churn last quarter?; Top products"))
    assert settings.suggested_prompts == (
        ("Churn", "What was churn last quarter?"),
        ("Top products", "Top products"),
    )
    with pytest.raises(ConfigError) as info:
        load(base_env(SUGGESTED_PROMPTS="a;b;c;d;e"))
    assert "SUGGESTED_PROMPTS must list 1 to 4 prompts" in str(info.value)


def test_charts_setting_accepts_auto_native_png() -> None:
    """SLACK_CHARTS is auto unless native or png; anything else is a clear problem."""
    assert load(base_env()).slack_charts == "auto"
    assert load(base_env(SLACK_CHARTS="png")).slack_charts == "png"
    with pytest.raises(ConfigError) as info:
        load(base_env(SLACK_CHARTS="svg"))
    assert "SLACK_CHARTS must be 'auto', 'native' or 'png'" in str(info.value)
