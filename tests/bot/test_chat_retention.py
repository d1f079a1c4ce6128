"""End to end: TRELLIS_CHAT_RETENTION_DAYS retires idle chats at start-up (and daily after)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.helpers import ALICE, BOT_USER, CHANNEL, BotFactory, answered, body, replies
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, answer

MENTION = f"<@{BOT_USER}>"


async def test_a_chat_idle_past_the_retention_is_deleted_in_trellis_at_start_up(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory, tmp_path: Path
) -> None:
    """A chat unused for longer than the retention is deleted at start-up; its thread says so later."""
    trellis.responder = lambda q: answer(f"You asked: {q.text}")
    first = await start_bot()
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} old question")
    await answered(slack, CHANNEL, ts, "You asked: old question")
    await first.stop(grace=1.0)
    with sqlite3.connect(tmp_path / "state.db") as db:  # the chat was last used 30 days ago
        db.execute("UPDATE conversations SET used_at = ?", (time.time() - 30 * 86_400,))
    await start_bot(TRELLIS_CHAT_RETENTION_DAYS="7")
    await slack.wait_for(lambda: trellis.deleted_chats or None)
    await slack.post(CHANNEL, ALICE, "a follow-up", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: a follow-up")
    assert any("no longer have the earlier part" in body(m) for m in replies(slack, CHANNEL, ts))
