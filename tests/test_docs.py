"""The admin's documentation and deployment files (README, Dockerfile, CHANGELOG) agree with the code."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import re
import sys
import tomllib
from collections.abc import AsyncIterator
from dataclasses import fields
from datetime import UTC, datetime

import pytest
from aiohttp import web

from tests.helpers import ROOT
from trellis_slack import cli
from trellis_slack.errors import ConfigError
from trellis_slack.settings import VARIABLES, Settings, inspect_static_token
from trellis_slack.slack import markdown as answer_format
from trellis_slack.slack.blocks import explain_trellis_message
from trellis_slack.viz import charts, tables

README = ROOT / "README.md"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CHANGELOG = ROOT / "CHANGELOG.md"
PYPROJECT = ROOT / "pyproject.toml"

#: A variable written as `NAME` or `NAME=value` in the README's text, or as NAME=value in its code.
_VARIABLE = re.compile(
    r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?:=[^`]*)?`|^\s*([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)=", re.M
)


def section(title: str) -> str:
    """A README section's text (up to the next ``## `` heading), with whitespace collapsed."""
    text = README.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match is not None, f"README has no section {title!r}"
    return " ".join(match.group(1).split())


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    lines = [
        line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            result.append((keyword.upper(), arguments.strip()))
    return result


def args_of(keyword: str) -> list[str]:
    return [arguments for instruction, arguments in instructions() if instruction == keyword]


def env_of_final_stage() -> dict[str, str]:
    """ENV settings of the last stage (``ENV A=1 B=2`` form)."""
    stages = [i for i, (keyword, _) in enumerate(instructions()) if keyword == "FROM"]
    env: dict[str, str] = {}
    for keyword, arguments in instructions()[stages[-1] :]:
        if keyword == "ENV":
            for pair in arguments.split():
                name, _, value = pair.partition("=")
                env[name] = value
    return env


# --- README -----------------------------------------------------------------------------------


def test_readme_has_the_admin_sections() -> None:
    """The README takes an admin from the manifest to the first answer and covers running it."""
    for title in ("Install the Slack app", "Run with Docker", "Troubleshooting", "Limits"):
        assert section(title)


def test_install_steps_cover_the_whole_way() -> None:
    """The install steps name the manifest, both tokens, the invitation and a first question."""
    steps = section("Install the Slack app")
    for needed in (
        "manifest.yml",
        "connections:write",
        "SLACK_APP_TOKEN",
        "Install to Workspace",
        "SLACK_BOT_TOKEN",
        "/invite @Trellis",
        "trellis-slack run",
        "@Trellis how many orders",
    ):
        assert needed in steps


def test_readme_names_only_variables_the_bot_reads() -> None:
    """Every environment variable the README mentions is one the settings read."""
    mentioned = {a or b for a, b in _VARIABLE.findall(README.read_text())}
    assert sorted(mentioned - VARIABLES.keys()) == []


def test_readme_names_only_real_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    """Every `trellis-slack <command>` in the README is a subcommand the CLI has."""
    command_words = r"trellis-slack ([a-z]+(?:-[a-z]+)*)\b"  # copy-state too
    named = set(re.findall(command_words, README.read_text())) - {"is", "the"}
    assert named
    for command in sorted(named):
        with pytest.raises(SystemExit) as exited:
            cli.main([command, "--help"], env={})
        assert exited.value.code == 0, f"`trellis-slack {command}` is not a subcommand"
    capsys.readouterr()


def test_docker_commands_match_the_dockerfile() -> None:
    """The README's docker commands build this image and mount the volume the image declares."""
    docker = section("Run with Docker")
    assert "docker build -t trellis-slack ." in docker
    assert (
        "docker run --env-file .env -v trellis-data:/data --stop-timeout 30 trellis-slack" in docker
    )
    assert args_of("VOLUME") == ["/data"]


def test_limits_quote_the_limits_in_the_code() -> None:
    """The numbers in the README's limits are the ones the code enforces."""
    limits = section("Limits")
    defaults = {f.name: f.default for f in fields(Settings)}
    for phrase in (
        f"{answer_format.MARKDOWN_LIMIT:,} characters of Markdown",
        f"{answer_format.MAX_BLOCKS} blocks",
        f"at most {answer_format.TEXT_LIMIT:,} characters",
        f"at most {tables.BLOCK_MAX_ROWS} rows",
        f"and {tables.BLOCK_MAX_COLUMNS} columns",
        f"first {tables.BLOCK_MAX_ROWS - 1} rows",
        f"at most {tables.BLOCK_MAX_TOTAL_CHARS:,} characters",
        f"cells cut at {tables.BLOCK_MAX_CELL_CHARS}",
        f"at most {charts.MAX_BARS} categories",
        f"at most {charts.MAX_SERIES} series",
        f"pie {charts.MAX_SLICES} slices",
        f"Trellis allows {defaults['max_connections']} open connections per token",
        f"(default {defaults['turn_timeout']:.0f})",
    ):
        assert phrase in limits
    kinds = re.search(r"charts itself \((.*?)\)", limits)
    assert kinds is not None
    assert len(re.split(r", | and ", kinds.group(1))) == len(charts.CHART_TYPES)


def test_troubleshooting_quotes_the_messages_the_admin_sees() -> None:
    """Troubleshooting quotes the bot's own start-up errors and covers the common mistakes."""
    trouble = section("Troubleshooting")
    for needed in ("not_in_channel", "missing_scope", "No datasource connected", "Socket Mode"):
        assert needed in trouble
    # The fix the thread suggests is the fix the README gives.
    assert "TRELLIS_INTEGRATION_ID" in explain_trellis_message("No datasource connected", None)
    assert "TRELLIS_INTEGRATION_ID" in trouble
    problem, _ = inspect_static_token(_expired_jwt(), datetime.now(UTC))
    assert problem is not None
    assert re.sub(r"at \d{4}-\d\d-\d\d \d\d:\d\d UTC", "at …", problem) in trouble
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping(
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-2", "TRELLIS_TOKEN": "x"}
        )
    app_token_problem = next(p for p in caught.value.problems if p.startswith("SLACK_APP_TOKEN"))
    assert app_token_problem in trouble


def _expired_jwt() -> str:
    import jwt  # noqa: PLC0415  (only this test makes tokens)

    return jwt.encode({"exp": 1_000_000_000}, "a-secret-of-at-least-32-bytes-length!", "HS256")


def test_quick_start_is_still_two_commands() -> None:
    """The quick start keeps its install-and-demo and its install-and-test commands, in a venv."""
    quick = section("Quick start")
    venv = "python3 -m venv .venv && . .venv/bin/activate && "
    assert f"{venv}pip install . && trellis-slack demo" in quick
    assert f'{venv}pip install -e ".[dev]" && python -m pytest' in quick
    assert "`trellis-slack run`" in quick
    assert "--env-file" in quick


# --- Dockerfile -------------------------------------------------------------------------------


def test_image_is_slim_python_and_installs_no_dev_extras() -> None:
    """The image starts from python:3.11-slim and installs the bot without its dev extras."""
    bases = [arguments.split()[0] for arguments in args_of("FROM")]
    assert bases
    assert all(base == "python:3.11-slim" for base in bases)
    installs = " ".join(args_of("RUN"))
    assert "pip install --no-cache-dir" in installs
    assert "[dev]" not in installs


def test_image_runs_the_bot_as_a_non_root_user() -> None:
    """The bot runs as an unprivileged user, set before the entry point."""
    users = args_of("USER")
    assert users
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    order = [keyword for keyword, _ in instructions()]
    assert max(i for i, k in enumerate(order) if k == "USER") < order.index("ENTRYPOINT")


def test_entrypoint_is_exec_form_so_sigterm_reaches_the_bot() -> None:
    """ENTRYPOINT and CMD are JSON arrays: the bot is PID 1 and gets `docker stop`'s SIGTERM."""
    (entrypoint,) = args_of("ENTRYPOINT")
    (command,) = args_of("CMD")
    assert json.loads(entrypoint) == ["trellis-slack"]
    assert json.loads(command) == ["run"]
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    assert scripts["trellis-slack"] == "trellis_slack.cli:main"


def test_state_lives_on_the_volume_owned_by_the_user() -> None:
    """The state file is on /data, which the user owns before the VOLUME line fixes its contents."""
    env = env_of_final_stage()
    assert env["TRELLIS_SLACK_DB"].startswith("/data/")
    order = instructions()
    chown = next(
        i for i, (k, a) in enumerate(order) if k == "RUN" and "chown" in a and "/data" in a
    )
    volume = next(i for i, (k, _) in enumerate(order) if k == "VOLUME")
    assert chown < volume


def test_image_sets_only_known_variables_and_a_writable_matplotlib_dir() -> None:
    """The image's variables are the bot's own (plus Python's and matplotlib's), and EXPOSE matches."""
    env = env_of_final_stage()
    own = {name for name in env if not name.startswith(("PYTHON", "PIP_", "MPL"))}
    assert sorted(own - VARIABLES.keys()) == []
    # /tmp is the one place in the image where any user may write.
    assert env["MPLCONFIGDIR"].startswith("/tmp/")  # noqa: S108
    assert args_of("EXPOSE") == [env["HEALTH_PORT"]]


@pytest.fixture
async def health_server() -> AsyncIterator[tuple[int, list[int]]]:
    """A local /healthz answering with the status at the end of the returned list."""
    statuses = [200]

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(status=statuses[-1], text="ok" if statuses[-1] == 200 else "down")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield port, statuses
    finally:
        await runner.cleanup()


async def _run_healthcheck(port: int) -> int:
    (healthcheck,) = args_of("HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + len("CMD") :].strip())
    assert command[0] == "python"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command[1:],
        env={"HEALTH_PORT": str(port)},
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(20):
        return await process.wait()


async def test_healthcheck_follows_healthz(health_server: tuple[int, list[int]]) -> None:
    """The image's HEALTHCHECK passes while /healthz on HEALTH_PORT says 200 and fails on 503."""
    port, statuses = health_server
    assert await _run_healthcheck(port) == 0
    statuses.append(503)
    assert await _run_healthcheck(port) != 0


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: the last pattern matching the path or one of its parents wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").rstrip("/")
        if glob.startswith("**/"):
            hit = any(fnmatch.fnmatch(c.split("/")[-1], glob[3:]) for c in candidates)
        else:
            hit = any(fnmatch.fnmatch(c, glob) for c in candidates)
        if hit:
            ignored = not negated
    return ignored


def test_build_context_holds_no_secrets_but_everything_copied() -> None:
    """`.env`, the state file and .git never reach the image; the files the Dockerfile copies do."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for secret in (
        ".env",
        "trellis-slack.db",
        ".git/config",
        ".venv/bin/python",
        "tests/conftest.py",
    ):
        assert _ignored(secret, patterns), secret
    copied = [
        source
        for arguments in args_of("COPY")
        if not arguments.startswith("--from")
        for source in arguments.split()[:-1]
    ]
    assert copied
    for source in [*copied, "trellis_slack/app.py"]:
        assert not _ignored(source.rstrip("/"), patterns), source


# --- CHANGELOG --------------------------------------------------------------------------------


def test_changelog_describes_the_current_version() -> None:
    """CHANGELOG.md follows Keep a Changelog and covers the version in pyproject.toml."""
    text = CHANGELOG.read_text()
    version = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    assert "keepachangelog.com" in text
    headings = re.findall(r"^## \[([^\]]+)\]", text, flags=re.M)
    assert headings
    assert headings[0] in ("Unreleased", version)
    assert version in text
    assert re.search(r"^### (Added|Changed|Fixed|Removed|Deprecated|Security)$", text, flags=re.M)
