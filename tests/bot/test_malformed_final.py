"""End to end: a final message Trellis sends without content ends the turn at once, with Retry."""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest

from tests.helpers import ALICE, BOT_USER, CHANNEL, BotFactory, answered, body, buttons
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Step, answer
from trellis_slack.slack.blocks import RETRY_ACTION

MENTION = f"<@{BOT_USER}>"
#: Well under the tests' TRELLIS_TURN_TIMEOUT (10 s): waiting for the time-out cannot pass.
WITHIN = 5.0
#: What the user reads when the final frame could not be read.
UNREADABLE = "an answer I could not read"


@pytest.mark.parametrize("version", ["current", "seed"])
@pytest.mark.parametrize("content", ["missing", "null"])
async def test_final_message_without_content_fails_at_once_and_retry_answers(
    slack: FakeSlack,
    trellis: FakeTrellis,
    start_bot: BotFactory,
    version: Literal["current", "seed"],
    content: Literal["missing", "null"],
) -> None:
    """A final message with content missing or null ends at once with a clear line and Retry."""
    async with FakeTrellis(version="seed") as seed:
        server = trellis if version == "current" else seed
        await start_bot(
            TRELLIS_WS_URL=server.ws_url,
            TRELLIS_API_URL=server.api_url,
            TRELLIS_TOKEN=server.make_token("member-shared"),
        )
        server.responder = lambda q: [
            Step.processing("thinking"),
            Step.malformed_message(content=content),
        ]
        ts = await slack.post(CHANNEL, ALICE, f"{MENTION} revenue by region?")
        async with asyncio.timeout(WITHIN):
            msgs = await answered(slack, CHANNEL, ts, UNREADABLE)
        [failure] = [m for m in msgs if UNREADABLE in body(m)]
        assert RETRY_ACTION in buttons(failure)
        assert not any("took too long" in body(m) for m in msgs)

        server.responder = lambda q: answer(f"You asked: {q.text}")
        await slack.click(CHANNEL, failure["ts"], RETRY_ACTION, user=ALICE, value=ts)
        async with asyncio.timeout(WITHIN):
            msgs = await answered(slack, CHANNEL, ts, "You asked: revenue by region?")
        assert not any(UNREADABLE in body(m) for m in msgs)
