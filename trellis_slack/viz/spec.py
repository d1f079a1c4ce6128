"""What a chart is before it is drawn: its spec, the chart types and limits, and its alt text."""

from __future__ import annotations

from dataclasses import dataclass

from trellis_slack.viz.labels import exact_number

AXIS_TYPES = ("bar", "bar_horizontal", "stacked_bar", "line", "area")
SEGMENT_TYPES = ("pie", "donut")
CHART_TYPES = AXIS_TYPES + SEGMENT_TYPES
BAR_TYPES = ("bar", "bar_horizontal", "stacked_bar")

#: Categories a bar chart can show legibly (on a phone too); the caller keeps the first ones and
#: says so.
MAX_BARS = 30
#: Series drawn at most (the caller folds or drops the rest).
MAX_SERIES = 10
#: Slices of a pie or donut; smaller ones are folded into "Other".
MAX_SLICES = 8
#: Points of a line or area chart (far more than a PNG can show apart).
MAX_POINTS = 10_000
#: Vertical bars above this many categories read better as horizontal bars.
MAX_VERTICAL_BARS = 10

#: Closest supported chart for chart types Trellis may invent; anything else becomes bars.
ALIASES = {
    "column": "bar",
    "columns": "bar",
    "vertical_bar": "bar",
    "histogram": "bar",
    "grouped_bar": "bar",
    "horizontal_bar": "bar_horizontal",
    "barh": "bar_horizontal",
    "hbar": "bar_horizontal",
    "stacked": "stacked_bar",
    "stacked_column": "stacked_bar",
    "stacked_bars": "stacked_bar",
    "line_chart": "line",
    "timeseries": "line",
    "time_series": "line",
    "scatter": "line",
    "spline": "line",
    "area_chart": "area",
    "stacked_area": "area",
    "doughnut": "donut",
    "ring": "donut",
    "pie_chart": "pie",
}
TYPE_NAMES = {
    "bar": "a bar chart",
    "bar_horizontal": "a horizontal bar chart",
    "stacked_bar": "a stacked bar chart",
    "line": "a line chart",
    "area": "an area chart",
    "pie": "a pie chart",
    "donut": "a donut chart",
}
_KIND_NAMES = {
    "bar": "Bar chart",
    "bar_horizontal": "Horizontal bar chart",
    "stacked_bar": "Stacked bar chart",
    "line": "Line chart",
    "area": "Area chart",
    "pie": "Pie chart",
    "donut": "Donut chart",
}


@dataclass(frozen=True, slots=True)
class Series:
    """One series: a value per category (NaN where the data had none)."""

    name: str
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """A chart to draw; built (and capped) by ``viz.render`` from a Trellis payload.

    ``x_label`` names the categories and ``y_label`` the values, whichever way the bars point.
    """

    chart_type: str
    title: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    x_label: str = ""
    y_label: str = ""


def describe(spec: ChartSpec, limit: int = 1000) -> str:
    """Alt text: the chart type, title, axes and the values (cut to ``limit`` characters)."""
    kind = _KIND_NAMES.get(spec.chart_type, "Chart")
    text = f"{kind}: {spec.title}." if spec.title else f"{kind}."
    axes = f"{spec.y_label or 'Value'} by {spec.x_label or 'category'}"
    if (spec.x_label or spec.y_label) and axes.lower() != spec.title.lower():
        text += f" {axes}."
    parts = []
    for series in spec.series:
        points = ", ".join(
            f"{c} {exact_number(v)}" for c, v in zip(spec.categories, series.values, strict=False)
        )
        parts.append(f"{series.name}: {points}" if len(spec.series) > 1 else points)
    text += " " + "; ".join(parts) + "."
    if len(text) > limit:
        text = text[: limit - 1].rsplit(" ", 1)[0] + "…"
    return text
