"""Helpers shared by the tests: the fixtures' names and ids, and ways to read what Slack shows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from trellis_slack.bot.app import Bot
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis
from trellis_slack.slack.blocks import STOP_ACTION

#: The repository's root folder.
ROOT = Path(__file__).resolve().parent.parent

BOT_USER = "U0BOT"
ALICE, BOB, MALLORY = "U0ALICE", "U0BOB", "U0EXT"
CHANNEL, DM = "C0GENERAL", "D0ALICE"

BotFactory = Callable[..., Awaitable[Bot]]


class Clock:
    """A settable Unix time, for a store's ``clock``."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def bot_env(slack: FakeSlack, trellis: FakeTrellis, db: Path, **extra: str) -> dict[str, str]:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-fake-bot-token",
        "SLACK_APP_TOKEN": "xapp-fake-app-token",
        "SLACK_API_URL": slack.api_url,
        "TRELLIS_TOKEN": trellis.make_token("member-shared"),
        "TRELLIS_WS_URL": trellis.ws_url,
        "TRELLIS_API_URL": trellis.api_url,
        "TRELLIS_SLACK_DB": str(db),
        "TRELLIS_TURN_TIMEOUT": "10",
        # The product's default; tests marked `edited_messages` run the edited-message path.
        "SLACK_STREAMING": "native",
        # Charts as images: the tests of chart plumbing (uploads, removal, order) look at files;
        # tests/bot/test_native_charts.py runs the default, auto.
        "SLACK_CHARTS": "png",
    }
    env.update(extra)
    return env


def body(message: dict[str, Any]) -> str:
    """Everything a reader sees in a message: its blocks' text, or its text."""
    parts: list[str] = []
    for block in message.get("blocks") or []:
        if block.get("type") == "markdown":
            parts.append(block.get("text", ""))
        elif block.get("type") == "section":
            parts.append((block.get("text") or {}).get("text", ""))
        elif block.get("type") == "context":
            parts.extend(e.get("text", "") for e in block.get("elements", []))
    return "\n".join(parts) if parts else str(message.get("text", ""))


def buttons(message: dict[str, Any]) -> list[str]:
    return [
        element.get("action_id", "")
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    ]


def replies(slack: FakeSlack, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    return slack.bot_messages(channel, thread_ts)


async def answered(
    slack: FakeSlack, channel: str, thread_ts: str, text: str
) -> list[dict[str, Any]]:
    """Wait until a bot reply in the thread shows ``text`` and no working message is left."""

    def done() -> list[dict[str, Any]] | None:
        msgs = replies(slack, channel, thread_ts)
        if any(text in body(m) for m in msgs) and not any(STOP_ACTION in buttons(m) for m in msgs):
            return msgs
        return None

    return await slack.wait_for(done, timeout=10)


async def working_message(slack: FakeSlack, channel: str, thread_ts: str) -> dict[str, Any]:
    """Wait for the bot's working message (the one with the Stop button) in the thread."""
    found = await slack.wait_for(
        lambda: [m for m in replies(slack, channel, thread_ts) if STOP_ACTION in buttons(m)]
    )
    return found[0]


def questions(trellis: FakeTrellis) -> list[dict[str, Any]]:
    return [
        r.frame
        for r in trellis.received
        if isinstance(r.frame, dict) and r.frame.get("action") in ("send_message", "edit_message")
    ]
