"""Benchmark: Socket Mode ack latency while the bot renders a burst of 20 charts.

Run: ``python -m bench.bench_chart_burst``. The bot runs as its own process (production
settings); one question is answered with 20 charts of 100 points while other users keep asking
(one question every 20 ms). Twice: the first burst comes right after start-up (the chart workers
start with its first chart, unless the bot warms them up at start), the second while the workers
run. Prints ack latency p50/p99/max for the envelopes sent during each burst, and how long the
burst took to reach Slack.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_bridge import BOT_USER, USER, percentile, start_bot
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Question, Step

CHANNEL = "C0BURST"
KINDS = ("bar", "line", "area", "pie", "donut", "bar_horizontal", "stacked_bar")


def responder(question: Question) -> list[Step]:
    if question.text != "burst":
        return [Step.message(f"quick answer to {question.text}")]
    charts = [
        Step.chart(
            KINDS[i % len(KINDS)],
            [(f"Day {d}", (d * 37 + i) % 101) for d in range(100)],
            title=f"Chart {i}",
            x_axis_label="Day",
            y_axis_label="Orders",
        )
        for i in range(20)
    ]
    return [*charts, Step.message("Twenty charts.")]


async def main() -> None:
    async with (
        FakeSlack(bot_user_id=BOT_USER) as slack,
        FakeTrellis(version="current", responder=responder, max_sockets_per_token=100) as trellis,
    ):
        slack.add_user(USER, "asker", email="asker@example.com")
        slack.add_channel(CHANNEL, "burst", members=[USER, BOT_USER])
        with tempfile.TemporaryDirectory() as tmp:
            log_file = (Path(tmp) / "bot.log").open("w")
            process = await start_bot(slack, trellis, Path(tmp), 20, log_file)
            try:
                await slack.wait_for(lambda: slack.socket_connections > 0, timeout=10)
                # Let start-up settle (a warm-up, if the bot does one, runs now), as in production.
                await asyncio.sleep(2)
                rows = [
                    ("first, after start-up", *await burst(slack)),
                    ("second, workers running", *await burst(slack)),
                ]
            finally:
                process.terminate()
                await process.wait()
                log_file.close()
    print(
        "| burst | charts | questions asked meanwhile | ack p50 ms | ack p99 ms | ack max ms "
        "| burst s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, asked, acks, seconds in rows:
        print(
            f"| {name} | 20 | {asked} | {percentile(acks, 0.5):.1f} | {percentile(acks, 0.99):.1f} "
            f"| {max(acks):.1f} | {seconds:.1f} |"
        )


async def burst(slack: FakeSlack) -> tuple[int, list[float], float]:
    """One question answered with 20 charts while others keep asking: (asked, acks ms, seconds)."""
    shown = len(slack.files)  # shared in the thread (edited path) or shown inside answers (native)
    first_ack = len(slack.acks)
    started = time.monotonic()
    await slack.post(CHANNEL, USER, f"<@{BOT_USER}> burst")
    i = 0
    while len(slack.files) < shown + 20:
        await slack.post(CHANNEL, USER, f"<@{BOT_USER}> ping {i}")
        i += 1
        await asyncio.sleep(0.02)
        if time.monotonic() - started > 120:
            raise TimeoutError("the charts did not all arrive")
    seconds = time.monotonic() - started
    return i, [a.latency * 1000 for a in slack.acks[first_ack:]], seconds


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
