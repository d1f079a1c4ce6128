"""Benchmark: the bot's idle memory — its own process plus the forkserver, resource tracker and chart workers.

Run: ``python -m bench.bench_memory`` (``--idle-exit 20`` by default; ``--warm-up`` /
``--no-warm-up`` to choose ``Bot(warm_up_charts=...)``, else the bot's own default). The bot runs
as its own process through the production entry point (``trellis_slack.cli.main(["run"])``), the
local Slack and Trellis servers in this one, all on 127.0.0.1. Only two keyword defaults are
changed in the bot's process, so the benchmark does not wait five minutes: the chart workers'
idle delay (``Renderer(idle_exit=...)``) and, when asked, ``Bot(warm_up_charts=...)``.

For each moment the bot sits idle at — after start-up, after one chart, after its workers' idle
exit, after the next chart — prints the resident set (``VmRSS``) of each process and the total
RSS and PSS (``smaps_rollup``: shared pages split between the processes that share them), and how
long the chart took from the question to its PNG in the thread.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.bench_bridge import BOT_USER, USER
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Question, Step

CHANNEL = "C0MEMORY"
#: Seconds the bot is left alone before each measurement (whatever it does at start-up settles).
SETTLE = 3.0
#: What runs in the bot's process: the production entry point, two keyword defaults changed.
CHILD = """
import sys
from trellis_slack.bot.app import Bot
from trellis_slack.cli import main
from trellis_slack.viz.pool import Renderer

idle_exit, warm_up = float(sys.argv[1]), sys.argv[2]
Renderer.__init__.__kwdefaults__["idle_exit"] = idle_exit
if warm_up != "default":
    Bot.__init__.__kwdefaults__["warm_up_charts"] = warm_up == "yes"
sys.exit(main(["run"]))
"""


@dataclass(frozen=True, slots=True)
class Sample:
    """One process of the bot's tree: its role, RSS and PSS in MB."""

    role: str
    rss: float
    pss: float


def responder(question: Question) -> list[Step]:
    """A chart of 100 points and a line of text."""
    return [
        Step.chart(
            "bar",
            [(f"Day {d}", (d * 37) % 101) for d in range(100)],
            title=f"Chart for {question.text}",
            x_axis_label="Day",
            y_axis_label="Orders",
        ),
        Step.message(f"One chart for {question.text}."),
    ]


def _kb(path: Path, field: str) -> float:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def _role(pid: int, parent_role: str) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    if "resource_tracker" in command:
        return "resource tracker"
    if "forkserver" in command:
        return "chart worker" if parent_role == "forkserver" else "forkserver"
    if "spawn_main" in command:
        return "chart worker"
    return "other"


def processes(root: int) -> list[Sample]:
    """The bot's process and every process under it, with their roles."""
    samples: list[Sample] = []

    def visit(pid: int, role: str) -> None:
        samples.append(
            Sample(
                role,
                _kb(Path(f"/proc/{pid}/status"), "VmRSS:"),
                _kb(Path(f"/proc/{pid}/smaps_rollup"), "Pss:"),
            )
        )
        for child in _children(pid):
            visit(child, _role(child, role))

    visit(root, "main")
    return samples


def show(state: str, samples: list[Sample], chart_s: float | None) -> None:
    """Prints one table row: the RSS of each role, the totals and the chart's time."""

    def rss(role: str) -> str:
        values = [s.rss for s in samples if s.role == role]
        return f"{sum(values):.0f}" if values else "-"

    workers = [s for s in samples if s.role == "chart worker"]
    each = "-" if not workers else " + ".join(f"{s.rss:.0f}" for s in workers)
    total_rss = sum(s.rss for s in samples)
    total_pss = sum(s.pss for s in samples)
    chart = "-" if chart_s is None else f"{chart_s:.2f}"
    print(
        f"| {state} | {rss('main')} | {rss('forkserver')} | {rss('resource tracker')} "
        f"| {len(workers)}: {each} | {total_rss:.0f} | {total_pss:.0f} | {chart} |",
        flush=True,
    )


async def wait_until(check: Callable[[], bool], within: float, what: str) -> None:
    """Polls ``check()`` every 50 ms until it is true."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


async def ask_for_chart(slack: FakeSlack, text: str) -> float:
    """Seconds from the question to its PNG in the thread."""
    before = len([f for f in slack.files.values() if f.channel])
    started = time.monotonic()
    await slack.post(CHANNEL, USER, f"<@{BOT_USER}> {text}")
    await slack.wait_for(
        lambda: len([f for f in slack.files.values() if f.channel]) > before, timeout=60
    )
    return time.monotonic() - started


async def run(idle_exit: float, warm_up: str) -> None:
    """Prints the bot's memory at each idle moment, a table row each."""
    async with (
        FakeSlack(bot_user_id=BOT_USER) as slack,
        FakeTrellis(version="current", responder=responder) as trellis,
    ):
        slack.add_user(USER, "asker", email="asker@example.com")
        slack.add_channel(CHANNEL, "memory", members=[USER, BOT_USER])
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ,
                "SLACK_BOT_TOKEN": "xoxb-fake-bot-token",
                "SLACK_APP_TOKEN": "xapp-fake-app-token",
                "SLACK_API_URL": slack.api_url,
                "TRELLIS_TOKEN": trellis.make_token("bench"),
                "TRELLIS_WS_URL": trellis.ws_url,
                "TRELLIS_API_URL": trellis.api_url,
                "TRELLIS_SLACK_DB": str(Path(tmp) / "bench.db"),
                "LOG_LEVEL": "INFO",
            }
            log_file = (Path(tmp) / "bot.log").open("w")
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CHILD, str(idle_exit), warm_up, env=env, stderr=log_file
            )
            pid = process.pid

            def workers() -> int:
                return sum(s.role == "chart worker" for s in processes(pid))

            try:
                await slack.wait_for(lambda: slack.socket_connections > 0, timeout=30)
                await asyncio.sleep(SETTLE)
                show("idle after start-up", processes(pid), None)
                chart_s = await ask_for_chart(slack, "first")
                await asyncio.sleep(SETTLE)
                show("idle after one chart", processes(pid), chart_s)
                await wait_until(lambda: workers() == 0, idle_exit + 30, "no idle exit")
                await asyncio.sleep(SETTLE)
                show(f"after the idle exit ({idle_exit:g} s)", processes(pid), None)
                chart_s = await ask_for_chart(slack, "second")
                await asyncio.sleep(SETTLE)
                show("idle after the next chart", processes(pid), chart_s)
            except BaseException:
                print((Path(tmp) / "bot.log").read_text()[-3000:], file=sys.stderr)
                raise
            finally:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                await process.wait()
                log_file.close()


def main() -> None:
    """Runs the bot once and prints a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--idle-exit", type=float, default=20.0, help="chart workers' idle delay, s"
    )
    warm = parser.add_mutually_exclusive_group()
    warm.add_argument("--warm-up", dest="warm_up", action="store_const", const="yes")
    warm.add_argument("--no-warm-up", dest="warm_up", action="store_const", const="no")
    args = parser.parse_args()
    from trellis_slack.bot.app import Bot  # noqa: PLC0415 - only to report its default

    default = inspect.signature(Bot).parameters["warm_up_charts"].default
    warm_up = args.warm_up or "default"
    print(f"warm_up_charts: {warm_up if warm_up != 'default' else f'default ({default})'}")
    print()
    print(
        "| bot idle | main MB | forkserver MB | resource tracker MB | chart workers: MB each "
        "| total RSS MB | total PSS MB | question → chart s |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    asyncio.run(run(args.idle_exit, warm_up))


if __name__ == "__main__":
    main()
