"""End to end: "Show steps" on an answer shows the SQL Trellis ran, only to the clicker."""

from __future__ import annotations

from typing import Any

from tests.helpers import ALICE, BOB, BOT_USER, CHANNEL, BotFactory, answered, body
from trellis_slack.bot.app import Bot
from trellis_slack.bot.steps import StepLog
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Step, answer
from trellis_slack.slack.blocks import SHOW_STEPS_ACTION, STEPS_CUT, steps_text
from trellis_slack.store.base import AnswerStep
from trellis_slack.trellis.protocol import ToolEvent

MENTION = f"<@{BOT_USER}>"
SQL = "SELECT region, SUM(amount) FROM orders GROUP BY region"


def with_steps(text: str) -> list[Step]:
    """An answer that ran one query first."""
    return [
        Step.tool_call(SQL, call_id="call_1", tables=["orders"], title="Revenue by region"),
        Step.tool_result([["north", 10], ["south", 20]], call_id="call_1"),
        *answer(text),
    ]


def has_button(message: dict[str, Any]) -> bool:
    """Whether a message carries the "Show steps" button."""
    return any(
        element.get("action_id") == SHOW_STEPS_ACTION
        for block in message.get("blocks", [])
        for element in block.get("elements", [])
        if isinstance(element, dict)
    )


async def test_show_steps_shows_the_sql_only_to_the_clicker(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """The answer has a Show steps button; a click shows its SQL, tables and rows to the clicker."""
    trellis.responder = lambda q: with_steps("Revenue was 30.")
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} revenue by region?")
    messages = await answered(slack, CHANNEL, ts, "Revenue was")
    [message] = [m for m in messages if has_button(m)]
    sent = [r.frame for r in trellis.received if isinstance(r.frame, dict)]
    assert any(f.get("include_tool_events") is True for f in sent)
    await slack.click(CHANNEL, message["ts"], SHOW_STEPS_ACTION, user=BOB)
    [shown] = await slack.wait_for(
        lambda: [e for e in slack.ephemerals if e["user"] == BOB] or None
    )
    assert f"```{SQL}```" in shown["text"]
    assert "`orders`" in shown["text"]
    assert "2 rows" in shown["text"]
    assert not [e for e in slack.ephemerals if e["user"] == ALICE]
    assert "Revenue by region" not in "".join(body(m) for m in messages)


async def test_an_answer_without_steps_has_no_button(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Trellis reported no steps: the answer carries no Show steps button."""
    trellis.responder = lambda q: answer("Revenue was 5.")
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} revenue?")
    messages = await answered(slack, CHANNEL, ts, "Revenue was 5.")
    assert not [m for m in messages if has_button(m)]


def test_a_result_completes_its_call_and_unknown_fields_are_tolerated() -> None:
    """tool_result adds the row count to its call; odd or extra fields are ignored."""
    log = StepLog()
    log.add(ToolEvent("tool_call", {"id": 7, "input": {"query": "SELECT 1"}, "new": {"x": 1}}))
    log.add(ToolEvent("tool_call", {"name": "lookup", "tables": "not a list"}))
    log.add(ToolEvent("tool_result", {"tool_call_id": "7", "rows": [[1]], "extra": True}))
    log.add(ToolEvent("tool_message", {"content": "Checked the totals."}))
    log.add(ToolEvent("tool_message", {"content": 3}))
    assert log.steps == (
        AnswerStep(kind="query", sql="SELECT 1", row_count=1),
        AnswerStep(kind="lookup"),
        AnswerStep(kind="note", text="Checked the totals."),
    )


def test_long_steps_are_cut_and_say_so() -> None:
    """Steps longer than the limit are cut at a step and end with the cut line."""
    steps = [AnswerStep(kind="query", sql="SELECT " + "x, " * 400) for _ in range(5)]
    text = steps_text(steps, limit=2_000)
    assert len(text) <= 2_000
    assert text.endswith(STEPS_CUT)
    assert text.count("```") % 2 == 0


async def test_with_native_streaming_each_query_is_a_task_card(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """Streamed natively, each tool call is a task card titled by its step, complete at the end."""
    trellis.responder = lambda q: with_steps("Revenue was 30.")
    await start_bot(SLACK_STREAMING="native")
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} revenue by region?")
    messages = await answered(slack, CHANNEL, ts, "Revenue was 30.")
    [stream] = slack.streams(CHANNEL, ts)
    live = slack.stream_of(stream.ts)
    titles = [str(task.get("title")) for task in live.tasks.values()]
    assert "Revenue by region" in titles
    assert set(live.task_statuses().values()) == {"complete"}
    assert [m for m in messages if has_button(m)]
