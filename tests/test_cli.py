"""The command line as an admin meets it: subcommands, .env files, configuration errors, exit codes."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import pytest

from tests.helpers import ALICE, BOT_USER, CHANNEL, BotFactory, answered, bot_env, questions
from tests.pg import PostgresServer, postgres_server, postgres_url
from trellis_slack.cli import main
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis
from trellis_slack.settings import VARIABLES
from trellis_slack.store.copy import TABLES
from trellis_slack.store.sqlite import SqliteStore
from trellis_slack.store.target import describe

__all__ = ["postgres_server", "postgres_url"]  # fixtures for the copy-state tests


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


# ---------------------------------------------------------------------------------- copy-state


async def copy_state(
    args: list[str], env: Mapping[str, str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """`trellis-slack copy-state ARGS` in-process (its own event loop, in a thread)."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        code = await asyncio.to_thread(main, ["copy-state", *args], dict(env))
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_copy_state_moves_an_installation_to_postgresql(
    postgres_url: str,
    start_bot: BotFactory,
    slack: FakeSlack,
    trellis: FakeTrellis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bot's state file copied by `copy-state` lets a bot on PostgreSQL continue its threads."""
    first = await start_bot()
    ts = await slack.post(CHANNEL, ALICE, f"<@{BOT_USER}> q1")
    await answered(slack, CHANNEL, ts, "You asked: q1")
    envelope = slack.acks[0].envelope_id
    await first.stop()
    password = urlsplit(postgres_url).password
    assert password

    # The URL from TRELLIS_SLACK_DB (the environment), as an operator would run it.
    state = Path(first.settings.db_path)
    env = {**clean_env(), "TRELLIS_SLACK_DB": postgres_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "trellis_slack",
        "copy-state",
        str(state),
        env=env,
        cwd=state.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = (text.decode() for text in await process.communicate())
    assert process.returncode == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"Copied {state} into {describe(postgres_url)} (rows already there kept):"
    copied = dict(line.split() for line in lines[1:-1])
    assert set(copied) == set(TABLES)
    assert (copied["questions"], copied["conversations"], copied["event_claims"]) == ("1", "1", "1")
    assert lines[-1] == f"{sum(map(int, copied.values()))} rows copied"
    assert password not in out

    # Again, the URL as an argument this time: nothing new.
    code, out, err = await copy_state([str(state), postgres_url], {}, capsys)
    assert code == 0, err
    assert out.splitlines()[-1] == "0 rows copied: nothing new"
    assert password not in out + err

    await start_bot(TRELLIS_SLACK_DB=postgres_url)
    again = await slack.redeliver(envelope, retry_attempt=2)
    await slack.wait_for_ack(again)  # already answered: the claim came across
    await slack.post(CHANNEL, ALICE, "follow-up on postgresql", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: follow-up on postgresql")
    q1, q2 = questions(trellis)
    assert q2["chat_id"] == q1["chat_id"]


async def test_copy_state_needs_a_postgresql_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a URL, and TRELLIS_SLACK_DB a file path, copy-state says what to give and exits 2."""
    code, _, err = await copy_state([str(tmp_path / "state.db")], {}, capsys)
    assert code == 2
    assert "give POSTGRES_URL, or set TRELLIS_SLACK_DB to a postgresql:// URL" in err
    code, _, err = await copy_state(
        [str(tmp_path / "state.db")], {"TRELLIS_SLACK_DB": str(tmp_path / "other.db")}, capsys
    )
    assert code == 2
    assert "TRELLIS_SLACK_DB must be a postgresql:// URL" in err


async def test_copy_state_of_a_missing_file_exits_1(
    postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state file that is not there is an error in words (exit 1), the database left untouched."""
    missing = tmp_path / "nothing-here.db"
    code, out, err = await copy_state([str(missing)], {"TRELLIS_SLACK_DB": postgres_url}, capsys)
    assert code == 1
    assert out == ""
    assert err.strip() == f"trellis-slack copy-state: there is no state file at {missing}"


async def test_copy_state_to_an_unreachable_database_hides_the_password(
    postgres_server: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database that cannot be reached (wrong port) exits 1, naming it with *** for the password."""
    state = tmp_path / "state.db"
    await (await SqliteStore.open(state)).close()
    url = f"postgresql://trellis:{postgres_server.password}@127.0.0.1:{free_port()}/trellis"
    code, out, err = await copy_state([str(state)], {"TRELLIS_SLACK_DB": url}, capsys)
    assert code == 1
    assert "trellis-slack copy-state: cannot open the database postgresql://trellis:***@" in err
    assert postgres_server.password not in out + err
