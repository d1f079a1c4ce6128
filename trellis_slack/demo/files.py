"""The demo's "how did you get this?" and its file question: SQL steps, and a CSV to attach.

Each sample answer comes with the query the analyst "ran" (a ``tool_call`` with its SQL and a
``tool_result`` with its rows), so "Show steps" has something true to show: the rows are the
very numbers the answer reports. The sample CSV is what the page attaches for the file
question; a file question is answered from the file's own rows.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Final

from trellis_slack.demo.answers import Answer
from trellis_slack.demo.data import (
    MONTHS,
    REGIONS,
    SAMPLE_FILE,
    orders_by_month,
    orders_by_region,
)
from trellis_slack.fakes.slack_humans import HumanFile
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_script import Step

__all__ = ["file_answer", "post_question", "sample_csv", "steps_for"]

#: The query behind each topic (`answers.match_topic`): what "Show steps" shows.
_SQL: Final[dict[str, str]] = {
    "regions": "SELECT region, COUNT(*) AS orders\nFROM orders\nWHERE order_date >= '2025-01-01'"
    "\nGROUP BY region\nORDER BY orders DESC",
    "trend": "SELECT date_trunc('month', order_date) AS month, region, COUNT(*) AS orders\n"
    "FROM orders\nWHERE order_date >= '2025-01-01'\nGROUP BY month, region\nORDER BY month",
    "one region": "SELECT date_trunc('month', order_date) AS month, COUNT(*) AS orders\n"
    "FROM orders\nWHERE region = %(region)s AND order_date >= '2025-01-01'\nGROUP BY month",
    "categories": "SELECT p.category, SUM(o.amount) AS revenue\nFROM orders o\n"
    "JOIN products p ON p.id = o.product_id\nGROUP BY p.category\nORDER BY revenue DESC",
    "channels": "SELECT sales_channel, COUNT(*) AS orders\nFROM orders\nGROUP BY sales_channel",
    "customers": "SELECT c.name, SUM(o.amount) AS revenue\nFROM orders o\n"
    "JOIN customers c ON c.id = o.customer_id\nGROUP BY c.name\nORDER BY revenue DESC\nLIMIT 10",
    "order value": "SELECT region, AVG(amount) AS average_order_value\nFROM orders\n"
    "GROUP BY region",
    "quarters": "SELECT region, date_trunc('quarter', order_date) AS quarter, SUM(amount)\n"
    "FROM orders\nGROUP BY region, quarter\nORDER BY quarter",
    "daily": "SELECT order_date, region, COUNT(*) AS orders\nFROM orders\n"
    "GROUP BY order_date, region\nORDER BY order_date",
    "forecast": "SELECT date_trunc('month', order_date) AS month, COUNT(*) AS orders\n"
    "FROM orders\nWHERE order_date >= '2024-01-01'\nGROUP BY month\nORDER BY month",
    "flaky": "SELECT region, COUNT(*) AS orders\nFROM orders_replica\nGROUP BY region",
}
_TABLES: Final[dict[str, tuple[str, ...]]] = {
    "categories": ("orders", "products"),
    "customers": ("orders", "customers"),
    "flaky": ("orders_replica",),
}


def _rows(answer: Answer) -> list[list[Any]]:
    """The rows behind the answer's first chart (label, value, …), or none."""
    for step in answer.visualizations:
        values = step.data.get("data", {}).get("values") if isinstance(step.data, dict) else None
        if isinstance(values, list) and values:
            return [list(v.values()) for v in values if isinstance(v, dict)]
    return []


def steps_for(topic: str, answer: Answer, *, delay: float = 0.0) -> list[Step]:
    """The query the analyst runs for ``topic`` and its result (none for help or the unknown)."""
    sql = _SQL.get(topic)
    if sql is None:
        return []
    title = answer.doing.replace("_", " ").capitalize()
    call = Step.tool_call(
        sql, call_id=f"demo_{topic.replace(' ', '_')}", tables=_TABLES.get(topic, ("orders",))
    )
    call = Step(call.event, {**call.data, "title": title}, delay)
    return [call, Step.tool_result(_rows(answer), call_id=call.data["id"], delay=delay)]


def sample_csv() -> bytes:
    """Q4 2025 orders by region and month, as a CSV a person might attach."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["month", "region", "orders"])
    for month in MONTHS[-3:]:
        for region in REGIONS:
            writer.writerow([f"{month} 2025", region, orders_by_month(region)[month]])
    return out.getvalue().encode()


async def post_question(
    slack: FakeSlack, channel: str, user: str, text: str, *, thread_ts: str | None, attach: object
) -> str:
    """The person posts ``text``; with ``attach`` naming the sample file, the CSV attached."""
    if attach == SAMPLE_FILE:
        sample = [HumanFile(SAMPLE_FILE, sample_csv(), "text/csv")]
        return await slack.post_with_files(channel, user, text, sample, thread_ts=thread_ts)
    return await slack.post(channel, user, text, thread_ts=thread_ts)


def file_answer(files: tuple[tuple[str, bytes], ...]) -> Answer:
    """What the analyst says about the attached files: the first CSV read for real."""
    for name, content in files:
        if not name.lower().endswith(".csv"):
            continue
        try:
            rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
        except (UnicodeDecodeError, csv.Error):
            break
        if not rows:
            break
        columns = list(rows[0])
        text = (
            f"Your file **{name}** has **{len(rows):,} rows** and the columns "
            + ", ".join(f"`{c}`" for c in columns)
            + "."
        )
        chart: tuple[Step, ...] = ()
        if {"region", "orders"} <= set(columns):
            totals: dict[str, int] = {}
            for row in rows:
                totals[row["region"]] = totals.get(row["region"], 0) + int(row["orders"] or 0)
            top = max(totals, key=lambda r: totals[r])
            share = totals[top] / sum(orders_by_region().values())
            text += (
                f" Together they count **{sum(totals.values()):,} orders**; **{top}** had the "
                f"most ({totals[top]:,}), {share:.0%} of its whole year in the sample data."
            )
            chart = (
                Step.chart(
                    "bar",
                    list(totals.items()),
                    title=f"Orders by region in {name}",
                    x_axis_label="Region",
                    y_axis_label="Orders",
                ),
            )
        return Answer("reading_your_file", chart, text)
    names = ", ".join(name for name, _ in files)
    return Answer(
        "reading_your_file",
        (),
        f"I received {names}, but this demo reads only CSV files: try the sample file "
        f"{SAMPLE_FILE}.",
    )
