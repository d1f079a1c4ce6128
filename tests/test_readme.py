"""The README documents the configuration contract exactly, and its quick start works as written."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

from tests.helpers import ROOT
from trellis_slack.settings import VARIABLES

README = ROOT / "README.md"
#: The quick start's two commands: the demo, and the tests.
DEMO = "python3 -m venv .venv && . .venv/bin/activate && pip install . && trellis-slack demo"
TESTS = (
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]" && python -m pytest'
)


def quick_start_commands() -> list[str]:
    """The shell blocks of the README's Quick start section, in order."""
    text = README.read_text()
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)]


def test_configuration_table_matches_the_settings() -> None:
    """Every variable the settings read is in the README table, and nothing else is."""
    rows = re.findall(r"^\| `([A-Z_]+)` \|", README.read_text(), flags=re.MULTILINE)
    assert rows == list(VARIABLES)


def test_quick_start_is_two_commands_in_a_virtual_environment() -> None:
    """The quick start shows one command to install and try the demo, one for the tests, each in a venv."""
    assert quick_start_commands() == [DEMO, TESTS]
    text = README.read_text()
    assert "sudo apt install python3-venv" in text  # Debian and Ubuntu ship venv separately
    assert "browser tests" in text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]


#: What a fresh clone does not have (a tree without git is copied without these).
_NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", "*.db"
)


def clone(destination: Path) -> None:
    """The repository's files as a fresh clone has them (tracked and new, nothing ignored)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):  # an unpacked archive: no git
        shutil.copytree(ROOT, destination, ignore=_NOT_IN_A_CLONE, dirs_exist_ok=True)
        return
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def outside_any_venv() -> dict[str, str]:
    """This environment as a new terminal has it: no virtual environment active."""
    env = dict(os.environ)
    active = env.pop("VIRTUAL_ENV", None)
    if active:
        env["PATH"] = os.pathsep.join(
            part for part in env.get("PATH", "").split(os.pathsep) if not part.startswith(active)
        )
    env.pop("PYTHONPATH", None)
    return env


async def test_the_quick_start_demo_command_works_in_a_fresh_clone(tmp_path: Path) -> None:
    """The README's demo command, run as written in a fresh clone, installs and serves the demo page."""
    install, _, run = DEMO.rpartition(" && ")
    assert run == "trellis-slack demo"
    clone(tmp_path)
    env = outside_any_venv()
    installed = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        install,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(installed.communicate(), timeout=540)
    assert installed.returncode == 0, output.decode()[-3000:]
    # The command's last part in the venv it made; --port 0 and --no-browser keep it beside others.
    demo = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        f". .venv/bin/activate && exec {run} --port 0 --no-browser",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert demo.stdout is not None
    try:
        async with asyncio.timeout(60):
            while True:
                line = (await demo.stdout.readline()).decode()
                assert line, "the demo stopped before serving its page"
                if found := re.search(r"Open (http://127\.0\.0\.1:\d+/)", line):
                    break
        page = await asyncio.to_thread(urllib.request.urlopen, found[1], timeout=10)
        assert b"<html" in page.read().lower()
    finally:
        if demo.returncode is None:
            demo.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(demo.communicate(), timeout=30)
    assert demo.returncode == 0, err.decode()
