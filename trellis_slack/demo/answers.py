"""The questions the demo's analyst answers from the sample data, by topic, and those it suggests."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from trellis_slack.demo.data import (
    CATEGORIES,
    CUSTOMERS,
    MONTHLY_GROWTH,
    MONTHS,
    ORDER_VALUE,
    REGIONS,
    ROWS,
    SALES_CHANNELS,
    SAMPLE_FILE,
    daily_rows,
    money,
    orders_by_month,
    orders_by_region,
    percent,
    quarter_of,
    revenue_by_region,
    total_orders,
    total_revenue,
)
from trellis_slack.fakes.trellis_script import Step

__all__ = ["SUGGESTIONS", "Answer", "Suggestion", "match_topic", "topic_of"]


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A question the page offers a first-time visitor, with a short label."""

    label: str
    question: str
    #: A sample file the page attaches to the question (`files.SAMPLE_FILE`), or "".
    attach: str = ""


SUGGESTIONS: Final = (
    Suggestion("Orders by region", "How many orders did each region have in 2025?"),
    Suggestion("Monthly trend", "How did monthly orders develop in 2025?"),
    Suggestion("The West by month", "How did orders develop in the West?"),
    Suggestion("Sales channels", "How do orders split across sales channels?"),
    Suggestion("Category mix", "What is our revenue mix by product category?"),
    Suggestion("Top customers", "Who are our top customers?"),
    Suggestion("Revenue by quarter", "Show revenue by region per quarter"),
    Suggestion("Daily data as CSV", "Export the daily orders of 2025"),
    Suggestion("A file: ask about a CSV", "What is in this file I attached?", SAMPLE_FILE),
    Suggestion("A slow one: try Stop", "Forecast orders for next quarter"),
    Suggestion("An error: try Retry", "Orders by region from the flaky replica"),
)


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class Answer:
    """What one topic answers: a status to show, visualizations, and the final Markdown."""

    doing: str
    visualizations: tuple[Step, ...]
    text: str
    slow: bool = False
    #: The error Trellis gives the first time this is asked (Retry, or an edit, gets the answer).
    fails_first: str | None = None


def _regions() -> Answer:
    orders = orders_by_region()
    ranked = sorted(orders.items(), key=lambda item: item[1], reverse=True)
    total = total_orders()
    (top, top_n), (low, low_n) = ranked[0], ranked[-1]
    lines = "\n".join(f"- **{r}**: {n:,} orders ({percent(n, total)})" for r, n in ranked)
    text = (
        f"In 2025 there were **{total:,} orders**. **{top}** led with {top_n:,}, "
        f"{top_n / low_n:.1f} times as many as **{low}** ({low_n:,}).\n\n{lines}"
    )
    chart = Step.chart(
        "bar",
        list(orders.items()),
        title="Orders by region, 2025",
        x_axis_label="Region",
        y_axis_label="Orders",
    )
    return Answer("querying_orders_by_region", (chart,), text)


def _flaky() -> Answer:
    regions = _regions()
    text = regions.text + "\n\n_The replica answered on the second try._"
    return Answer(
        regions.doing,
        regions.visualizations,
        text,
        fails_first="The query against the orders replica timed out.",
    )


def _trend() -> Answer:
    per_month = orders_by_month()
    values = [{"label": m, **{r: orders_by_month(r)[m] for r in REGIONS}} for m in MONTHS]
    peak = max(per_month, key=lambda m: per_month[m])
    low = min(per_month, key=lambda m: per_month[m])
    growth = per_month["Dec"] / per_month["Jan"] - 1
    text = (
        f"Orders grew through the year: **{per_month['Dec']:,}** in December against "
        f"{per_month['Jan']:,} in January (**+{growth:.0%}**).\n\n"
        f"- The peak was **{peak}** (holiday season), the low point **{low}**.\n"
        f"- Every region follows the same seasonal pattern; **South** grew fastest "
        f"(about {MONTHLY_GROWTH['South']:.1%} a month on top of the season)."
    )
    chart = Step.chart("line", values, title="Monthly orders by region, 2025", x_axis_label="Month")
    return Answer("querying_monthly_orders", (chart,), text)


def _categories() -> Answer:
    revenue = total_revenue()
    values = [(name, round(revenue * share, 2)) for name, share in CATEGORIES]
    first, second = CATEGORIES[0], CATEGORIES[1]
    text = (
        f"Of **{money(revenue)}** revenue in 2025, **{first[0]}** brought in the most "
        f"({first[1]:.0%}), followed by **{second[0]}** ({second[1]:.0%}).\n\n"
        "| Category | Revenue | Share |\n|---|---:|---:|\n"
        + "\n".join(f"| {n} | {money(v)} | {v / revenue:.0%} |" for n, v in values)
    )
    chart = Step.chart("donut", values, title="Revenue by product category, 2025")
    return Answer("querying_revenue_by_category", (chart,), text)


def _daily() -> Answer:
    rows = daily_rows()
    busiest = max(rows, key=lambda r: int(r[2]))
    text = (
        f"Here are all **{len(rows):,} daily rows** of 2025 (every region, every day). "
        "Slack shows the first rows as a table; the whole table is in the CSV file. "
        f"The busiest day for one region was **{busiest[0]}** in the {busiest[1]} "
        f"({busiest[2]:,} orders); Fridays are the strongest day of the week."
    )
    table = Step.table(
        ["Date", "Region", "Orders", "Revenue (USD)"], rows, title="Daily orders, 2025"
    )
    return Answer("querying_daily_orders", (table,), text)


def _customers() -> Answer:
    table = Step.table(
        ["Customer", "Region", "Orders", "Revenue (USD)"],
        [[name, region, n, f"{value:,.2f}"] for name, region, n, value in CUSTOMERS],
        title="Top 20 customers by orders, 2025",
    )
    name, region, n, value = CUSTOMERS[0]
    west = sum(1 for c in CUSTOMERS if c[1] == "West")
    top = len(CUSTOMERS)
    text = (
        f"Your largest customer is **{name}** ({region}) with {n:,} orders worth "
        f"{money(value)}. {west} of the top {top} are in the **West**, the strongest region."
    )
    return Answer("querying_customers", (table,), text)


def _quarters() -> Answer:
    values = []
    for quarter in ("Q1", "Q2", "Q3", "Q4"):
        item: dict[str, Any] = {"label": quarter}
        for region in REGIONS:
            item[region] = round(
                sum(
                    r.revenue for r in ROWS if r.region == region and quarter_of(r.month) == quarter
                )
            )
        values.append(item)
    revenue = revenue_by_region()
    top = max(revenue, key=lambda r: revenue[r])
    q4 = sum(v for k, v in values[3].items() if k != "label")
    text = (
        f"Revenue rose every quarter, to **{money(q4)}** in Q4. **{top}** earned the most "
        f"over the year ({money(revenue[top])}); South's lower order value "
        f"(${ORDER_VALUE['South']:.2f} against ${ORDER_VALUE['East']:.2f} in the East) "
        "keeps it last despite the fastest growth."
    )
    chart = Step.chart(
        "stacked_bar",
        values,
        title="Revenue by region per quarter, 2025",
        x_axis_label="Quarter",
        y_axis_label="Revenue (USD)",
    )
    return Answer("querying_revenue_by_quarter", (chart,), text)


def _order_value() -> Answer:
    values = sorted(ORDER_VALUE.items(), key=lambda item: item[1], reverse=True)
    text = (
        f"The average order was worth **${total_revenue() / total_orders():.2f}**. "
        f"**{values[0][0]}** has the largest baskets (${values[0][1]:.2f}), "
        f"**{values[-1][0]}** the smallest (${values[-1][1]:.2f})."
    )
    chart = Step.chart(
        "bar_horizontal",
        values,
        title="Average order value by region, 2025",
        y_axis_label="USD per order",
    )
    return Answer("querying_order_values", (chart,), text)


def _channels() -> Answer:
    total = total_orders()
    values = [(name, round(total * share)) for name, share in SALES_CHANNELS]
    text = (
        f"**{SALES_CHANNELS[0][0]}** took {SALES_CHANNELS[0][1]:.0%} of the {total:,} orders, "
        f"stores {SALES_CHANNELS[1][1]:.0%} and marketplaces {SALES_CHANNELS[2][1]:.0%}."
    )
    chart = Step.chart("pie", values, title="Orders by sales channel, 2025")
    return Answer("querying_orders_by_channel", (chart,), text)


def _one_region(region: str) -> Answer:
    months = orders_by_month(region)
    total = sum(months.values())
    best = max(months, key=lambda m: months[m])
    text = (
        f"**{region}** had **{total:,} orders** in 2025 ({percent(total, total_orders())} "
        f"of all), worth {money(revenue_by_region()[region])}. Its best month was "
        f"**{best}** with {months[best]:,} orders."
    )
    chart = Step.chart(
        "area",
        list(months.items()),
        title=f"Monthly orders in the {region}, 2025",
        x_axis_label="Month",
        y_axis_label="Orders",
    )
    return Answer(f"querying_orders_in_the_{region.lower()}", (chart,), text)


def _forecast() -> Answer:
    actual = orders_by_month()
    # The new year starts like the last one did, grown by a year of average monthly growth.
    growth = sum(MONTHLY_GROWTH.values()) / len(MONTHLY_GROWTH)
    ahead = {m: round(actual[m] * (1 + growth) ** 12) for m in ("Jan", "Feb", "Mar")}
    values: list[dict[str, Any]] = [{"label": m, "2025": n} for m, n in actual.items()]
    values[-1]["Forecast"] = actual["Dec"]  # the forecast line starts where 2025 ends
    values += [{"label": f"{m} 2026", "Forecast": n} for m, n in ahead.items()]
    change = sum(ahead.values()) / sum(actual[m] for m in ("Jan", "Feb", "Mar")) - 1
    text = (
        f"Next quarter should bring about **{sum(ahead.values()):,} orders** "
        f"({', '.join(f'{m} {n:,}' for m, n in ahead.items())}): down from the holiday "
        f"peak of {actual['Dec']:,} in December, but **{change:+.0%}** on Q1 2025.\n\n"
        "_A simple seasonal projection of the sample data._"
    )
    chart = Step.chart(
        "line", values, title="Monthly orders and forecast for Q1 2026", x_axis_label="Month"
    )
    return Answer("projecting_next_quarter", (chart,), text, slow=True)


_EXAMPLES = "\n".join(f"- {s.question}" for s in SUGGESTIONS if not s.attach)


def _help() -> Answer:
    text = (
        "I'm Trellis, answering from a small **sample dataset**: 2025 orders and revenue by "
        f"region ({', '.join(REGIONS)}) and month, product categories, sales channels and "
        "the top customers. Try for example:\n\n" + _EXAMPLES
    )
    return Answer("reading_the_schema", (), text)


def _unknown(question: str) -> Answer:
    text = (
        "This demo only knows the sample orders data (2025, by region and month), so I "
        f"can't answer “{question.strip()[:200]}”. Questions I can answer:\n\n" + _EXAMPLES
    )
    return Answer("reading_the_schema", (), text)


_REGION_WORD = re.compile(r"\b(north|south|east|west)\b")

#: (pattern, answer) in order: the first pattern found in the question wins.
_TOPICS: Final[tuple[tuple[str, re.Pattern[str], Callable[[], Answer]], ...]] = (
    ("flaky", re.compile(r"flaky|replica|\bfail"), _flaky),
    ("forecast", re.compile(r"forecast|predict|projection|next quarter"), _forecast),
    ("help", re.compile(r"^\s*(help|hi|hello|hey)\b|what can you|what do you know"), _help),
    ("daily", re.compile(r"daily|per day|every day|export|csv|raw data|download"), _daily),
    ("customers", re.compile(r"customer|client|account"), _customers),
    ("categories", re.compile(r"categor|product|mix|breakdown"), _categories),
    ("channels", re.compile(r"channel|online|store|marketplace"), _channels),
    ("order value", re.compile(r"average|order value|basket|aov"), _order_value),
    ("quarters", re.compile(r"quarter|revenue"), _quarters),
)
_TREND = re.compile(r"month|trend|over time|season|growth|develop")
_REGION = re.compile(r"region|where")


def topic_of(question: str) -> str:
    """The name of the topic a question is about (``unknown`` when none matches)."""
    return match_topic(question)[0]


def match_topic(question: str) -> tuple[str, Callable[[], Answer]]:
    text = question.lower()
    for name, pattern, answer in _TOPICS:
        if pattern.search(text):
            return name, answer
    region = _REGION_WORD.search(text)
    if region:
        chosen = region.group(1).capitalize()
        return "one region", lambda: _one_region(chosen)
    if _TREND.search(text):
        return "trend", _trend
    if _REGION.search(text):
        return "regions", _regions
    return "unknown", lambda: _unknown(question)
