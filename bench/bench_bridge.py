"""Benchmark: N concurrent conversations through the real bot, the local Slack and Trellis servers.

Run: ``python bench/bench_bridge.py [N ...]`` (default 10 100 1000). Prints one table row per N:

* ack p50/p99 — Socket Mode envelope sent by Slack → ack received (the fake Slack measures it);
* overhead p50/p99 — bridge overhead per event as the bot measures it: a Trellis frame received
  → the Slack call that shows it issued (final answers, errors, stops; the bot logs this summary
  when it stops). Throttled progress updates are delayed on purpose and are not counted;
* end to end p50/p99 — the same path measured from outside: the final ``message`` frame sent by
  the Trellis server → the Slack call arriving at the Slack server (both loopback hops and both
  servers' own scheduling included);
* calls/answer — Slack Web API calls per answered question (start-up calls excluded);
* peak RSS — of the bot process (``VmHWM``).

The bot runs as its own process (``python -m trellis_slack run``, production settings), the two
servers in this one, so the numbers are the bot's and the 2 cores are shared as in a deployment
next to its neighbours.

Everything runs on 127.0.0.1. Trellis answers at a realistic pace (statuses and text pieces tens of
milliseconds apart, with jitter), so the conversations overlap as they would in a busy workspace.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Question, Step

CHANNELS = 20
USER = "U0ASKER"
BOT_USER = "U0BOT"
#: ``BENCH_PROFILE=file`` runs the bot under cProfile, writing its stats to that file.
PROFILE = (
    ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
)
STARTUP_METHODS = {"auth.test", "apps.connections.open"}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def responder(question: Question) -> list[Step]:
    """A text-only answer at Trellis's pace: a few seconds of statuses, text pieces, the message."""
    rnd = random.Random(question.text)
    final = f"Answer to {question.text}: 1,234 orders, up 5% on last month."
    pieces = [final[i : i + 12] for i in range(0, len(final), 12)]
    return [
        Step.processing("thinking", delay=rnd.uniform(0.5, 1.5)),
        Step.processing("analyzing", delay=rnd.uniform(1.0, 2.0)),
        Step.processing("processing", delay=rnd.uniform(1.0, 2.0)),
        *(Step.delta(piece, delay=rnd.uniform(0.05, 0.3)) for piece in pieces),
        Step.message(final, delay=rnd.uniform(0.05, 0.2)),
    ]


async def start_bot(
    slack: FakeSlack, trellis: FakeTrellis, tmp: Path, n: int, log_file: IO[str]
) -> asyncio.subprocess.Process:
    """``python -m trellis_slack run`` with production settings, pointed at the two servers."""
    env = {
        "SLACK_BOT_TOKEN": "xoxb-fake-bot-token",
        "SLACK_APP_TOKEN": "xapp-fake-app-token",
        "SLACK_API_URL": slack.api_url,
        "TRELLIS_TOKEN": trellis.make_token("bench"),
        "TRELLIS_WS_URL": trellis.ws_url,
        "TRELLIS_API_URL": trellis.api_url,
        "TRELLIS_SLACK_DB": str(tmp / "bench.db"),
        "TRELLIS_MAX_CONNECTIONS": str(n),
        "LOG_LEVEL": "INFO",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *PROFILE,
        "-m",
        "trellis_slack",
        "run",
        env={**os.environ, **env},
        stderr=log_file,
    )


async def run(n: int) -> dict[str, float]:
    sent_at: dict[str, float] = {}

    def on_step(event: str, data: Mapping[str, Any]) -> None:
        if event == "message":
            sent_at[str(data.get("content"))] = time.monotonic()

    async with (
        FakeSlack(bot_user_id=BOT_USER) as slack,
        FakeTrellis(
            version="current", max_sockets_per_token=n, max_open_chats=2 * n, responder=responder
        ) as trellis,
    ):
        trellis.on_step = on_step
        slack.add_user(USER, "asker", email="asker@example.com")
        channels = [f"C{i:04d}" for i in range(CHANNELS)]
        for channel in channels:
            slack.add_channel(channel, channel.lower(), members=[USER, BOT_USER])
        with tempfile.TemporaryDirectory() as tmp:
            log_file = (Path(tmp) / "bot.log").open("w")
            process = await start_bot(slack, trellis, Path(tmp), n, log_file)
            try:
                await slack.wait_for(lambda: slack.socket_connections > 0, timeout=10)
                startup_calls = len(slack.calls)
                started = time.monotonic()
                lags: list[float] = []

                async def tick() -> None:
                    while True:
                        before = time.monotonic()
                        await asyncio.sleep(0.005)
                        lags.append((time.monotonic() - before - 0.005) * 1000)

                ticker = asyncio.create_task(tick())
                # Questions arrive over a few seconds (at most 200 a second) while each answer
                # takes 3-6 s, so at N = 1000 all conversations are in flight together.
                window = max(1.0, n / 200)
                for i in range(n):
                    await asyncio.sleep(max(0.0, started + window * i / n - time.monotonic()))
                    await slack.post(channels[i % CHANNELS], USER, f"<@{BOT_USER}> q{i}")

                seen: dict[str, float] = {}
                scanned = 0

                def shown() -> dict[str, float]:
                    # Called on every change of the fake's state: scan only the new calls.
                    nonlocal scanned
                    for call in slack.calls[scanned:]:
                        if call.method in ("chat.update", "chat.postMessage"):
                            text = str(call.args.get("text", ""))
                            if text.startswith("Answer to q") and "1,234 orders" in text:
                                seen.setdefault(text, call.at)
                    scanned = len(slack.calls)
                    return seen

                await slack.wait_for(lambda: len(shown()) >= n, timeout=60 + n * 0.2)
                elapsed = time.monotonic() - started
                ticker.cancel()
                rss_mb = peak_rss_mb(process.pid)
            finally:
                process.send_signal(signal.SIGTERM)
                await process.wait()
                log_file.close()
                log_text = (Path(tmp) / "bot.log").read_text(errors="replace")
        # The bot measures its own overhead (frame received -> Slack call issued) and logs a
        # summary when it stops.
        summary = re.search(r"bridge overhead p50 ([\d.]+) ms, p99 ([\d.]+) ms", log_text)
        inner = (float(summary[1]), float(summary[2])) if summary else (float("nan"),) * 2
        overheads = [(at - sent_at[text]) * 1000 for text, at in seen.items() if text in sent_at]
        acks = [a.latency * 1000 for a in slack.acks]
        calls = [c for c in slack.calls[startup_calls:] if c.method not in STARTUP_METHODS]
        return {
            "n": n,
            "ack_p50": percentile(acks, 0.5),
            "ack_p99": percentile(acks, 0.99),
            "overhead_p50": inner[0],
            "overhead_p99": inner[1],
            "outside_p50": percentile(overheads, 0.5),
            "outside_p99": percentile(overheads, 0.99),
            "calls_per_answer": len(calls) / n,
            "rss_mb": rss_mb,
            "seconds": elapsed,
            "peak_turns": trellis.peak_connections,
            "fake_lag_p99": percentile(lags, 0.99),
        }


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.WARNING)
    sizes = [int(a) for a in argv] or [10, 100, 1000]
    print(
        "| N | ack p50 ms | ack p99 ms | overhead p50 ms | overhead p99 ms "
        "| end to end p50 ms | end to end p99 ms | Slack calls / answer | peak RSS MB "
        "| peak concurrent turns | wall s | servers' loop lag p99 ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        r = asyncio.run(run(n))
        print(
            f"| {n} | {r['ack_p50']:.1f} | {r['ack_p99']:.1f} | {r['overhead_p50']:.1f} "
            f"| {r['overhead_p99']:.1f} | {r['outside_p50']:.1f} | {r['outside_p99']:.1f} "
            f"| {r['calls_per_answer']:.1f} | {r['rss_mb']:.0f} "
            f"| {r['peak_turns']:.0f} | {r['seconds']:.1f} | {r['fake_lag_p99']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
