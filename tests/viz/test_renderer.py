"""Tests for trellis_slack.viz.render: payload validation and fallbacks (drawn in this process)."""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

import pytest

from tests.viz.samples import (
    ORDERS,
    PNG_SIGNATURE,
    SALES_TABLE,
    cells,
    chart,
    context,
    image,
    note,
    table,
)
from trellis_slack.viz.renderer import (
    ChartImage,
    NativeChart,
    TableMessage,
    VisualizationNote,
    render_sync,
)

# --- charts -------------------------------------------------------------------------------


def test_contract_example_becomes_a_titled_png_with_alt_text() -> None:
    """The contract's bar chart becomes a PNG named after its title, with descriptive alt text."""
    result = image(render_sync("ab12xy3456", "chart", ORDERS, charts="png"))
    assert result.viz_id == "ab12xy3456"
    assert result.png.startswith(PNG_SIGNATURE)
    assert result.filename == "orders-by-region.png"
    assert result.title == "Orders by Region"
    assert result.alt_text == "Bar chart: Orders by Region. North 412, South 289, East 531."
    assert result.note is None


@pytest.mark.parametrize(
    ("chart_type", "name"),
    [
        ("bar", "Bar chart"),
        ("bar_horizontal", "Horizontal bar chart"),
        ("stacked_bar", "Stacked bar chart"),
        ("line", "Line chart"),
        ("area", "Area chart"),
    ],
)
def test_every_axis_chart_type_is_drawn(chart_type: str, name: str) -> None:
    """Each axis chart type in the protocol gives a chart image, its alt text naming the type."""
    payload = {**ORDERS, "chart_type": chart_type}
    result = image(render_sync("ab12xy3456", "chart", payload, charts="png"))
    assert result.png.startswith(PNG_SIGNATURE)
    assert result.alt_text.startswith(f"{name}: Orders by Region.")
    assert result.note is None


@pytest.mark.parametrize("label_key", ["text", "label"])
@pytest.mark.parametrize("chart_type", ["pie", "donut"])
def test_segment_charts_accept_text_and_label(chart_type: str, label_key: str) -> None:
    """Pie and donut slices may be named by "text" (v-current) or "label" (v-seed)."""
    values = [{label_key: "Open", "value": 45}, {label_key: "Closed", "value": 120}]
    result = image(render_sync("pp00000000", "chart", chart(chart_type, values), charts="png"))
    assert "Open 45, Closed 120" in result.alt_text
    assert result.note is None


def test_numeric_strings_are_read_as_numbers() -> None:
    """Values sent as formatted strings ("1,234") are charted as numbers."""
    values = [{"label": "A", "value": "1,234"}, {"label": "B", "value": "$2.5K"}]
    result = image(render_sync("ns00000000", "chart", chart("bar", values), charts="png"))
    assert "A 1,234, B 2,500" in result.alt_text


def test_stacked_bar_pivots_series_keys() -> None:
    """stacked_bar items carrying a series key become one series per key."""
    values = [
        {"label": "Q1", "series": "Online", "value": 10},
        {"label": "Q1", "series": "Retail", "value": 5},
        {"label": "Q2", "series": "Online", "value": 20},
    ]
    result = image(render_sync("sb00000000", "chart", chart("stacked_bar", values), charts="png"))
    assert "Online: Q1 10, Q2 20; Retail: Q1 5, Q2 0" in result.alt_text


def test_stacked_bar_accepts_one_key_per_series() -> None:
    """Items like {"label": "Q1", "Online": 3, "Retail": 4} give one series per numeric key."""
    values = [{"label": "Q1", "Online": 3, "Retail": 4}, {"label": "Q2", "Online": 5, "Retail": 6}]
    result = image(render_sync("sw00000000", "chart", chart("stacked_bar", values), charts="png"))
    assert "Online: Q1 3, Q2 5; Retail: Q1 4, Q2 6" in result.alt_text


def test_unknown_chart_type_is_drawn_as_the_closest_chart_with_a_note() -> None:
    """An unknown chart type is drawn as bars (or its alias) and the note says so."""
    result = image(
        render_sync("uk00000000", "chart", {**ORDERS, "chart_type": "radar"}, charts="png")
    )
    assert result.note == "Unknown chart type “radar”, drawn as a bar chart."
    result = image(
        render_sync("uk00000001", "chart", {**ORDERS, "chart_type": "doughnut"}, charts="png")
    )
    assert result.note == "Unknown chart type “doughnut”, drawn as a donut chart."
    assert result.alt_text.startswith("Donut chart")


def test_pie_with_negative_values_becomes_bars_with_a_note() -> None:
    """A pie that has negative values is drawn as bars and the note explains why."""
    values = [{"text": "In", "value": 5}, {"text": "Out", "value": -2}]
    result = image(render_sync("pn00000000", "chart", chart("pie", values), charts="png"))
    assert result.note == "This pie chart has negative values, so it is drawn as bars."
    assert result.alt_text.startswith("Bar chart")


def test_too_many_bars_draws_the_first_ones_and_adds_the_data_table() -> None:
    """A bar chart of 1,000 categories draws the first 30 and posts all the data as a table."""
    values = [{"label": f"SKU {i}", "value": i} for i in range(1000)]
    first, second = render_sync("mb00000000", "chart", chart("bar", values))
    assert isinstance(first, ChartImage)
    assert isinstance(second, TableMessage)
    assert first.note is not None
    assert "first 30 of 1,000 bars" in first.note
    assert second.csv is not None
    assert len(list(csv.reader(io.StringIO(second.csv.decode())))) == 1001


def test_missing_values_leave_gaps_instead_of_failing() -> None:
    """A null value in a line chart is a gap, not an error."""
    values = [{"label": "Mon", "value": 3}, {"label": "Tue", "value": None}]
    result = image(render_sync("gp00000000", "chart", chart("line", values), charts="png"))
    assert "Tue no value" in result.alt_text


# --- tables -------------------------------------------------------------------------------


def test_contract_table_becomes_one_table_block_without_csv() -> None:
    """The contract's table becomes one table block; small tables need no CSV."""
    result = table(render_sync("kl78mn9012", "table", SALES_TABLE))
    assert [b["type"] for b in result.blocks] == ["table"]
    assert cells(result) == [
        ["Region", "Sales"],
        ["North", "1,234,000"],
        ["South", "987,500"],
        ["East", "2,100,000"],
    ]
    assert result.csv is None
    assert result.csv_filename is None
    assert result.title == "Table: Region, Sales"
    assert result.text == "Table: Region, Sales (3 rows)"


def test_large_table_is_a_preview_plus_a_full_csv() -> None:
    """A 2,345-row, 31-column table shows a preview saying so, and the CSV has everything."""
    payload = {
        "id": "bigtable00",
        "type": "table",
        "title": "Orders 2024",
        "headers": [f"C{c}" for c in range(31)],
        "rows": [[f"{r}-{c}" for c in range(31)] for r in range(2345)],
    }
    result = table(render_sync("bigtable00", "table", payload))
    assert len(result.blocks[0]["rows"]) == 100
    assert "showing 99 of 2,345 rows · 20 of 31 columns" in context(result)
    assert result.csv_filename == "orders-2024.csv"
    assert result.csv is not None
    rows = list(csv.reader(io.StringIO(result.csv.decode())))
    assert len(rows) == 2346
    assert rows[-1][-1] == "2344-30"


def test_rows_as_objects_are_accepted() -> None:
    """Rows given as objects keyed by header are shown like list rows."""
    payload = {"headers": ["Region", "Sales"], "rows": [{"Region": "North", "Sales": 1}]}
    assert cells(table(render_sync("ro00000000", "table", payload)))[1] == ["North", "1"]


def test_empty_table_keeps_its_header_and_says_there_are_no_rows() -> None:
    """A table with headers but no rows still shows the header with a short note."""
    result = table(render_sync("et00000000", "table", {"headers": ["A", "B"], "rows": []}))
    assert cells(result) == [["A", "B"]]
    assert context(result) == "The table has no rows."


# --- bad payloads -------------------------------------------------------------------------


def test_value_that_is_not_a_number_shows_the_data_as_a_table_with_a_note() -> None:
    """A non-numeric value makes the chart a table of exactly what Trellis sent, with a note."""
    values = [{"label": "North", "value": 412}, {"label": "East", "value": "n/a"}]
    payload = {
        "chart_type": "bar",
        "title": "Orders",
        "data": {"values": values, "x_axis_label": "Region", "y_axis_label": "Orders"},
    }
    result = table(render_sync("nn00000000", "chart", payload))
    assert cells(result) == [["Region", "Orders"], ["North", "412"], ["East", "n/a"]]
    assert result.note is not None
    assert "could not be drawn" in result.note
    assert "“East”" in result.note
    assert result.note in context(result)
    assert result.title == "Orders"


@pytest.mark.parametrize(
    ("kind", "payload", "words"),
    [
        ("chart", {"chart_type": "bar"}, "it had no data"),
        ("chart", {"chart_type": "bar", "data": {"x_axis_label": "A"}}, "it had no data"),
        ("chart", chart("bar", []), "no data points"),
        ("chart", chart("bar", "oops"), "unreadable"),
        ("table", {"headers": ["A"], "rows": "oops"}, "rows were unreadable"),
        ("table", {"headers": ["A"]}, "it had no rows"),
        ("table", {"headers": [], "rows": []}, "it was empty"),
        ("heatmap", {"cells": 3}, "cannot be shown"),
    ],
)
def test_unshowable_payloads_give_a_short_note(
    kind: str, payload: dict[str, Any], words: str
) -> None:
    """Missing data, empty charts, rows that are not a list and unknown kinds give a plain note."""
    result = note(render_sync("bad0000000", kind, payload))
    assert result.viz_id == "bad0000000"
    assert words in result.text


ODD_PAYLOADS: list[tuple[str, object]] = [
    ("chart", None),
    ("chart", []),
    ("chart", {"data": None}),
    ("chart", {"data": [1, 2, 3]}),
    ("chart", {"data": {"values": [None, {"label": "a"}]}}),
    ("chart", {"data": {"values": {"a": 1, "b": "x"}}}),
    ("chart", {"chart_type": 7, "data": {"values": [{"label": ["x"], "value": True}]}}),
    ("chart", {"chart_type": "pie", "data": {"values": [{"text": "a", "value": 0}]}}),
    ("chart", {"chart_type": "line", "data": {"values": [{"value": 1e300}, {"value": -1e300}]}}),
    ("chart", {"chart_type": "area", "data": {"values": [{"label": "a", "value": float("nan")}]}}),
    ("chart", {"chart_type": "bar", "data": {"values": [{"label": "x", "value": "1e999"}]}}),
    ("chart", {"chart_type": "stacked_bar", "data": {"values": [{"series": "s", "value": 1}]}}),
    ("table", {"headers": "A,B", "rows": [[1, 2]]}),
    ("table", {"headers": [None, {"x": 1}], "rows": [[1], 2, None, {"z": 1}]}),
    ("table", {"rows": [[float("inf"), -0.0, 10**30]]}),
    ("other", {"rows": [[1]]}),
    ("", {}),
]


@pytest.mark.parametrize(("kind", "payload"), ODD_PAYLOADS)
def test_odd_payloads_never_raise(kind: str, payload: Any) -> None:
    """Whatever arrives, rendering returns something to show and never raises."""
    results = render_sync("odd0000000", kind, payload)
    assert results
    assert all(
        isinstance(r, NativeChart | ChartImage | TableMessage | VisualizationNote) for r in results
    )


def test_megabyte_payload_is_capped_quickly_and_says_so() -> None:
    """A chart of 300,000 points (megabytes) is drawn from its first 10,000, and says so."""
    values = [{"label": f"2024-01-01T00:{i:06d}", "value": i % 997} for i in range(300_000)]
    first, second = render_sync("mega000000", "chart", chart("line", values))
    assert isinstance(first, ChartImage)
    assert first.note == "Only the first 10,000 of 300,000 points are used."
    assert isinstance(second, TableMessage)
    assert "of 300,000 rows" in context(second)


def test_payload_text_cannot_mention_everyone() -> None:
    """Text from the payload shown in Slack mrkdwn is escaped: no @channel, no hidden links."""
    drawn = image(
        render_sync("esc0000000", "chart", {**ORDERS, "chart_type": "<!channel>"}, charts="png")
    )
    assert drawn.note == "Unknown chart type “&lt;!channel&gt;”, drawn as a bar chart."
    shown = table(render_sync("esc0000001", "table", {**SALES_TABLE, "title": "<!here> & co"}))
    assert shown.text == "&lt;!here&gt; &amp; co (3 rows)"
    values = [{"label": "<@U123>", "value": "<b>"}]
    fallback = table(render_sync("esc0000002", "chart", chart("bar", values)))
    assert "<" not in context(fallback)
    assert fallback.note is not None
    assert "<" not in fallback.note
    unknown = note(render_sync("esc0000003", "<!channel>", {"x": 1}))
    assert "<" not in unknown.text


def test_logs_name_the_visualization_but_not_its_data(caplog: pytest.LogCaptureFixture) -> None:
    """A bad payload is logged with its id, never with its contents."""
    values = [{"label": "secret-customer", "value": "secret-value"}]
    with caplog.at_level(logging.DEBUG, logger="trellis_slack.viz"):
        render_sync("logid00000", "chart", chart("bar", values))
    assert "logid00000" in caplog.text
    assert "secret" not in caplog.text
