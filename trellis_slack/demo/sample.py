"""The demo's bundled data (orders by region and month, 2025) and the scripted analyst answering it."""

from __future__ import annotations

import asyncio
import calendar
import datetime
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from trellis_slack.fakes.trellis_script import Question, Step, split_pieces

__all__ = [
    "CATEGORIES",
    "CUSTOMERS",
    "MONTHS",
    "REGIONS",
    "ROWS",
    "SUGGESTIONS",
    "OrderRow",
    "SampleAnalyst",
    "Suggestion",
    "topic_of",
]

REGIONS: Final = ("North", "South", "East", "West")
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BASE_ORDERS: Final = {"North": 412, "South": 356, "East": 518, "West": 604}
_MONTHLY_GROWTH: Final = {"North": 0.008, "South": 0.021, "East": 0.004, "West": 0.015}
_SEASON: Final = (0.84, 0.79, 0.90, 0.94, 0.98, 1.03, 0.97, 1.00, 1.06, 1.11, 1.27, 1.45)
_ORDER_VALUE: Final = {"North": 84.5, "South": 71.9, "East": 92.3, "West": 88.1}
#: Product categories and their share of revenue.
CATEGORIES: Final[tuple[tuple[str, float], ...]] = (
    ("Electronics", 0.33),
    ("Home & Kitchen", 0.24),
    ("Outdoor", 0.17),
    ("Apparel", 0.15),
    ("Toys", 0.11),
)
#: Sales channels and their share of orders.
_CHANNELS: Final[tuple[tuple[str, float], ...]] = (
    ("Online shop", 0.58),
    ("Stores", 0.29),
    ("Marketplaces", 0.13),
)
#: The largest customers: name, region, orders, revenue in USD.
CUSTOMERS: Final[tuple[tuple[str, str, int, float], ...]] = (
    ("Northwind Traders", "North", 412, 41_890.0),
    ("Blue Harbor Supply", "West", 388, 37_120.5),
    ("Copperline Goods", "East", 351, 35_410.0),
    ("Sunfield Markets", "South", 342, 24_880.2),
    ("Redwood Outfitters", "West", 317, 29_955.9),
    ("Lakeside Home", "North", 298, 25_002.3),
    ("Brightpath Retail", "East", 287, 27_390.0),
    ("Pinecrest Co-op", "West", 264, 22_740.7),
    ("Harborview Stores", "South", 251, 18_110.4),
    ("Eastgate Electronics", "East", 240, 26_640.0),
)

#: Seconds each kind of step takes at ``pace=1`` (a realistic Trellis answer takes a few seconds).
_DELAYS: Final = {
    "starting": 0.2,
    "thinking": 0.7,
    "querying": 1.0,
    "analyzing": 0.8,
    "visualization": 0.5,
    "delta": 0.25,
    "message": 0.2,
    "slow": 3.0,
}


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One row of the sample table: a region's orders and revenue in one month of 2025."""

    region: str
    month: str
    orders: int
    revenue: float


def _rows() -> tuple[OrderRow, ...]:
    rows = []
    for region in REGIONS:
        for index, month in enumerate(MONTHS):
            growth = (1 + _MONTHLY_GROWTH[region]) ** index
            orders = round(_BASE_ORDERS[region] * _SEASON[index] * growth)
            rows.append(OrderRow(region, month, orders, round(orders * _ORDER_VALUE[region], 2)))
    return tuple(rows)


#: The whole sample dataset: 4 regions by 12 months.
ROWS: Final = _rows()


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A question the page offers a first-time visitor, with a short label."""

    label: str
    question: str


SUGGESTIONS: Final = (
    Suggestion("Orders by region", "How many orders did each region have in 2025?"),
    Suggestion("Monthly trend", "How did monthly orders develop in 2025?"),
    Suggestion("Category mix", "What is our revenue mix by product category?"),
    Suggestion("Top customers", "Who are our top customers?"),
    Suggestion("Revenue by quarter", "Show revenue by region per quarter"),
    Suggestion("Daily data as CSV", "Export the daily orders of 2025"),
    Suggestion("A slow one: try Stop", "Forecast orders for next quarter"),
    Suggestion("An error: try Retry", "Orders by region from the flaky replica"),
)


# --------------------------------------------------------------------------- aggregates


def _orders_by_region() -> dict[str, int]:
    return {r: sum(row.orders for row in ROWS if row.region == r) for r in REGIONS}


def _orders_by_month(region: str | None = None) -> dict[str, int]:
    return {
        m: sum(row.orders for row in ROWS if row.month == m and region in (None, row.region))
        for m in MONTHS
    }


def _revenue_by_region() -> dict[str, float]:
    return {r: sum(row.revenue for row in ROWS if row.region == r) for r in REGIONS}


def _quarter(month: str) -> str:
    return f"Q{MONTHS.index(month) // 3 + 1}"


def _total_orders() -> int:
    return sum(row.orders for row in ROWS)


def _total_revenue() -> float:
    return sum(row.revenue for row in ROWS)


def _money(value: float) -> str:
    if value >= 1_000_000:
        return f"${value / 1_000_000:,.2f}M"
    return f"${value:,.0f}"


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%"


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class _Answer:
    """What one topic answers: a status to show, visualizations, and the final Markdown."""

    doing: str
    visualizations: tuple[Step, ...]
    text: str
    slow: bool = False
    #: The error Trellis gives the first time this is asked (Retry, or an edit, gets the answer).
    fails_first: str | None = None


def _regions() -> _Answer:
    orders = _orders_by_region()
    ranked = sorted(orders.items(), key=lambda item: item[1], reverse=True)
    total = _total_orders()
    (top, top_n), (low, low_n) = ranked[0], ranked[-1]
    lines = "\n".join(f"- **{r}**: {n:,} orders ({_percent(n, total)})" for r, n in ranked)
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
    return _Answer("querying_orders_by_region", (chart,), text)


def _flaky() -> _Answer:
    regions = _regions()
    text = regions.text + "\n\n_The replica answered on the second try._"
    return _Answer(
        regions.doing,
        regions.visualizations,
        text,
        fails_first="The query against the orders replica timed out.",
    )


def _trend() -> _Answer:
    per_month = _orders_by_month()
    values = [{"label": m, **{r: _orders_by_month(r)[m] for r in REGIONS}} for m in MONTHS]
    peak = max(per_month, key=lambda m: per_month[m])
    low = min(per_month, key=lambda m: per_month[m])
    growth = per_month["Dec"] / per_month["Jan"] - 1
    text = (
        f"Orders grew through the year: **{per_month['Dec']:,}** in December against "
        f"{per_month['Jan']:,} in January (**+{growth:.0%}**).\n\n"
        f"- The peak was **{peak}** (holiday season), the low point **{low}**.\n"
        f"- Every region follows the same seasonal pattern; **South** grew fastest "
        f"(about {_MONTHLY_GROWTH['South']:.1%} a month on top of the season)."
    )
    chart = Step.chart("line", values, title="Monthly orders by region, 2025", x_axis_label="Month")
    return _Answer("querying_monthly_orders", (chart,), text)


def _categories() -> _Answer:
    revenue = _total_revenue()
    values = [(name, round(revenue * share, 2)) for name, share in CATEGORIES]
    first, second = CATEGORIES[0], CATEGORIES[1]
    text = (
        f"Of **{_money(revenue)}** revenue in 2025, **{first[0]}** brought in the most "
        f"({first[1]:.0%}), followed by **{second[0]}** ({second[1]:.0%}).\n\n"
        "| Category | Revenue | Share |\n|---|---:|---:|\n"
        + "\n".join(f"| {n} | {_money(v)} | {v / revenue:.0%} |" for n, v in values)
    )
    chart = Step.chart("donut", values, title="Revenue by product category, 2025")
    return _Answer("querying_revenue_by_category", (chart,), text)


#: Orders by weekday (Monday first), relative to an average day.
_WEEKDAY: Final = (1.04, 0.98, 0.99, 1.02, 1.12, 0.97, 0.88)


def _daily_rows() -> list[list[Any]]:
    """Every region's orders and revenue on every day of 2025 (1,460 rows)."""
    rows: list[list[Any]] = []
    for row in ROWS:
        month = MONTHS.index(row.month) + 1
        days = calendar.monthrange(2025, month)[1]
        for day in range(1, days + 1):
            date = datetime.date(2025, month, day)
            orders = round(row.orders / days * _WEEKDAY[date.weekday()])
            revenue = round(orders * _ORDER_VALUE[row.region], 2)
            rows.append([date.isoformat(), row.region, orders, f"{revenue:.2f}"])
    rows.sort(key=lambda r: (r[0], REGIONS.index(r[1])))
    return rows


def _daily() -> _Answer:
    rows = _daily_rows()
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
    return _Answer("querying_daily_orders", (table,), text)


def _customers() -> _Answer:
    table = Step.table(
        ["Customer", "Region", "Orders", "Revenue (USD)"],
        [[name, region, n, f"{value:,.2f}"] for name, region, n, value in CUSTOMERS],
        title="Top 10 customers by orders, 2025",
    )
    name, region, n, value = CUSTOMERS[0]
    west = sum(1 for c in CUSTOMERS if c[1] == "West")
    text = (
        f"Your largest customer is **{name}** ({region}) with {n:,} orders worth "
        f"{_money(value)}. {west} of the top 10 are in the **West**, the strongest region."
    )
    return _Answer("querying_customers", (table,), text)


def _quarters() -> _Answer:
    values = []
    for quarter in ("Q1", "Q2", "Q3", "Q4"):
        item: dict[str, Any] = {"label": quarter}
        for region in REGIONS:
            item[region] = round(
                sum(r.revenue for r in ROWS if r.region == region and _quarter(r.month) == quarter)
            )
        values.append(item)
    revenue = _revenue_by_region()
    top = max(revenue, key=lambda r: revenue[r])
    q4 = sum(v for k, v in values[3].items() if k != "label")
    text = (
        f"Revenue rose every quarter, to **{_money(q4)}** in Q4. **{top}** earned the most "
        f"over the year ({_money(revenue[top])}); South's lower order value "
        f"(${_ORDER_VALUE['South']:.2f} against ${_ORDER_VALUE['East']:.2f} in the East) "
        "keeps it last despite the fastest growth."
    )
    chart = Step.chart(
        "stacked_bar",
        values,
        title="Revenue by region per quarter, 2025",
        x_axis_label="Quarter",
        y_axis_label="Revenue (USD)",
    )
    return _Answer("querying_revenue_by_quarter", (chart,), text)


def _order_value() -> _Answer:
    values = sorted(_ORDER_VALUE.items(), key=lambda item: item[1], reverse=True)
    text = (
        f"The average order was worth **${_total_revenue() / _total_orders():.2f}**. "
        f"**{values[0][0]}** has the largest baskets (${values[0][1]:.2f}), "
        f"**{values[-1][0]}** the smallest (${values[-1][1]:.2f})."
    )
    chart = Step.chart(
        "bar_horizontal",
        values,
        title="Average order value by region, 2025",
        y_axis_label="USD per order",
    )
    return _Answer("querying_order_values", (chart,), text)


def _channels() -> _Answer:
    total = _total_orders()
    values = [(name, round(total * share)) for name, share in _CHANNELS]
    text = (
        f"**{_CHANNELS[0][0]}** took {_CHANNELS[0][1]:.0%} of the {total:,} orders, "
        f"stores {_CHANNELS[1][1]:.0%} and marketplaces {_CHANNELS[2][1]:.0%}."
    )
    chart = Step.chart("pie", values, title="Orders by sales channel, 2025")
    return _Answer("querying_orders_by_channel", (chart,), text)


def _one_region(region: str) -> _Answer:
    months = _orders_by_month(region)
    total = sum(months.values())
    best = max(months, key=lambda m: months[m])
    text = (
        f"**{region}** had **{total:,} orders** in 2025 ({_percent(total, _total_orders())} "
        f"of all), worth {_money(_revenue_by_region()[region])}. Its best month was "
        f"**{best}** with {months[best]:,} orders."
    )
    chart = Step.chart(
        "area",
        list(months.items()),
        title=f"Monthly orders in the {region}, 2025",
        x_axis_label="Month",
        y_axis_label="Orders",
    )
    return _Answer(f"querying_orders_in_the_{region.lower()}", (chart,), text)


def _forecast() -> _Answer:
    actual = _orders_by_month()
    # The new year starts like the last one did, grown by a year of average monthly growth.
    growth = sum(_MONTHLY_GROWTH.values()) / len(_MONTHLY_GROWTH)
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
    return _Answer("projecting_next_quarter", (chart,), text, slow=True)


_EXAMPLES = "\n".join(f"- {s.question}" for s in SUGGESTIONS)


def _help() -> _Answer:
    text = (
        "I'm Trellis, answering from a small **sample dataset**: 2025 orders and revenue by "
        f"region ({', '.join(REGIONS)}) and month, product categories, sales channels and "
        "the top customers. Try for example:\n\n" + _EXAMPLES
    )
    return _Answer("reading_the_schema", (), text)


def _unknown(question: str) -> _Answer:
    text = (
        "This demo only knows the sample orders data (2025, by region and month), so I "
        f"can't answer “{question.strip()[:200]}”. Questions I can answer:\n\n" + _EXAMPLES
    )
    return _Answer("reading_the_schema", (), text)


_REGION_WORD = re.compile(r"\b(north|south|east|west)\b")

#: (pattern, answer) in order: the first pattern found in the question wins.
_TOPICS: Final[tuple[tuple[str, re.Pattern[str], Callable[[], _Answer]], ...]] = (
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
    return _match(question)[0]


def _match(question: str) -> tuple[str, Callable[[], _Answer]]:
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


class SampleAnalyst:
    """Answers questions about the sample data as Trellis would, one ``Step`` at a time.

    Every answer shows ``processing`` statuses, then its chart or table, then streams its text
    (``text_delta``) and ends with the ``message``. ``pace`` scales every delay (1 is realistic:
    a few seconds an answer, about 20 s for the forecast; 0 answers at once). The forecast is
    the slow question to try Stop on; with ``hold`` set it also waits for that event, so a
    test can click Stop while it is certainly still running. The question about the "flaky
    replica" fails with a retryable error when first asked, to try Retry on: asked again (Retry
    re-sends it as an edit) it is answered.
    """

    def __init__(self, *, pace: float = 1.0, hold: asyncio.Event | None = None) -> None:
        if pace < 0:
            raise ValueError("pace must be 0 or more")
        self.pace = pace
        self.hold = hold

    def _delay(self, kind: str) -> float:
        return _DELAYS[kind] * self.pace

    def __call__(self, question: Question) -> Sequence[Step]:
        """The steps answering ``question``."""
        _, make = _match(question.text)
        answer = make()
        steps = [
            Step.processing("starting", delay=self._delay("starting")),
            Step.processing("thinking", delay=self._delay("thinking")),
        ]
        if answer.slow:
            for status in (
                "loading_two_years_of_orders",
                "fitting_a_seasonal_model",
                "checking_the_fit_on_2024",
            ):
                steps.append(Step.processing(status, delay=self._delay("slow")))
            if self.hold is not None:
                steps.append(Step.pause(self.hold))
        steps.append(Step.processing(answer.doing, delay=self._delay("querying")))
        if answer.fails_first and not question.is_edit:
            error = Step.error(
                answer.fails_first, code="QUERY_TIMEOUT", retryable=True, delay=self._delay("slow")
            )
            return [*steps, error]
        steps.append(Step.processing("analyzing", delay=self._delay("analyzing")))
        steps += [
            Step(v.event, v.data, delay=self._delay("visualization")) for v in answer.visualizations
        ]
        steps += [
            Step.delta(piece, delay=self._delay("delta")) for piece in split_pieces(answer.text, 4)
        ]
        steps.append(Step.message(answer.text, delay=self._delay("message")))
        return steps
