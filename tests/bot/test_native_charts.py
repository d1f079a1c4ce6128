"""End to end: SLACK_CHARTS=auto (the default) — Slack's own charts and tables where they fit."""

from __future__ import annotations

import asyncio

from tests.helpers import ALICE, BOT_USER, CHANNEL, BotFactory, answered
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Step, answer

MENTION = f"<@{BOT_USER}>"


def kinds(message: dict[str, object]) -> list[object]:
    return [b["type"] for b in message.get("blocks") or []]  # type: ignore[attr-defined]


async def test_a_bar_chart_that_fits_is_drawn_by_slack_inside_the_answer(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """A small bar chart becomes a data_visualization block in the answer: no file at all."""
    trellis.responder = lambda q: [
        Step.chart("bar", [("north", 3), ("south", 5)], title="Orders by region"),
        *answer("South leads."),
    ]
    await start_bot(SLACK_CHARTS="auto")
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} orders by region")
    [message] = await answered(slack, CHANNEL, ts, "South leads.")
    assert kinds(message) == ["data_visualization", "markdown", "context_actions"]
    assert slack.files == {}


async def test_a_chart_slack_cannot_draw_is_a_png(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """A horizontal bar chart has no native form: it is drawn as an image inside the answer."""
    trellis.responder = lambda q: [
        Step.chart("horizontal_bar", [("north", 3), ("south", 5)], title="Orders by region"),
        *answer("South leads."),
    ]
    await start_bot(SLACK_CHARTS="auto")
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} orders by region")
    [message] = await answered(slack, CHANNEL, ts, "South leads.")
    assert kinds(message)[0] == "image"
    assert len(slack.files) == 1


async def test_an_answer_slack_refuses_with_its_native_chart_comes_with_the_image_instead(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """If Slack refuses the answer with its own chart block, the chart comes as a PNG instead."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [
        Step.chart("bar", [("north", 3), ("south", 5)], title="Orders by region"),
        Step.pause(gate),
        *answer("South leads."),
    ]
    await start_bot(SLACK_CHARTS="auto")
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} orders by region")
    await trellis.wait_for_action("send_message")
    slack.fail("chat.update", "invalid_blocks", times=1)
    gate.set()
    [message] = await answered(slack, CHANNEL, ts, "South leads.")
    assert kinds(message)[0] == "image"
    assert "data_visualization" not in kinds(message)
    assert len(slack.files) == 1


async def test_an_answer_whose_chart_slack_refuses_twice_still_shows_its_text(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """If Slack refuses even the image (a file not ready yet), the text arrives with a line why."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [
        Step.chart("bar", [("north", 3), ("south", 5)], title="Orders by region"),
        Step.pause(gate),
        *answer("South leads."),
    ]
    await start_bot()  # charts as images (SLACK_CHARTS=png in the tests' environment)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} orders by region")
    await trellis.wait_for_action("send_message")
    slack.fail("chat.update", "invalid_blocks", times=1)
    gate.set()
    [message] = await answered(slack, CHANNEL, ts, "South leads.")
    assert "image" not in kinds(message)
    assert "could not show" in str(message) or "would not show" in str(message)
