"""`trellis-slack run` as a process: it answers, and SIGTERM shuts it down cleanly with exit code 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from tests.conftest import ALICE, BOT_USER, CHANNEL, BotFactory, bot_env
from tests.test_bridge import answered, body, buttons, replies
from trellis_slack.blocks import STOP_ACTION
from trellis_slack.store import Store
from trellis_slack.testing.slack_server import FakeSlack
from trellis_slack.testing.trellis_server import FakeTrellis, Step, answer


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
    assert any("The bot is restarting" in body(m) for m in msgs)
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
