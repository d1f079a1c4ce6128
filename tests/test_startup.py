"""What an admin sees when the bot starts: no library noise, no payloads at DEBUG, no stray files."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ALICE, BOT_USER, CHANNEL, BotFactory, answered, bot_env
from trellis_slack import logs
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis
from trellis_slack.settings import VARIABLES

#: The verification token the fake Slack puts in every envelope, as Slack does.
VERIFICATION_TOKEN = "fake-verification-token"


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """The root logger configured as `run` does with LOG_LEVEL=DEBUG, writing into a buffer."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    logs.configure("DEBUG", fmt="json")
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


async def test_debug_logs_no_payload_and_no_library_debug_lines(
    slack: FakeSlack, start_bot: BotFactory, debug_log: io.StringIO
) -> None:
    """At LOG_LEVEL=DEBUG the libraries stay at INFO: no envelope, no user text, no token field."""
    await start_bot()
    question = "which zebra-striped region sold most?"
    ts = await slack.post(CHANNEL, ALICE, f"<@{BOT_USER}> {question}")
    await answered(slack, CHANNEL, ts, "You asked:")
    text = debug_log.getvalue()
    assert '"level": "DEBUG", "logger": "trellis_slack.' in text  # our own DEBUG lines do show
    assert "zebra-striped" not in text
    assert VERIFICATION_TOKEN not in text
    for line in text.splitlines():
        if '"level": "DEBUG"' in line:
            assert '"logger": "trellis_slack.' in line, line


def test_library_info_lines_stay_out_at_info() -> None:
    """At LOG_LEVEL=INFO a library's INFO line (matplotlib's font cache, slack_sdk's retries) is dropped."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        logs.configure("INFO")
        stream = io.StringIO()
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        logging.getLogger("matplotlib.font_manager").info("generated new fontManager")
        logging.getLogger("slack_sdk.web.async_internal_utils").info("A retry handler found")
        logging.getLogger("slack_sdk.web").warning("a library warning")
        logging.getLogger("trellis_slack.bot.app").info("connected")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    lines = stream.getvalue().splitlines()
    assert [line.rsplit("] ", 1)[1] for line in lines] == ["a library warning", "connected"]


def test_a_token_field_is_scrubbed() -> None:
    """A payload's `"token": "…"` field is scrubbed, in JSON and in a dict's repr."""
    assert logs.scrub('{"token": "abc123", "x": 1}') == '{"token": "[redacted]", "x": 1}'
    assert logs.scrub('{"token":"abc123"}') == '{"token":"[redacted]"}'
    assert logs.scrub("{'token': 'abc123'}") == "{'token': '[redacted]'}"


def process_env(tmp_path: Path) -> dict[str, str]:
    """This process's environment without the bot's variables, and an empty matplotlib cache.

    With an empty cache matplotlib builds one and would announce it ("generated new fontManager").
    """
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env["MPLCONFIGDIR"] = str(tmp_path / "mpl")
    return env


def run_env(slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The bot's variables for the fakes, with a Trellis token that expires in a month."""
    token = trellis.make_token("member-shared", ttl=30 * 24 * 3600.0)
    return bot_env(slack, trellis, tmp_path / "state.db", TRELLIS_TOKEN=token, **extra)


async def start_run(tmp_path: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    """`python -m trellis_slack run` in ``tmp_path``, its output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "trellis_slack",
        "run",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_a_rejected_token_leaves_no_state_file_and_no_summary(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path
) -> None:
    """Slack refusing the bot token exits 2 with the fix, before any state file or metrics line."""
    env = {**process_env(tmp_path), **run_env(slack, trellis, tmp_path, SLACK_BOT_TOKEN="xoxb-no")}
    env.pop("TRELLIS_SLACK_DB")  # the default, ./trellis-slack.db
    process = await start_run(tmp_path, env)
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    assert out == b""
    assert err.decode().splitlines() == [
        "trellis-slack: cannot start, the configuration has problems:",
        "  - Slack rejected SLACK_BOT_TOKEN (invalid_auth): reinstall the app and copy its Bot "
        "User OAuth Token (xoxb-…)",
    ]
    assert not (tmp_path / "trellis-slack.db").exists()


async def test_run_prints_only_the_lines_that_matter(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path
) -> None:
    """`trellis-slack run` as a process: the .env note, connected, shutting down, stopped; nothing else."""
    variables = run_env(slack, trellis, tmp_path)
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in variables.items()))
    process = await start_run(tmp_path, process_env(tmp_path))
    assert process.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not lines or "waiting for questions" not in lines[-1]:
                line = (await process.stderr.readline()).decode()
                assert line, f"the bot stopped early: {lines}"
                lines.append(line.rstrip("\n"))
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    out, rest = await asyncio.wait_for(process.communicate(), timeout=30)
    lines += rest.decode().splitlines()
    assert process.returncode == 0
    assert out == b""
    assert all(line.split()[3].startswith("trellis_slack.") for line in lines), lines
    # Besides the state store's own lines (where it is, its schema), only these.
    messages = [
        line.rsplit("] ", 1)[-1]
        for line in lines
        if not line.split()[3].startswith("trellis_slack.store.")
    ]
    assert messages == [
        f"read {len(variables)} variables from ./.env",
        messages[1],
        "shutting down",
        "stopped",
    ], lines
    assert messages[1].startswith("connected to Slack as ")
    for value in variables.values():
        if "token" in value.lower() or value.startswith(("xoxb-", "xapp-", "eyJ")):
            assert value not in "\n".join(lines)
