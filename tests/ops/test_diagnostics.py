"""`trellis-slack check` as an admin runs it: one line per check, the fix to try, the exit code."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import jwt
import pytest

from tests.helpers import bot_env
from trellis_slack.cli import main
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import DEFAULT_INTEGRATIONS, FakeTrellis
from trellis_slack.ops.diagnostics import Check, Report

DEMO_DB = DEFAULT_INTEGRATIONS[0]["id"]
SECRET_NAMES = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "TRELLIS_TOKEN", "TRELLIS_API_KEY")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """`main` configures the root logger; put it back for the other tests."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    yield
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


@pytest.fixture
async def seed_trellis() -> AsyncIterator[FakeTrellis]:
    async with FakeTrellis(version="seed") as server:
        yield server


async def check(env: Mapping[str, str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run `trellis-slack check` in-process (its own event loop, in a thread); (exit code, stdout)."""
    code = await asyncio.to_thread(main, ["check"], dict(env))
    captured = capsys.readouterr()
    for name in SECRET_NAMES:
        secret = env.get(name)
        if secret:
            assert secret not in captured.out
            assert secret not in captured.err
    return code, captured.out


def line(out: str, start: str) -> str:
    """The report line starting with ``start`` (mark and check name), and its fix line if any."""
    lines = out.splitlines()
    for index, text in enumerate(lines):
        if text.startswith(start):
            following = lines[index + 1] if index + 1 < len(lines) else ""
            return text + ("\n" + following if following.startswith("    fix:") else "")
    raise AssertionError(f"no line starts with {start!r} in:\n{out}")


async def test_everything_green_exits_zero(
    slack: FakeSlack,
    trellis: FakeTrellis,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With a working setup every line is ✓, the exit code is 0 and no token is printed."""
    env = bot_env(slack, trellis, tmp_path / "state.db", TRELLIS_INTEGRATION_ID=DEMO_DB)
    code, out = await check(env, capsys)
    assert code == 0, out
    assert "✓ Slack bot token (auth.test): workspace Fake Workspace (T0TEAM)" in out
    assert "✓ Slack app token (apps.connections.open, Socket Mode)" in out
    assert "✓ Trellis connection (authenticate + ping)" in out
    assert f"Demo warehouse ({DEMO_DB}); questions go to {DEMO_DB} by default" in out
    assert "✓ Trellis models (GET /v1/models): 3 available" in out
    assert "All 7 checks passed" in out
    assert "✗" not in out
    assert trellis.actions("ping"), "the Trellis connection was pinged"


async def test_check_does_not_connect_socket_mode(
    slack: FakeSlack,
    trellis: FakeTrellis,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The app token is proven by asking for a Socket Mode URL; no socket is opened to Slack."""
    code, _ = await check(bot_env(slack, trellis, tmp_path / "state.db"), capsys)
    assert code == 0
    assert [call.ok for call in slack.calls_to("apps.connections.open")] == [True]
    assert slack.socket_connections == 0
    assert not slack.events()


async def test_bad_bot_token_exits_one_with_the_fix(
    trellis: FakeTrellis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bot token Slack rejects fails with how to get the right one; the other checks still run."""
    async with FakeSlack(bot_token="xoxb-the-installed-token") as slack:
        env = bot_env(slack, trellis, tmp_path / "state.db", TRELLIS_INTEGRATION_ID=DEMO_DB)
        code, out = await check(env, capsys)
    assert code == 1
    bot = line(out, "✗ Slack bot token")
    assert "Slack answered invalid_auth" in bot
    assert "fix: SLACK_BOT_TOKEN is wrong or the app was uninstalled: reinstall" in bot
    assert "Bot User OAuth Token" in bot
    assert line(out, "✓ Slack app token")
    assert line(out, "✓ Trellis connection")
    assert "1 of 7 checks failed" in out


async def test_bad_app_token_says_where_to_make_one(
    trellis: FakeTrellis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An app-level token Slack rejects fails with where app-level tokens are created."""
    async with FakeSlack(app_token="xapp-the-real-one") as slack:
        code, out = await check(bot_env(slack, trellis, tmp_path / "state.db"), capsys)
    assert code == 1
    app = line(out, "✗ Slack app token")
    assert "invalid_auth" in app
    assert "SLACK_APP_TOKEN is wrong or was revoked" in app
    assert "App-Level Tokens" in app


async def test_slack_unreachable(
    trellis: FakeTrellis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """When nothing answers at SLACK_API_URL both Slack checks fail and point at the URL and network."""
    async with FakeSlack() as slack:
        env = bot_env(slack, trellis, tmp_path / "state.db")
    code, out = await check(env, capsys)
    assert code == 1
    for name in ("✗ Slack bot token", "✗ Slack app token"):
        assert "could not reach Slack" in line(out, name)
        assert "check SLACK_API_URL" in line(out, name)


async def test_trellis_down(
    slack: FakeSlack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With Trellis unreachable the connection and list checks fail with the URL to check."""
    async with FakeTrellis() as stopped:
        env = bot_env(slack, stopped, tmp_path / "state.db")
    code, out = await check(env, capsys)
    assert code == 1
    connection = line(out, "✗ Trellis connection")
    assert f"Trellis at {env['TRELLIS_WS_URL']} is unreachable" in connection
    assert "check TRELLIS_WS_URL" in connection
    assert "check TRELLIS_API_URL" in line(out, "✗ Trellis integrations")
    assert line(out, "✓ Slack bot token")
    assert "3 of 7 checks failed" in out


async def test_trellis_token_rejected(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A token Trellis does not accept (close 4001) fails with: get a new token."""
    foreign = FakeTrellis().make_token("someone")  # signed by another Trellis
    env = bot_env(slack, trellis, tmp_path / "state.db", TRELLIS_TOKEN=foreign)
    code, out = await check(env, capsys)
    assert code == 1
    connection = line(out, "✗ Trellis connection")
    assert "Trellis rejected TRELLIS_TOKEN (close code 4001)" in connection
    assert "ask Trellis for a new token" in connection
    assert "Trellis refused the token" in line(out, "✗ Trellis models")


async def test_no_integration_says_connect_a_database(
    slack: FakeSlack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Trellis member without any integration is told to connect a database."""
    async with FakeTrellis(integrations=[]) as trellis:
        code, out = await check(bot_env(slack, trellis, tmp_path / "state.db"), capsys)
    assert code == 1
    integrations = line(out, "✗ Trellis integrations")
    assert "no database integration" in integrations
    assert "connect a database in Trellis" in integrations


async def test_unknown_defaults_are_named_with_the_choices(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A TRELLIS_INTEGRATION_ID or TRELLIS_MODEL Trellis does not offer fails, listing what it does."""
    env = bot_env(
        slack,
        trellis,
        tmp_path / "state.db",
        TRELLIS_INTEGRATION_ID="int-gone",
        TRELLIS_MODEL="gpt-2",
    )
    code, out = await check(env, capsys)
    assert code == 1
    assert f"set TRELLIS_INTEGRATION_ID to one of: {DEMO_DB}" in line(out, "✗ Trellis integrations")
    models = line(out, "✗ Trellis models")
    assert "TRELLIS_MODEL gpt-2 is not offered" in models
    assert "claude-sonnet-4-6" in models


async def test_missing_default_integration_is_a_warning(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without TRELLIS_INTEGRATION_ID the check passes but warns that questions reach no database."""
    code, out = await check(bot_env(slack, trellis, tmp_path / "state.db"), capsys)
    assert code == 0
    assert "no TRELLIS_INTEGRATION_ID" in line(out, "! Trellis integrations")


async def test_older_trellis_without_rest_skips_the_lists(
    slack: FakeSlack,
    seed_trellis: FakeTrellis,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Against the older Trellis API (no REST lists) the lists are skipped, not failed."""
    code, out = await check(bot_env(slack, seed_trellis, tmp_path / "state.db"), capsys)
    assert code == 0, out
    assert line(out, "✓ Trellis connection")
    assert "has no /v1/integrations" in line(out, "- Trellis integrations")
    assert "has no /v1/models" in line(out, "- Trellis models")


def per_user(env: dict[str, str], **extra: str) -> dict[str, str]:
    env = {**env, "TRELLIS_TOKEN": "", "TRELLIS_API_KEY": "test-api-key"}
    env.update(extra)
    return env


async def test_per_user_mode_without_check_email_skips_and_creates_nobody(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With an API key and no CHECK_EMAIL the Trellis checks are skipped, say why, and mint nothing."""
    env = per_user(bot_env(slack, trellis, tmp_path / "state.db"))
    code, out = await check(env, capsys)
    assert code == 0, out
    key = line(out, "- Trellis API key")
    assert "set CHECK_EMAIL" in key
    assert "set CHECK_EMAIL to check the API key first" in line(out, "- Trellis connection")
    assert trellis.members == {}
    assert not trellis.actions("ping")


async def test_per_user_mode_with_check_email_checks_the_key(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With CHECK_EMAIL the API key mints a token for that address, which then opens a connection."""
    env = per_user(
        bot_env(slack, trellis, tmp_path / "state.db", TRELLIS_INTEGRATION_ID=DEMO_DB),
        CHECK_EMAIL="admin@example.com",
    )
    code, out = await check(env, capsys)
    assert code == 0, out
    assert "minted a token for admin@example.com" in line(out, "✓ Trellis API key")
    assert line(out, "✓ Trellis connection")
    assert list(trellis.members) == ["admin@example.com"]


async def test_per_user_mode_with_a_wrong_api_key(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An API key Trellis refuses fails with what to check; the socket checks are skipped."""
    env = per_user(
        bot_env(slack, trellis, tmp_path / "state.db"),
        TRELLIS_API_KEY="revoked-key",
        CHECK_EMAIL="admin@example.com",
    )
    code, out = await check(env, capsys)
    assert code == 1
    assert "Trellis refused TRELLIS_API_KEY" in line(out, "✗ Trellis API key")
    assert "the API key check failed" in line(out, "- Trellis connection")


def test_invalid_configuration_is_a_failed_check(capsys: pytest.CaptureFixture[str]) -> None:
    """`check` with a broken configuration lists every problem in its report and exits 1."""
    assert main(["check"], {"SLACK_BOT_TOKEN": "xoxp-user"}) == 1
    captured = capsys.readouterr()
    assert captured.err == ""
    report = captured.out
    assert report.startswith("✗ Configuration: 3 problems:\n")
    assert "    - SLACK_BOT_TOKEN must start with 'xoxb-'\n" in report
    assert "    - SLACK_APP_TOKEN is required\n" in report
    assert "    - TRELLIS_TOKEN or TRELLIS_API_KEY is required" in report
    assert "the Slack configuration has a problem" in line(report, "- Slack bot token")
    assert "the Trellis configuration has a problem" in line(report, "- Trellis connection")


def test_help_says_what_check_exits_with() -> None:
    """The exit code `check --help`'s parent promises (1 on a problem) is the one a problem gives."""
    help_text = subprocess.run(
        [sys.executable, "-m", "trellis_slack", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "(exit 1 on a problem)" in " ".join(help_text.split())
    assert main(["check"], {}) == 1


async def test_an_expired_trellis_token_still_lets_slack_be_checked(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An expired TRELLIS_TOKEN fails the configuration line; Slack is still checked, Trellis skipped."""
    expired = jwt.encode(
        {"sub": "m", "exp": int(time.time()) - 3600},
        "a-secret-of-at-least-32-bytes-length!",
        algorithm="HS256",
    )
    env = bot_env(slack, trellis, tmp_path / "state.db", TRELLIS_TOKEN=expired)
    code, out = await check(env, capsys)
    assert code == 1
    assert "TRELLIS_TOKEN expired at" in out
    assert line(out, "✓ Slack bot token")
    assert line(out, "✓ Slack app token")
    assert "the Trellis configuration has a problem" in line(out, "- Trellis connection")
    assert out.rstrip().endswith("1 of 7 checks failed.")


async def test_a_bad_slack_token_still_lets_trellis_be_checked(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed SLACK_APP_TOKEN skips the Slack checks; Trellis is still checked."""
    env = bot_env(slack, trellis, tmp_path / "state.db", SLACK_APP_TOKEN="xoxb-not-an-app-token")
    code, out = await check(env, capsys)
    assert code == 1
    assert "SLACK_APP_TOKEN must start with 'xapp-'" in out
    assert "the Slack configuration has a problem" in line(out, "- Slack app token")
    assert line(out, "✓ Trellis connection")


async def test_no_log_line_lands_in_the_report(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unreachable Trellis is a ✗ line of the report, not a log line above it."""
    await trellis.stop()
    env = bot_env(slack, trellis, tmp_path / "state.db")
    code = await asyncio.to_thread(main, ["check"], env)
    captured = capsys.readouterr()
    assert code == 1
    assert "unreachable" in line(captured.out, "✗ Trellis connection")
    assert captured.err == ""
    assert all(
        text[:1] in ("✓", "✗", "!", "-", " ", "") or text[0].isdigit() or text.startswith("All")
        for text in captured.out.splitlines()
    ), captured.out


def test_report_scrubs_secrets_and_counts_failures() -> None:
    """A report never prints a configured secret, and its last line counts the failures."""
    report = Report(
        (
            Check("A", "ok", "fine"),
            Check("B", "failed", "refused key plain-secret-1", "use another"),
            Check("C", "skipped", "not tried"),
        )
    )
    text = report.render(("plain-secret-1",))
    assert "plain-secret-1" not in text
    assert "✗ B: refused key [redacted]\n    fix: use another" in text
    assert text.endswith("1 of 3 checks failed.")
    assert not report.passed
