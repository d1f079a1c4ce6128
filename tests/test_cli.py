"""The command line as an admin meets it: subcommands, .env files, configuration errors, exit codes."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from tests.helpers import bot_env
from trellis_slack.cli import main
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis
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


def clean_env() -> dict[str, str]:
    """This process's environment without any of the bot's variables."""
    return {k: v for k, v in os.environ.items() if k not in VARIABLES}


def test_run_reads_dot_env_in_the_current_folder(tmp_path: Path) -> None:
    """`run` in a folder with .env takes its variables, names the file, and prints no value."""
    (tmp_path / ".env").write_text(
        "# the Slack app\nSLACK_BOT_TOKEN=xoxb-from-the-file\nSLACK_APP_TOKEN='xapp-from-the-file'\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "trellis_slack", "run"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "trellis-slack: read 2 variables from ./.env"
    assert "TRELLIS_TOKEN or TRELLIS_API_KEY is required" in result.stderr
    assert "SLACK_BOT_TOKEN" not in result.stderr
    assert "SLACK_APP_TOKEN" not in result.stderr  # the file's quotes are python-dotenv's to strip
    assert "from-the-file" not in result.stderr + result.stdout


def test_the_environment_wins_over_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A variable set in the environment overrides the file's, and the note says which."""
    (tmp_path / ".env").write_text("LOG_LEVEL=LOUD\nFOLLOW_UPS=sometimes\n")
    assert main(["run"], {"LOG_LEVEL": "info"}, cwd=tmp_path) == 2
    err = capsys.readouterr().err
    assert "read 2 variables from ./.env; the environment overrides LOG_LEVEL" in err
    assert "LOG_LEVEL must be" not in err
    assert "FOLLOW_UPS must be 'all' or 'mentions' (got 'sometimes')" in err


def test_env_file_names_another_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--env-file PATH` is read instead of ./.env; a missing one is a configuration error."""
    (tmp_path / ".env").write_text("FOLLOW_UPS=never\n")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "bot.env").write_text("SLACK_BOT_TOKEN=xoxb-1\n")
    assert main(["run", "--env-file", "conf/bot.env"], {}, cwd=tmp_path) == 2
    err = capsys.readouterr().err
    assert "read 1 variable from conf/bot.env" in err
    assert "FOLLOW_UPS" not in err
    assert "SLACK_BOT_TOKEN is required" not in err
    assert main(["run", "--env-file", "conf/missing.env"], {}, cwd=tmp_path) == 2
    assert "--env-file conf/missing.env: there is no such file" in capsys.readouterr().err


def test_without_a_file_nothing_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No .env in the folder: no note, the environment alone."""
    assert main(["run"], {}, cwd=tmp_path) == 2
    err = capsys.readouterr().err
    assert "read " not in err
    assert "SLACK_BOT_TOKEN is required" in err


async def test_check_reads_the_env_file(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`check --env-file` checks the file's configuration and says first which file it read."""
    variables = bot_env(slack, trellis, tmp_path / "state.db")
    path = tmp_path / "bot.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in variables.items()))
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        code = await asyncio.to_thread(main, ["check", "--env-file", str(path)], {})
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[0] == f"Configuration: read {len(variables)} variables from {path}."
    assert variables["TRELLIS_TOKEN"] not in out


def free_port() -> int:
    """A TCP port nothing listens on (just bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: Runs `trellis-slack run`, then logs as a library might, quoting the URL and the password.
_RUN_THEN_LEAK = """
import logging, os, sys
from trellis_slack.cli import main
code = main(["run"])
url = os.environ["TRELLIS_SLACK_DB"]
logging.getLogger("psycopg.pool").error("connecting to %s (password %s)", url, sys.argv[1])
sys.exit(code)
"""


async def test_a_postgresql_password_never_reaches_the_log_of_a_failing_start(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path
) -> None:
    """A start that cannot reach PostgreSQL (wrong port) exits 1; its password, raw or encoded, is never logged."""
    raw, written = "S3cr@t-pass", "S3cr%40t-pass"
    url = f"postgresql://trellis:{written}@127.0.0.1:{free_port()}/trellis?connect_timeout=2"
    env = {
        **clean_env(),
        **bot_env(slack, trellis, tmp_path / "state.db", TRELLIS_SLACK_DB=url, LOG_LEVEL="DEBUG"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _RUN_THEN_LEAK,
        raw,
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = (text.decode() for text in await process.communicate())
    assert process.returncode == 1, err
    assert "cannot open the database postgresql://trellis:***@127.0.0.1:" in err
    assert "connecting to postgresql://trellis:" in err  # the library's line is there, scrubbed
    for secret in (raw, written, "S3cr"):
        assert secret not in err
        assert secret not in out
