"""`trellis-slack run` as a process: it answers, and SIGTERM shuts it down cleanly with exit code 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from tests.helpers import (
    ALICE,
    BOT_USER,
    CHANNEL,
    BotFactory,
    answered,
    body,
    bot_env,
    buttons,
    replies,
)
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Step, answer
from trellis_slack.slack.blocks import RETRY_ACTION, STOP_ACTION
from trellis_slack.store.sqlite import SqliteStore as Store


async def test_sigterm_finishes_the_answer_in_progress_and_exits_0(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path
) -> None:
    """SIGTERM during an answer lets it finish, leaves the state file consistent, exits 0, logs no token."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [
        Step.processing("thinking"),
        Step.pause(gate),
        *answer("finished anyway"),
    ]
    db = tmp_path / "state.db"
    env = {**os.environ, **bot_env(slack, trellis, db), "LOG_LEVEL": "DEBUG"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "trellis_slack",
        "run",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await slack.wait_for(lambda: slack.socket_connections > 0, timeout=30)
        ts = await slack.post(CHANNEL, ALICE, f"<@{BOT_USER}> slow question")
        await trellis.wait_for_action("send_message")
        process.send_signal(signal.SIGTERM)
        await slack.wait_for(lambda: slack.socket_connections == 0, timeout=10)
        gate.set()
        await answered(slack, CHANNEL, ts, "finished anyway")
        async with asyncio.timeout(20):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    log_text = stderr.decode()
    assert "Traceback" not in log_text
    for secret in (env["SLACK_BOT_TOKEN"], env["SLACK_APP_TOKEN"], env["TRELLIS_TOKEN"]):
        assert secret not in log_text
    store = await Store.open(db)
    try:
        record = await store.question(CHANNEL, ts)
    finally:
        await store.close()
    assert record is not None
    assert record.status == "answered"
    assert any("finished anyway" in body(m) for m in replies(slack, CHANNEL, ts))


async def test_shutdown_stops_an_answer_that_does_not_finish_in_time(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """An answer still running when the grace period ends is interrupted with a note saying why."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [Step.processing("thinking"), Step.pause(gate), *answer("never")]
    bot = await start_bot()
    ts = await slack.post(CHANNEL, ALICE, f"<@{BOT_USER}> endless question")
    await trellis.wait_for_action("send_message")
    await bot.stop(grace=0.2)
    await trellis.wait_for_action("interrupt")
    msgs = replies(slack, CHANNEL, ts)
    assert any("I was restarted before I could finish" in body(m) for m in msgs)
    assert any(RETRY_ACTION in buttons(m) for m in msgs)
    assert not any("never" in body(m) for m in msgs)
    assert not any(STOP_ACTION in buttons(m) for m in msgs)


async def test_old_delivery_claims_are_forgotten_at_start(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory, tmp_path: Path
) -> None:
    """Claims older than two weeks are pruned at start-up; recent ones still block redeliveries."""
    db = tmp_path / "state.db"
    month_ago = time.time() - 30 * 86_400
    store = await Store.open(db, clock=lambda: month_ago)
    try:
        assert await store.claim_event(CHANNEL, "1600000000.000100")
    finally:
        await store.close()
    store = await Store.open(db)
    try:
        assert await store.claim_event(CHANNEL, "1700000000.000100")
    finally:
        await store.close()
    bot = await start_bot()
    assert bot.store is not None
    assert await bot.store.claim_event(CHANNEL, "1600000000.000100")
    assert not await bot.store.claim_event(CHANNEL, "1700000000.000100")


async def test_wrong_app_token_stops_start_up_with_the_fix(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path
) -> None:
    """A wrong SLACK_APP_TOKEN (or Socket Mode off) ends `run` at once: exit 2, the fix, no traceback."""
    env = {
        **os.environ,
        **bot_env(slack, trellis, tmp_path / "state.db"),
        "SLACK_APP_TOKEN": "xapp-not-this-apps-token",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "trellis_slack",
        "run",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, stderr = await process.communicate()
    text = stderr.decode()
    assert process.returncode == 2
    assert "Slack refused SLACK_APP_TOKEN (invalid_auth)" in text
    assert "Socket Mode" in text
    assert "Traceback" not in text
    assert "xapp-not-this-apps-token" not in text


async def test_questions_left_by_a_crash_offer_retry_after_restart(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path
) -> None:
    """After a kill -9, the restart ends the dead "Thinking…" with Retry and answers what was queued."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [Step.processing("thinking"), Step.pause(gate), *answer("lost")]
    env = {**os.environ, **bot_env(slack, trellis, tmp_path / "state.db")}

    async def run_bot() -> asyncio.subprocess.Process:
        # Its own process group: the "crash" kills the bot and its chart workers together, as a
        # container or service manager would, and leaves nothing running behind the test.
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "trellis_slack",
            "run",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )

    first = await run_bot()
    try:
        await slack.wait_for(lambda: slack.socket_connections > 0, timeout=30)
        ts = await slack.post(CHANNEL, ALICE, f"<@{BOT_USER}> q1")
        await trellis.wait_for_action("send_message")
        await slack.post(CHANNEL, ALICE, "q2", thread_ts=ts)
        await slack.wait_for(
            lambda: any("as soon as" in body(m) for m in replies(slack, CHANNEL, ts))
        )
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        await first.wait()
    await slack.wait_for(lambda: slack.socket_connections == 0, timeout=10)
    trellis.responder = lambda q: answer(f"You asked: {q.text}")
    second = await run_bot()
    try:
        # The answer cut short offers Retry; the follow-up that was queued is answered now.
        msgs = await answered(slack, CHANNEL, ts, "You asked: q2")
        assert sum(RETRY_ACTION in buttons(m) for m in msgs) == 1
        assert not any(STOP_ACTION in buttons(m) for m in msgs)
        retry = next(m for m in msgs if RETRY_ACTION in buttons(m))
        await slack.click(CHANNEL, retry["ts"], RETRY_ACTION, user=ALICE)
        await answered(slack, CHANNEL, ts, "You asked: q1")
    finally:
        second.terminate()
        await second.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(second.pid, signal.SIGKILL)
