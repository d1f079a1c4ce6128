"""End to end: ``kill -9`` of the replica holding an answer loses no question.

Replica A is a real ``trellis-slack run`` process; replica B a `Bot` in the test's process; both
share one real PostgreSQL with a one-second heartbeat (``REPLICA_TTL``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

from tests.helpers import (
    ALICE,
    BOT_USER,
    CHANNEL,
    BotFactory,
    answered,
    body,
    bot_env,
    buttons,
    questions,
    replies,
)
from tests.pg import postgres_server, postgres_url
from trellis_slack.bot.queue import WAITING
from trellis_slack.bot.turn import RESTARTED
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Question, Step, answer
from trellis_slack.slack.blocks import RETRY_ACTION, STOP_ACTION

__all__ = ["postgres_server", "postgres_url"]  # fixtures

MENTION = f"<@{BOT_USER}>"


async def test_killing_the_answering_replica_hands_its_questions_to_another(
    slack: FakeSlack, trellis: FakeTrellis, postgres_url: str, start_bot: BotFactory
) -> None:
    """A dies mid-answer: B marks the cut-short answer with Retry and answers the queued follow-up."""
    gate = asyncio.Event()

    def respond(q: Question) -> list[Step]:
        if "q1" in q.text:
            return [Step.processing("thinking"), Step.pause(gate), *answer("never shown")]
        return answer(f"answer to {q.text.split()[-1]}")

    trellis.responder = respond
    env = {
        **os.environ,
        **bot_env(slack, trellis, postgres_url, REPLICA_TTL="1"),  # type: ignore[arg-type]
    }
    dying = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "trellis_slack",
        "run",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # killed with its chart workers, as a container would be
    )
    try:
        await slack.wait_for(lambda: slack.socket_connections > 0, timeout=30)
        ts = await slack.post(CHANNEL, ALICE, f"{MENTION} slow q1")
        await trellis.wait_for_action("send_message")
        await slack.post(CHANNEL, ALICE, "then q2", thread_ts=ts)
        await slack.wait_for(lambda: any(WAITING in body(m) for m in replies(slack, CHANNEL, ts)))
        # B joins, then A dies without a word.
        await start_bot(TRELLIS_SLACK_DB=postgres_url, REPLICA_TTL="1")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(dying.pid, signal.SIGKILL)
        await dying.wait()

    messages = await answered(slack, CHANNEL, ts, "answer to q2")
    cut = [m for m in messages if RESTARTED in body(m)]
    assert len(cut) == 1
    assert RETRY_ACTION in buttons(cut[0])
    assert not any(STOP_ACTION in buttons(m) for m in messages)
    assert sum("answer to q2" in body(m) for m in messages) == 1

    # Retry on the cut-short answer asks q1 again, answered by the replica still alive.
    trellis.responder = lambda q: answer("q1 answered after all")
    await slack.click(CHANNEL, cut[0]["ts"], RETRY_ACTION, user=ALICE)
    await answered(slack, CHANNEL, ts, "q1 answered after all")
    assert sum("then q2" in str(frame) for frame in questions(trellis)) == 1


async def test_a_retry_after_a_restart_is_not_taken_for_the_old_runs_work(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """Retry on a question the previous run recorded: the new run owns it, adoption leaves it."""
    trellis.responder = lambda q: [Step.error("The query timed out.", retryable=True)]
    old = await start_bot()
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} q1")
    [failed] = await slack.wait_for(
        lambda: [m for m in replies(slack, CHANNEL, ts) if RETRY_ACTION in buttons(m)] or None
    )
    await old.stop()
    new = await start_bot()  # the same state file: a restart
    gate = asyncio.Event()
    trellis.responder = lambda q: [
        Step.processing("thinking"),
        Step.pause(gate),
        *answer("q1 done"),
    ]
    await slack.click(CHANNEL, failed["ts"], RETRY_ACTION, user=ALICE)
    await trellis.wait_for_action("edit_message")
    assert new.fleet is not None
    assert await new.fleet.adopt() == []  # what a heartbeat would find: nothing is orphaned
    gate.set()
    messages = await answered(slack, CHANNEL, ts, "q1 done")
    assert not any(RESTARTED in body(m) for m in messages)
