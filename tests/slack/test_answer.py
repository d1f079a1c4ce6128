"""Tests for trellis_slack.slack.answer: one answer in as few messages as Slack allows."""

from __future__ import annotations

from trellis_slack.slack.answer import chart_block, compose
from trellis_slack.slack.markdown import MAX_BLOCKS, answer_messages

TABLE = {"type": "table", "rows": [[{"type": "raw_text", "text": "a"}]]}


def types(blocks: tuple[dict[str, object], ...]) -> list[object]:
    return [b["type"] for b in blocks]


def test_charts_and_text_share_one_message() -> None:
    """A chart and a short answer are one message: the chart first, then the text."""
    chart = chart_block("F1", title="Orders", alt_text="Bar chart of orders")
    [message] = compose([chart], answer_messages("Orders rose."))
    assert types(message.blocks) == ["image", "markdown"]
    assert message.blocks[0]["slack_file"] == {"id": "F1"}
    assert message.text == "Orders rose."


def test_a_second_table_starts_a_new_message() -> None:
    """Slack shows one table per message: a second one goes in the next message, in order."""
    messages = compose([TABLE, TABLE], answer_messages("Two tables."))
    assert [types(m.blocks) for m in messages] == [["table"], ["table", "markdown"]]


def test_more_than_fifty_blocks_split_without_losing_any() -> None:
    """Past 50 blocks the answer continues in the next message; every block is kept, in order."""
    charts = [chart_block(f"F{i}", title=f"c{i}", alt_text="x") for i in range(60)]
    messages = compose(charts, answer_messages("Sixty charts."))
    assert all(len(m.blocks) <= MAX_BLOCKS for m in messages)
    shown = [b["slack_file"]["id"] for m in messages for b in m.blocks if b["type"] == "image"]
    assert shown == [f"F{i}" for i in range(60)]
    assert types(messages[-1].blocks)[-1] == "markdown"


def test_text_only_answer_is_unchanged() -> None:
    """Without charts or tables the answer is exactly its text messages."""
    text = answer_messages("Just words.", footer={"type": "context_actions", "elements": []})
    [message] = compose([], text)
    assert types(message.blocks) == ["markdown", "context_actions"]


def test_at_most_two_native_charts_and_one_native_table_a_message() -> None:
    """Slack draws two data_visualization blocks and one data_table per message: the rest follow."""
    chart = {"type": "data_visualization"}
    table = {"type": "data_table"}
    messages = compose([chart, chart, chart, table, table], answer_messages("Five."))
    assert [types(m.blocks) for m in messages] == [
        ["data_visualization", "data_visualization"],
        ["data_visualization", "data_table"],
        ["data_table", "markdown"],
    ]
