"""End to end: charts and tables from Trellis reach the thread of the question, in order, before the text."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import ALICE, BOT_USER, CHANNEL, answered, body, replies
from trellis_slack.bot.app import Bot
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Step

#: Charts as messages of their own: the edited-message path (native answers hold them inline,
#: tests/bot/test_streaming.py).
pytestmark = pytest.mark.edited_messages

MENTION = f"<@{BOT_USER}>"
REGIONS = [("North", 412), ("South", 289), ("East", 531)]


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    """What each bot reply in the thread is, top to bottom."""
    out = []
    for m in messages:
        if m.get("files"):
            out.append("file:" + str(m["files"][0].get("filetype") or m["files"][0].get("name")))
        elif any(b.get("type") == "table" for b in m.get("blocks") or []):
            out.append("table")
        else:
            out.append("text")
    return out


async def test_chart_and_table_arrive_in_order_before_the_answer(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A chart (PNG with title and alt text) and a table precede the final text in the thread."""
    trellis.responder = lambda q: [
        Step.processing("analyzing"),
        Step.chart(
            "bar", REGIONS, title="Orders by Region", x_axis_label="Region", y_axis_label="Orders"
        ),
        Step.table(["Region", "Sales"], [["North", "1,234,000"], ["South", "987,500"]]),
        Step.message("East leads with **531** orders."),
    ]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} orders by region")
    msgs = await answered(slack, CHANNEL, ts, "East leads with **531** orders.")
    assert kinds(msgs) == ["file:png", "table", "text"]
    png = next(f for f in slack.files.values() if f.title == "Orders by Region")
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert png.thread_ts == ts
    assert png.alt_txt is not None
    assert "North" in png.alt_txt
    assert "531" in png.alt_txt
    table = next(b for b in msgs[1]["blocks"] if b["type"] == "table")
    assert table["rows"][1][1]["text"] == "1,234,000"


async def test_same_visualization_twice_is_shown_once(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A visualization id that arrives twice produces one image in the thread."""
    trellis.responder = lambda q: [
        Step.chart("pie", REGIONS, title="Share", viz_id="viz0000001"),
        Step.chart("pie", REGIONS, title="Share", viz_id="viz0000001"),
        Step.message("Done."),
    ]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} share by region")
    msgs = await answered(slack, CHANNEL, ts, "Done.")
    assert kinds(msgs) == ["file:png", "text"]
    assert len([f for f in slack.files.values() if f.title == "Share"]) == 1


async def test_bad_visualization_keeps_the_rest_of_the_answer(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A chart that cannot be drawn becomes a short note or its data; the answer still arrives."""
    trellis.responder = lambda q: [
        Step.visualization({"type": "chart", "chart_type": "bar", "title": "Broken"}),
        Step.visualization({"type": "table", "headers": ["a"], "rows": "not a list"}),
        Step.message("Here is the rest."),
    ]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} broken charts")
    msgs = await answered(slack, CHANNEL, ts, "Here is the rest.")
    assert kinds(msgs)[-1] == "text"
    notes = [body(m) for m in msgs[:-1]]
    assert len(notes) == 2
    assert all("could not" in n.lower() or "cannot" in n.lower() for n in notes), notes
    assert replies(slack, CHANNEL, ts)[-1]["ts"] == msgs[-1]["ts"]


async def test_big_table_comes_with_the_full_csv(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A table over Slack's limits shows a preview and attaches every row as CSV."""
    rows = [[f"Customer {i}", f"{i * 10:,}"] for i in range(250)]
    trellis.responder = lambda q: [
        Step.table(["Customer", "Revenue"], rows, title="Customers"),
        Step.message("All customers."),
    ]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} all customers")
    msgs = await answered(slack, CHANNEL, ts, "All customers.")
    assert kinds(msgs) == ["table", "file:csv", "text"]
    assert "of 250 rows" in body(msgs[0])
    csv = next(f for f in slack.files.values() if f.name.endswith(".csv"))
    lines = csv.content.decode().strip().splitlines()
    assert len(lines) == 251
    assert lines[-1].startswith("Customer 249")


async def test_chart_workers_start_with_the_first_chart(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A running bot has no chart worker until an answer brings a chart; then it has."""
    assert bot.renderer is not None
    assert bot.renderer.worker_pids == ()
    trellis.responder = lambda q: [
        Step.table(["Region", "Sales"], [["North", "1,234,000"]]),
        Step.message("A table only."),
    ]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} sales table")
    await answered(slack, CHANNEL, ts, "A table only.")
    assert bot.renderer.worker_pids == ()
    trellis.responder = lambda q: [
        Step.chart("bar", REGIONS, title="Orders by Region"),
        Step.message("With a chart."),
    ]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} orders chart")
    msgs = await answered(slack, CHANNEL, ts, "With a chart.")
    assert kinds(msgs) == ["file:png", "text"]
    assert bot.renderer.worker_pids
