"""The command line as an admin meets it: subcommands, configuration errors, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from trellis_slack.cli import main
from trellis_slack.settings import VARIABLES


def test_help_lists_the_subcommands() -> None:
    """`trellis-slack --help` names `run`, `check` and `config`."""
    result = subprocess.run(
        [sys.executable, "-m", "trellis_slack", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "run" in result.stdout
    assert "check" in result.stdout
    assert "config" in result.stdout


def test_run_without_configuration_lists_what_is_missing() -> None:
    """`trellis-slack run` with no configuration lists every problem, exits 2, prints no traceback."""
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    result = subprocess.run(
        [sys.executable, "-m", "trellis_slack", "run"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is required" in result.stderr
    assert "SLACK_APP_TOKEN is required" in result.stderr
    assert "TRELLIS_TOKEN or TRELLIS_API_KEY is required" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_with_expired_token_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """An expired TRELLIS_TOKEN is reported in words, without the token."""
    token = jwt.encode(
        {"sub": "m", "exp": int((datetime.now(UTC) - timedelta(hours=1)).timestamp())},
        "a-secret-of-at-least-32-bytes-length!",
        algorithm="HS256",
    )
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "TRELLIS_TOKEN": token}
    assert main(["run"], env) == 2
    err = capsys.readouterr().err
    assert "TRELLIS_TOKEN expired" in err
    assert token not in err


def test_config_lists_every_variable(capsys: pytest.CaptureFixture[str]) -> None:
    """`trellis-slack config` prints each variable the bot reads."""
    assert main(["config"], {}) == 0
    out = capsys.readouterr().out
    for name in VARIABLES:
        assert name in out
