"""Benchmark: N conversations through 1 replica on SQLite, 1 on PostgreSQL and 3 on PostgreSQL.

Run: ``python -m bench.bench_replicas [N ...] [--setup sqlite-1|postgres-1|postgres-3 ...]
[--identity user|shared] [--users U] [--sockets S]`` (default N = 1000, all three setups,
``--identity user`` with 100 users). Prints one table row per setup and N:

* ack p50/p99 — Socket Mode envelope written by Slack → its ack (the fake Slack measures it);
  a question is acked only once the store has recorded it, so this includes the store's write;
* overhead p50/p99 — a Trellis frame received → the Slack call showing it, as each bot process
  measures it (logged when it stops); with several replicas, the worst replica's;
* end to end p50/p99 — the final ``message`` frame sent by Trellis → the final answer arriving
  at Slack, measured from outside over the whole fleet;
* answer p50/p99/max — the question posted → its final answer shown in Slack;
* Slack calls / answer — every Web API call after start-up per question;
* duplicates — extra answers: answer messages beyond one in a question's thread, plus Trellis
  turns beyond one for a question (must be 0);
* lost — questions without an answer in their thread at the end (must be 0);
* sockets / token and / member — the most Trellis sockets open at once with one token and for
  one Trellis member (tokens minted afresh for one person are one member), and sockets the
  fake Trellis refused for its cap (must be ≤ 3 and 0 unless ``--sockets`` raises the cap);
* spread — the share of Slack's envelopes each replica's Socket Mode connection got;
* redelivered — envelopes Slack wrote again because the first was not acked within 3 s;
* load — the machine's 1-minute load average at the start and the end of the run.

Every bot process is ``python -m trellis_slack run`` with production settings, on its own Socket
Mode connection; the local Slack (which spreads envelopes over the connections at random,
redelivering one not acked within 3 s to another, as Slack does) and the local Trellis run in
this process. PostgreSQL is a throw-away cluster (``tests.pg.PostgresServer``: Debian's binaries,
a temporary directory, removed afterwards), a fresh database per run. Each mention arrives as
Slack sends it, twice (``app_mention`` and ``message``), usually on two different replicas.

Identity: ``user`` (default) sets ``TRELLIS_API_KEY``: each Slack user gets their own Trellis
token, ``--users`` people ask the N questions in turn, and every Trellis limit is the real one
(3 sockets per token, 3 messages per socket per 10 s and 10 per minute, 20 new chats a minute).
``shared`` sets one ``TRELLIS_TOKEN`` for everybody: the whole fleet shares 3 sockets and 20 new
chats a minute, so N questions take at least N / 20 minutes (answers queue; that is the point).
``--sockets S`` raises the fake's and the bot's socket cap to S and lifts the chat rate, as
``bench_bridge`` does, to measure the bridge rather than Trellis's limits (label such rows).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import psycopg

from bench.bench_bridge import (
    ANSWER_PREFIX,
    QUIET,
    STARTUP_METHODS,
    finals,
    peak_rss_mb,
    percentile,
    quiet,
)
from bench.bench_bridge import responder as paced_answer
from tests.pg import PostgresServer, find_postgres
from trellis_slack.fakes.slack_model import ApiCall
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Question, Step

Identity = Literal["user", "shared"]
CHANNELS = 20
BOT_USER = "U0BOT"
API_KEY = "bench-api-key"
#: Slack redelivers an event it has no ack for after about 3 s.
REDELIVER_AFTER = 3.0


@dataclass(frozen=True, slots=True)
class Setup:
    """Where the state is kept and how many bot processes share it."""

    name: str
    backend: Literal["sqlite", "postgres"]
    replicas: int


SETUPS = {
    s.name: s
    for s in (
        Setup("sqlite-1", "sqlite", 1),
        Setup("postgres-1", "postgres", 1),
        Setup("postgres-3", "postgres", 3),
    )
}


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL cluster in a temporary directory (as ``tests.pg`` starts one)."""
    bin_dir = find_postgres()
    if bin_dir is None:
        sys.exit("PostgreSQL's server binaries are missing: apt-get install postgresql")
    run_as = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    with socket_port() as port:
        server = PostgresServer(bin_dir, root, port, secrets.token_urlsafe(12), run_as)
    try:
        if run_as is not None:
            entry = pwd.getpwnam(run_as)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(RuntimeError):
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def socket_port() -> Iterator[int]:
    """A free TCP port of 127.0.0.1 (released before it is used, as tests.pg does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port


@contextlib.contextmanager
def fresh_database(server: PostgresServer) -> Iterator[str]:
    """An empty database on ``server`` for one run; dropped afterwards."""
    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(server.url(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.url(name)
    finally:
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Counting:
    """The paced responder of ``bench_bridge``, counting Trellis turns per question."""

    turns: collections.Counter[str]

    def __call__(self, question: Question) -> list[Step]:
        self.turns[question.text] += 1
        return paced_answer(question)


@dataclass
class SocketPeaks:
    """The most Trellis sockets open at once per token and per member (token subject)."""

    per_token: int = 0
    per_member: int = 0

    def look(self, trellis: FakeTrellis) -> bool:
        """Called on every change of the fake Trellis; never done (a recorder)."""
        conns = trellis._sockets.conns.values()  # the fake's own record of open sockets
        tokens = collections.Counter(c.token for c in conns if c.token is not None)
        members = collections.Counter(c.sub for c in conns if c.sub is not None)
        self.per_token = max(self.per_token, *tokens.values(), 0)
        self.per_member = max(self.per_member, *members.values(), 0)
        return False


async def start_replica(
    slack: FakeSlack,
    trellis: FakeTrellis,
    db: str,
    log_file: IO[str],
    *,
    identity: Identity,
    sockets: int | None,
) -> asyncio.subprocess.Process:
    """One bot process (``python -m trellis_slack run``), production settings, on ``db``."""
    env = {
        "SLACK_BOT_TOKEN": "xoxb-fake-bot-token",
        "SLACK_APP_TOKEN": "xapp-fake-app-token",
        "SLACK_API_URL": slack.api_url,
        "TRELLIS_WS_URL": trellis.ws_url,
        "TRELLIS_API_URL": trellis.api_url,
        "TRELLIS_SLACK_DB": db,
        "LOG_LEVEL": "INFO",
    }
    if identity == "user":
        env["TRELLIS_API_KEY"] = API_KEY
    else:
        env["TRELLIS_TOKEN"] = trellis.make_token("bench")
    if sockets is not None:
        env["TRELLIS_MAX_CONNECTIONS"] = str(sockets)
        env["TRELLIS_CHATS_PER_MINUTE"] = "1000000"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TRELLIS_", "SLACK_"))}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "trellis_slack", "run", env={**clean, **env}, stderr=log_file
    )


def users_of(count: int) -> list[str]:
    return [f"U{k:05d}" for k in range(count)]


async def ask(slack: FakeSlack, n: int, users: list[str]) -> dict[int, tuple[str, str, float]]:
    """Post ``n`` questions (at most 200 a second) round the channels and the users."""
    started = time.monotonic()
    window = max(1.0, n / 200)
    posted: dict[int, tuple[str, str, float]] = {}
    for i in range(n):
        await asyncio.sleep(max(0.0, started + window * i / n - time.monotonic()))
        channel = f"C{i % CHANNELS:04d}"
        at = time.monotonic()
        ts = await slack.post(channel, users[i % len(users)], f"<@{BOT_USER}> q{i}")
        posted[i] = (channel, ts, at)
    return posted


def final_text(i: int) -> str:
    return f"{ANSWER_PREFIX}{i}: 1,234 orders, up 5% on last month."


def answers_in_threads(slack: FakeSlack, posted: Mapping[int, tuple[str, str, float]]) -> list[int]:
    """For each question, how many of the bot's messages in its thread show its final answer."""
    by_thread: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for channel in {c for c, _, _ in posted.values()}:
        for m in slack.bot_messages(channel):
            if m.get("thread_ts"):
                by_thread[(channel, str(m["thread_ts"]))].append(str(m.get("text", "")))
    marker = "{}{}:"
    return [
        sum(marker.format(ANSWER_PREFIX, i) in t for t in by_thread[(c, ts)])
        for i, (c, ts, _) in posted.items()
    ]


async def run(
    setup: Setup,
    n: int,
    *,
    identity: Identity,
    users: int,
    sockets: int | None,
    server: PostgresServer | None,
    keep_logs: Path | None = None,
) -> dict[str, Any]:
    load_start = os.getloadavg()[0]
    turns: collections.Counter[str] = collections.Counter()
    sent_at: dict[str, float] = {}
    peaks = SocketPeaks()

    def on_step(event: str, data: Mapping[str, Any]) -> None:
        if event == "message":
            sent_at[str(data.get("content"))] = time.monotonic()

    people = users_of(users if identity == "user" else 1)
    async with (
        FakeSlack(bot_user_id=BOT_USER, redeliver_after=REDELIVER_AFTER) as slack,
        FakeTrellis(
            version="current",
            api_keys=(API_KEY,),
            max_sockets_per_token=sockets or 3,
            max_open_chats=2 * n,
            responder=Counting(turns),
        ) as trellis,
        contextlib.AsyncExitStack() as stack,
    ):
        trellis.on_step = on_step
        recorder = asyncio.create_task(trellis.wait_until(lambda: peaks.look(trellis)))
        for k, user in enumerate(people):
            slack.add_user(user, f"asker{k}", email=f"asker{k}@example.com")
        for c in range(CHANNELS):
            slack.add_channel(f"C{c:04d}", f"c{c:04d}", members=[*people, BOT_USER])
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if server is not None:
            db = stack.enter_context(fresh_database(server))
        else:
            db = str(tmp / "bench.db")
        logs = [(tmp / f"bot{r}.log").open("w") for r in range(setup.replicas)]
        processes = []
        try:
            for log in logs:
                processes.append(
                    await start_replica(slack, trellis, db, log, identity=identity, sockets=sockets)
                )
            await slack.wait_for(lambda: slack.socket_connections >= setup.replicas, timeout=30)
            startup_calls = len(slack.calls)
            started = time.monotonic()
            posted = await ask(slack, n, people)
            deadline = 120 + n * (3.5 if identity == "shared" and sockets is None else 0.3)
            seen = await finals(slack, n, deadline)
            elapsed = time.monotonic() - started
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    await quiet(slack, QUIET)
            calls = [c for c in slack.calls[startup_calls:] if c.method not in STARTUP_METHODS]
            in_threads = answers_in_threads(slack, posted)
            rss = [peak_rss_mb(p.pid) for p in processes]
        finally:
            for p in processes:
                p.send_signal(signal.SIGTERM)
            for p in processes:
                await p.wait()
            for log in logs:
                log.close()
            recorder.cancel()
        texts = read_logs(tmp, setup.replicas, keep_logs, f"{setup.name}-{identity}-{n}")
        fleet = fleet_facts(slack, trellis, peaks)
    outside = [(at - sent_at[text]) * 1000 for text, at in seen.items() if text in sent_at]
    answer_s = [
        seen[final_text(i)] - at for i, (_, _, at) in posted.items() if final_text(i) in seen
    ]
    acks = [a.latency * 1000 for a in slack.acks]
    duplicate_turns = sum(max(0, c - 1) for c in turns.values())
    duplicate_messages = sum(max(0, c - 1) for c in in_threads)
    return {
        "setup": setup.name,
        "n": n,
        "ack_p50": percentile(acks, 0.5),
        "ack_p99": percentile(acks, 0.99),
        **log_facts(texts),
        "outside_p50": percentile(outside, 0.5),
        "outside_p99": percentile(outside, 0.99),
        "answer_p50": percentile(answer_s, 0.5),
        "answer_p99": percentile(answer_s, 0.99),
        "answer_max": max(answer_s, default=float("nan")),
        "calls_per_answer": len(calls) / n,
        "by_method": by_method(calls, n),
        "duplicates": duplicate_messages + duplicate_turns,
        "duplicate_detail": (duplicate_messages, duplicate_turns),
        "lost": sum(c == 0 for c in in_threads),
        **fleet,
        "rss_mb": max(rss),
        "seconds": elapsed,
        "load": (load_start, os.getloadavg()[0]),
        "unanswered_turns": n - len(turns),
    }


def read_logs(tmp: Path, replicas: int, keep: Path | None, prefix: str) -> list[str]:
    """Each bot process's log; copied into ``keep`` (if given) as ``<prefix>-bot<r>.log``."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        for r in range(replicas):
            shutil.copy(tmp / f"bot{r}.log", keep / f"{prefix}-bot{r}.log")
    return [(tmp / f"bot{r}.log").read_text(errors="replace") for r in range(replicas)]


def fleet_facts(slack: FakeSlack, trellis: FakeTrellis, peaks: SocketPeaks) -> dict[str, Any]:
    """How Slack spread the work and how many Trellis sockets the fleet held."""
    spread = [len(e) for e in slack.deliveries().values()]
    return {
        "per_token": peaks.per_token,
        "per_member": peaks.per_member,
        # sockets the fake closed before authenticating them: its per-token cap (4429)
        "refused": trellis.accepted_connections
        - trellis.authenticated_connections
        - trellis.auth_failures,
        "peak_total": trellis.peak_connections,
        "spread": "/".join(f"{100 * s / max(1, sum(spread)):.0f}" for s in spread),
        "redelivered": sum(e.retry_attempt > 0 for e in slack.envelopes),
    }


def log_facts(texts: list[str]) -> dict[str, Any]:
    """The worst replica's own overhead summary (logged when it stops), and errors logged."""
    summaries = [re.search(r"bridge overhead p50 ([\d.]+) ms, p99 ([\d.]+) ms", t) for t in texts]
    inner = [(float(m[1]), float(m[2])) for m in summaries if m]
    return {
        "overhead_p50": max((i[0] for i in inner), default=float("nan")),
        "overhead_p99": max((i[1] for i in inner), default=float("nan")),
        "bot_errors": sum(t.count(" ERROR ") + t.count("Traceback") for t in texts),
    }


def by_method(calls: list[ApiCall], n: int) -> str:
    """Slack calls per answer, by method (refused calls apart)."""
    counts = collections.Counter(c.method + ("" if c.ok else " (refused)") for c in calls)
    return ", ".join(f"{m} {v / n:.2f}" for m, v in sorted(counts.items()))


HEADER = (
    "| setup | N | ack p50 ms | ack p99 ms | overhead p50 ms | overhead p99 ms "
    "| end to end p50 ms | end to end p99 ms | answer p50 s | answer p99 s | answer max s "
    "| Slack calls / answer | duplicates | lost | sockets / token | sockets / member "
    "| sockets refused | sockets, all tokens | spread % | redelivered | peak RSS MB / replica "
    "| wall s | load start → end |\n|---|" + "---:|" * 22
)


def row(r: Mapping[str, Any]) -> str:
    return (
        f"| {r['setup']} | {r['n']} | {r['ack_p50']:.1f} | {r['ack_p99']:.1f} "
        f"| {r['overhead_p50']:.1f} | {r['overhead_p99']:.1f} "
        f"| {r['outside_p50']:.1f} | {r['outside_p99']:.1f} "
        f"| {r['answer_p50']:.1f} | {r['answer_p99']:.1f} | {r['answer_max']:.1f} "
        f"| {r['calls_per_answer']:.1f} | {r['duplicates']} | {r['lost']} "
        f"| {r['per_token']} | {r['per_member']} | {r['refused']} | {r['peak_total']} "
        f"| {r['spread']} | {r['redelivered']} | {r['rss_mb']:.0f} | {r['seconds']:.0f} "
        f"| {r['load'][0]:.1f} → {r['load'][1]:.1f} |"
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, help="conversations (default 1000)")
    parser.add_argument("--setup", action="append", choices=list(SETUPS), help="repeatable")
    parser.add_argument("--identity", choices=("user", "shared"), default="user")
    parser.add_argument("--users", type=int, default=100, help="people asking (--identity user)")
    parser.add_argument("--sockets", type=int, help="raise Trellis's socket cap (label the rows)")
    parser.add_argument("--keep-logs", type=Path, help="copy each bot process's log here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    setups = [SETUPS[name] for name in args.setup or list(SETUPS)]
    sizes: list[int] = args.sizes or [1000]
    with contextlib.ExitStack() as stack:
        server = None
        if any(s.backend == "postgres" for s in setups):
            server = stack.enter_context(postgres_cluster())
        print(HEADER, flush=True)
        for setup in setups:
            for n in sizes:
                r = asyncio.run(
                    run(
                        setup,
                        n,
                        identity=args.identity,
                        users=args.users,
                        sockets=args.sockets,
                        keep_logs=args.keep_logs,
                        server=server if setup.backend == "postgres" else None,
                    )
                )
                print(row(r), flush=True)
                notes = {k: r[k] for k in ("duplicate_detail", "bot_errors", "unanswered_turns")}
                print(f"<!-- {setup.name} N={n}: {notes} -->", flush=True)
                print(f"<!-- {setup.name} N={n} calls: {r['by_method']} -->", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
