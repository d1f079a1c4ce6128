"""Benchmark: N concurrent conversations through the real bot, the local Slack and Trellis servers.

Run: ``python bench/bench_bridge.py [N ...] [--streaming native|update|fallback ...]`` (default
N = 10 100 1000, and all three ways of showing an answer). Prints one table row per way and N:

* ack p50/p99 — Socket Mode envelope sent by Slack → ack received (the fake Slack measures it);
* overhead p50/p99 — bridge overhead per event as the bot measures it: a Trellis frame received
  → the Slack call that shows it issued (final answers, errors, stops; the bot logs this summary
  when it stops). Throttled progress updates are delayed on purpose and are not counted;
* end to end p50/p99 — the same path measured from outside: the final ``message`` frame sent by
  the Trellis server → the final answer's ``chat.update`` arriving at the Slack server (both
  loopback hops and both servers' own scheduling included);
* first piece p50/p99 — the question posted → the first thing of the answer visible in Slack:
  the stream starting (``chat.startStream``) or the working message (``chat.postMessage``);
* first text p50/p99 — the question posted → the first streamed text visible in Slack: the first
  ``chat.appendStream`` / ``stopStream`` carrying Markdown, or the first ``chat.update`` showing
  the text streamed so far (Trellis sends the text as a few ``text_delta`` pieces);
* text before the final — the share of answers whose text showed while the answer was still
  coming, before the final answer (``stopStream`` and the final ``chat.update`` do not count);
* calls/answer — Slack Web API calls per answered question: every method the bot calls for it,
  refused calls included (start-up calls excluded); a second table splits them by method;
* peak RSS — of the bot process (``VmHWM``).

The ways (``--streaming``): ``native`` (``SLACK_STREAMING=native``, the default setting: a Slack
stream under Slack's status line), ``update`` (``SLACK_STREAMING=update``: the working message
edited with ``chat.update``) and ``fallback`` (``native`` in channels where Slack refuses streams,
``channel_type_not_supported``: the bot falls back to the edited message).

The bot runs as its own process (``python -m trellis_slack run``, production settings), the two
servers in this one, so the numbers are the bot's and the 2 cores are shared as in a deployment
next to its neighbours.

Everything runs on 127.0.0.1. Trellis answers at a realistic pace (statuses and text pieces tens of
milliseconds apart, with jitter), so the conversations overlap as they would in a busy workspace.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from trellis_slack.fakes.slack_model import ApiCall
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Question, Step

Mode = Literal["native", "update", "fallback"]
MODES: tuple[Mode, ...] = ("native", "update", "fallback")

CHANNELS = 20
USER = "U0ASKER"
BOT_USER = "U0BOT"
#: ``BENCH_PROFILE=file`` runs the bot under cProfile, writing its stats to that file.
PROFILE = (
    ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
)
STARTUP_METHODS = {"auth.test", "apps.connections.open"}
#: The answer's calls after its final ``chat.update`` (clearing Slack's status) have landed
#: once Slack has heard nothing from the bot for this long.
QUIET = 0.5
#: Every streamed piece of an answer starts with this (see `responder`).
ANSWER_PREFIX = "Answer to q"


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
    final = f"{ANSWER_PREFIX}{question.text[1:]}: 1,234 orders, up 5% on last month."
    pieces = [final[i : i + 12] for i in range(0, len(final), 12)]
    return [
        Step.processing("thinking", delay=rnd.uniform(0.5, 1.5)),
        Step.processing("analyzing", delay=rnd.uniform(1.0, 2.0)),
        Step.processing("processing", delay=rnd.uniform(1.0, 2.0)),
        *(Step.delta(piece, delay=rnd.uniform(0.05, 0.3)) for piece in pieces),
        Step.message(final, delay=rnd.uniform(0.05, 0.2)),
    ]


async def start_bot(
    slack: FakeSlack,
    trellis: FakeTrellis,
    tmp: Path,
    n: int,
    log_file: IO[str],
    *,
    mode: Mode | None = None,
) -> asyncio.subprocess.Process:
    """``python -m trellis_slack run`` with production settings, pointed at the two servers.

    ``mode`` sets ``SLACK_STREAMING`` (``fallback``: native); None leaves the bot's default.
    """
    env = {
        "SLACK_BOT_TOKEN": "xoxb-fake-bot-token",
        "SLACK_APP_TOKEN": "xapp-fake-app-token",
        "SLACK_API_URL": slack.api_url,
        "TRELLIS_TOKEN": trellis.make_token("bench"),
        "TRELLIS_WS_URL": trellis.ws_url,
        "TRELLIS_API_URL": trellis.api_url,
        "TRELLIS_SLACK_DB": str(tmp / "bench.db"),
        "TRELLIS_MAX_CONNECTIONS": str(n),
        # The bench measures the bridge, not Trellis's limits: n new threads at once would
        # otherwise wait for Trellis's 20 new chats a minute.
        "TRELLIS_CHATS_PER_MINUTE": "1000000",
        "LOG_LEVEL": "INFO",
    }
    if mode is not None:
        env["SLACK_STREAMING"] = "update" if mode == "update" else "native"
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *PROFILE,
        "-m",
        "trellis_slack",
        "run",
        env={**os.environ, **env},
        stderr=log_file,
    )


def has_markdown(call: ApiCall) -> bool:
    """A stream call that adds text to the message."""
    if call.args.get("markdown_text"):
        return True
    chunks = call.args.get("chunks")
    return isinstance(chunks, list) and any(
        isinstance(c, dict) and c.get("type") == "markdown_text" and c.get("text") for c in chunks
    )


@dataclass
class Seen:
    """For each question (channel, ts): when its first piece and its first text reached Slack."""

    piece: dict[tuple[str, str], float] = field(default_factory=dict)
    text: dict[tuple[str, str], float] = field(default_factory=dict)
    #: Questions whose text showed while the answer was still coming (not only with the final).
    early: set[tuple[str, str]] = field(default_factory=set)


def first_seen(slack: FakeSlack, calls: list[ApiCall], channels: list[str]) -> Seen:
    """When each question's answer first showed something, and first showed text."""
    # The bot's replies (streams and working messages alike) name their question as thread_ts.
    thread_of = {
        (channel, str(m["ts"])): str(m.get("thread_ts"))
        for channel in channels
        for m in slack.bot_messages(channel)
    }
    seen = Seen()
    for call in calls:
        if not call.ok:
            continue
        channel = str(call.args.get("channel"))
        if call.method in ("chat.startStream", "chat.postMessage"):
            seen.piece.setdefault((channel, str(call.args.get("thread_ts"))), call.at)
        elif (call.method in ("chat.appendStream", "chat.stopStream") and has_markdown(call)) or (
            call.method == "chat.update" and ANSWER_PREFIX in json.dumps(call.args)
        ):
            question = thread_of.get((channel, str(call.args.get("ts"))))
            if question is None or (channel, question) in seen.text:
                continue
            seen.text[(channel, question)] = call.at
            # The final answer's chat.update has the answer as its text; a preview has the step.
            final = call.method == "chat.stopStream" or (
                call.method == "chat.update"
                and str(call.args.get("text", "")).startswith(ANSWER_PREFIX)
            )
            if not final:
                seen.early.add((channel, question))
    return seen


async def quiet(slack: FakeSlack, seconds: float) -> None:
    """Wait until nothing has happened at the Slack server for ``seconds``."""
    while True:
        revision = slack.revision
        try:
            async with asyncio.timeout(seconds):
                await slack.changed_since(revision)
        except TimeoutError:
            return


async def ask(slack: FakeSlack, channels: list[str], n: int) -> dict[tuple[str, str], float]:
    """Post ``n`` questions round the channels; when each (channel, ts) was posted."""
    # Questions arrive over a few seconds (at most 200 a second) while each answer takes
    # 3-6 s, so at N = 1000 all conversations are in flight together.
    started = time.monotonic()
    window = max(1.0, n / 200)
    posted: dict[tuple[str, str], float] = {}
    for i in range(n):
        await asyncio.sleep(max(0.0, started + window * i / n - time.monotonic()))
        channel = channels[i % len(channels)]
        at = time.monotonic()
        ts = await slack.post(channel, USER, f"<@{BOT_USER}> q{i}")
        posted[(channel, ts)] = at
    return posted


async def finals(slack: FakeSlack, n: int, deadline: float | None = None) -> dict[str, float]:
    """Wait for ``n`` final answers; when each (by its text) reached Slack.

    ``deadline``: give up after that many seconds and return those seen (the lost ones are
    counted by the caller); None: a missing answer fails the run.
    """
    seen: dict[str, float] = {}
    scanned = 0

    def shown() -> dict[str, float]:
        # Called on every change of the fake's state: scan only the new calls.
        nonlocal scanned
        for call in slack.calls[scanned:]:
            if call.method in ("chat.update", "chat.postMessage"):
                text = str(call.args.get("text", ""))
                if text.startswith(ANSWER_PREFIX) and "1,234 orders" in text:
                    seen.setdefault(text, call.at)
        scanned = len(slack.calls)
        return seen

    if deadline is None:
        await slack.wait_for(lambda: len(shown()) >= n, timeout=60 + n * 0.2)
        return seen
    with contextlib.suppress(TimeoutError):
        await slack.wait_for(lambda: len(shown()) >= n, timeout=deadline)
    return seen


async def run(n: int, mode: Mode) -> dict[str, Any]:
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
            if mode == "fallback":
                slack.refuse_streams(channel)
        with tempfile.TemporaryDirectory() as tmp:
            log_file = (Path(tmp) / "bot.log").open("w")
            process = await start_bot(slack, trellis, Path(tmp), n, log_file, mode=mode)
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
                posted = await ask(slack, channels, n)

                seen = await finals(slack, n)
                elapsed = time.monotonic() - started
                ticker.cancel()
                # The calls after each final answer (Slack's status cleared) belong to it too.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(30):
                        await quiet(slack, QUIET)
                calls = [c for c in slack.calls[startup_calls:] if c.method not in STARTUP_METHODS]
                seen_first = first_seen(slack, calls, channels)
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
        to_piece = [(at - posted[q]) * 1000 for q, at in seen_first.piece.items() if q in posted]
        to_text = [(at - posted[q]) * 1000 for q, at in seen_first.text.items() if q in posted]
        by_method = collections.Counter(c.method + ("" if c.ok else " (refused)") for c in calls)
        return {
            "mode": mode,
            "n": n,
            "ack_p50": percentile(acks, 0.5),
            "ack_p99": percentile(acks, 0.99),
            "overhead_p50": inner[0],
            "overhead_p99": inner[1],
            "outside_p50": percentile(overheads, 0.5),
            "outside_p99": percentile(overheads, 0.99),
            "piece_p50": percentile(to_piece, 0.5),
            "piece_p99": percentile(to_piece, 0.99),
            "text_p50": percentile(to_text, 0.5),
            "text_p99": percentile(to_text, 0.99),
            "timed": (len(to_piece), len(to_text)),
            "early_pct": 100 * len(seen_first.early & posted.keys()) / n,
            "calls_per_answer": len(calls) / n,
            "by_method": {m: count / n for m, count in sorted(by_method.items())},
            "rss_mb": rss_mb,
            "seconds": elapsed,
            "peak_turns": trellis.peak_connections,
            "fake_lag_p99": percentile(lags, 0.99),
        }


def row(r: Mapping[str, Any]) -> str:
    return (
        f"| {r['mode']} | {r['n']} | {r['ack_p50']:.1f} | {r['ack_p99']:.1f} "
        f"| {r['overhead_p50']:.1f} | {r['overhead_p99']:.1f} "
        f"| {r['outside_p50']:.1f} | {r['outside_p99']:.1f} "
        f"| {r['piece_p50']:.0f} | {r['piece_p99']:.0f} | {r['text_p50']:.0f} | {r['text_p99']:.0f} "
        f"| {r['early_pct']:.0f} | {r['calls_per_answer']:.1f} | {r['rss_mb']:.0f} "
        f"| {r['peak_turns']:.0f} | {r['seconds']:.1f} | {r['fake_lag_p99']:.1f} |"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, help="conversations (default 10 100 1000)")
    parser.add_argument(
        "--streaming",
        action="append",
        choices=MODES,
        help="how answers show (repeatable; default: native, update and fallback)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sizes: list[int] = args.sizes or [10, 100, 1000]
    modes: list[Mode] = args.streaming or list(MODES)
    print(
        "| streaming | N | ack p50 ms | ack p99 ms | overhead p50 ms | overhead p99 ms "
        "| end to end p50 ms | end to end p99 ms | first piece p50 ms | first piece p99 ms "
        "| first text p50 ms | first text p99 ms | text before the final % "
        "| Slack calls / answer | peak RSS MB "
        "| peak concurrent turns | wall s | servers' loop lag p99 ms |"
    )
    print("|---|" + "---:|" * 17)
    results = []
    for mode in modes:
        for n in sizes:
            r = asyncio.run(run(n, mode))
            results.append(r)
            print(row(r), flush=True)
            if r["timed"] != (n, n):
                print(f"<!-- {mode} N={n}: timed pieces/texts {r['timed']} of {n} -->", flush=True)
    print("\nSlack calls per answer, by method:\n")
    print("| streaming | N | calls |")
    print("|---|---:|---|")
    for r in results:
        split = ", ".join(f"{m} {v:.2f}" for m, v in r["by_method"].items())
        print(f"| {r['mode']} | {r['n']} | {split} |")


if __name__ == "__main__":
    main(sys.argv[1:])
