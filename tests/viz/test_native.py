"""Tests for trellis_slack.viz.native: which charts and tables Slack draws itself, and their blocks."""

from __future__ import annotations

from typing import Any

import pytest

from tests.viz.samples import ORDERS, SALES_TABLE, only, table
from trellis_slack.fakes.slack_data_blocks import data_table_problems, data_visualization_problems
from trellis_slack.viz import native
from trellis_slack.viz.renderer import (
    ChartImage,
    ChartJob,
    NativeChart,
    Rendered,
    Renderer,
    prepare,
    render_sync,
)


def values(count: int, *, label: str = "Item {}", series: int = 1) -> list[dict[str, Any]]:
    """``count`` points per series, labels from ``label``."""
    if series == 1:
        return [{"label": label.format(i), "value": i + 1} for i in range(count)]
    return [
        {"label": label.format(i), "series": f"S{s}", "value": i + s + 1}
        for i in range(count)
        for s in range(series)
    ]


def payload(chart_type: str, items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "type": "chart",
        "chart_type": chart_type,
        "title": extra.pop("title", "Orders by Region"),
        "data": {"values": items, "x_axis_label": "Region", "y_axis_label": "Orders", **extra},
    }


def rendering(body: dict[str, Any], mode: native.ChartsMode = "auto") -> str:
    """``native`` or ``png``: the one way a chart payload is shown (asserts it is exactly one)."""
    prepared = prepare("nv00000000", "chart", body, mode)
    if isinstance(prepared, ChartJob):
        return "png"
    item = only(prepared)
    assert isinstance(item, NativeChart), item
    assert not data_visualization_problems(item.block, "/blocks/0"), item.block
    return "native"


def native_of(body: dict[str, Any], mode: native.ChartsMode = "auto") -> NativeChart:
    item = only(render_sync("nv00000001", "chart", body, mode))
    assert isinstance(item, NativeChart), item
    return item


# --- charts: one rendering each -------------------------------------------------------------

PIE = [{"text": "Online", "value": 60}, {"text": "Retail", "value": 40}]
REPRESENTATIVE = [
    ("bar", values(3), "native"),
    ("bar", values(3, series=3), "native"),
    ("line", values(12), "native"),
    ("area", values(12, series=2), "native"),
    ("pie", PIE, "native"),
    ("bar_horizontal", values(3), "png"),
    ("stacked_bar", values(4, series=3), "png"),
    ("donut", PIE, "png"),
    ("line", values(50), "png"),
    ("bar", values(40), "png"),
    ("pie", values(9), "png"),
    ("bar", values(3, label="A category named at length {}"), "png"),
]


@pytest.mark.parametrize(("chart_type", "items", "expected"), REPRESENTATIVE)
def test_every_chart_type_is_shown_exactly_one_way(
    chart_type: str, items: list[dict[str, Any]], expected: str
) -> None:
    """Each chart is either one native block (valid for Slack) or one PNG to draw, never both."""
    assert rendering(payload(chart_type, items)) == expected


def test_every_trellis_chart_type_is_covered() -> None:
    """The table above holds every chart type Trellis may send."""
    from trellis_slack.viz.spec import CHART_TYPES  # noqa: PLC0415

    assert {c for c, _, _ in REPRESENTATIVE} == set(CHART_TYPES)


def test_contract_example_is_slacks_own_bar_chart() -> None:
    """The contract's bar chart is Slack's documented shape: series of points, axis categories."""
    chart = native_of(ORDERS)
    assert chart.block == {
        "type": "data_visualization",
        "title": "Orders by Region",
        "chart": {
            "type": "bar",
            "series": [
                {
                    "name": "Orders",
                    "data": [
                        {"label": "North", "value": 412},
                        {"label": "South", "value": 289},
                        {"label": "East", "value": 531},
                    ],
                }
            ],
            "axis_config": {
                "categories": ["North", "South", "East"],
                "x_label": "Region",
                "y_label": "Orders",
            },
        },
    }
    assert chart.title == "Orders by Region"
    assert "North 412" in chart.alt_text
    assert chart.note is None


def test_pie_is_segments() -> None:
    """A pie is Slack's segments, one per slice."""
    chart = native_of(payload("pie", PIE))
    assert chart.block["chart"] == {
        "type": "pie",
        "segments": [{"label": "Online", "value": 60}, {"label": "Retail", "value": 40}],
    }


# --- charts: Slack's limits, at the edge ----------------------------------------------------


@pytest.mark.parametrize(
    ("chart_type", "fits", "too_many"),
    [
        ("line", values(20), values(21)),
        ("bar", values(3, series=6), values(3, series=7)),
        ("pie", values(6), values(7)),
        ("bar", values(2, label="{}" + "x" * 19), values(2, label="{}" + "x" * 20)),
    ],
)
def test_limits_hold_at_the_edge(
    chart_type: str, fits: list[dict[str, Any]], too_many: list[dict[str, Any]]
) -> None:
    """20 points, 6 series, 6 slices, 20-character labels are native; one more is a PNG."""
    assert rendering(payload(chart_type, fits)) == "native"
    assert rendering(payload(chart_type, too_many)) == "png"


def test_title_of_fifty_characters_is_native_and_longer_is_a_png() -> None:
    """Slack's title holds 50 characters: a longer title is drawn, not cut."""
    assert rendering(payload("bar", values(3), title="T" * 50)) == "native"
    assert rendering(payload("bar", values(3), title="T" * 51)) == "png"


def test_axis_titles_over_fifty_characters_are_a_png() -> None:
    """Axis titles hold 50 characters in Slack's chart."""
    body = payload("bar", values(3))
    body["data"]["y_axis_label"] = "Y" * 51
    assert rendering(body) == "png"


@pytest.mark.parametrize(
    "items",
    [
        [{"label": "A", "value": 1}, {"label": "B", "value": None}],
        [{"label": "A", "value": 1}, {"label": "A", "value": 2}],
    ],
    ids=["missing value", "repeated category"],
)
def test_data_slack_cannot_hold_is_a_png(items: list[dict[str, Any]]) -> None:
    """A gap in a line, or a category named twice, has no native form: the PNG shows it."""
    assert rendering(payload("line", items)) == "png"


def test_pie_with_a_zero_slice_is_a_png() -> None:
    """Slack's pie segments must be above zero: dropping the zero slice would hide data."""
    assert rendering(payload("pie", [*PIE, {"text": "Phone", "value": 0}])) == "png"


def test_long_series_names_are_a_png() -> None:
    """Legend names hold 20 characters."""
    items = [
        {"label": "A", "series": "N" * 21, "value": 1},
        {"label": "A", "series": "B", "value": 2},
    ]
    assert rendering(payload("bar", items)) == "png"


def test_a_chart_that_shows_part_of_its_data_is_never_native() -> None:
    """Points Trellis sent beyond what a chart shows: the PNG with the data table, as before."""
    prepared = prepare("nv00000002", "chart", payload("bar", values(40)))
    assert isinstance(prepared, ChartJob)
    assert prepared.with_table


# --- modes ----------------------------------------------------------------------------------


def test_png_mode_draws_every_chart() -> None:
    """``png`` is today's behaviour: even a chart Slack could draw is a PNG."""
    assert rendering(payload("bar", values(3)), "png") == "png"


@pytest.mark.parametrize(
    ("chart_type", "items", "kind", "words"),
    [
        ("bar_horizontal", values(3), "bar", "upright"),
        ("stacked_bar", values(3, series=2), "bar", "side by side"),
        ("donut", PIE, "pie", "pie"),
    ],
)
def test_native_mode_uses_slacks_nearest_form_and_says_so(
    chart_type: str, items: list[dict[str, Any]], kind: str, words: str
) -> None:
    """``native`` shows bars upright, stacks side by side, a donut as a pie, with a note."""
    chart = native_of(payload(chart_type, items), "native")
    assert chart.block["chart"]["type"] == kind
    assert chart.note is not None
    assert words in chart.note


def test_native_mode_still_draws_data_that_does_not_fit() -> None:
    """``native`` never cuts data: 21 points are a PNG in every mode."""
    assert rendering(payload("line", values(21)), "native") == "png"


def test_unknown_mode_is_refused() -> None:
    """A mistyped setting fails at start-up rather than silently drawing PNGs."""
    with pytest.raises(ValueError, match="auto, native, png"):
        Renderer(charts="nativ")  # type: ignore[arg-type]


async def test_a_refused_native_chart_can_still_be_drawn() -> None:
    """Should Slack refuse the block, the renderer draws the same chart as a PNG."""
    renderer = Renderer(max_workers=1, charts="auto")
    try:
        chart = only(await renderer.render("nv00000003", "chart", ORDERS))
        assert isinstance(chart, NativeChart)
        drawn: list[Rendered] = await renderer.draw_instead(chart)
        image = only(drawn)
        assert isinstance(image, ChartImage)
        assert image.title == "Orders by Region"
    finally:
        renderer.close()


# --- tables ---------------------------------------------------------------------------------


def sortable(items: list[Rendered]) -> dict[str, Any]:
    message = table(items)
    assert message.native_blocks is not None
    block = message.native_blocks[0]
    assert not data_table_problems(block, "/blocks/0"), block
    return block


def test_table_that_fits_is_a_sortable_data_table_with_numbers_as_numbers() -> None:
    """Numbers are raw_number cells (they sort as numbers) that keep Trellis's formatting."""
    block = sortable(render_sync("nt00000000", "table", {**SALES_TABLE, "title": "Sales"}))
    assert block["caption"] == "Sales"
    assert block["rows"][0] == [
        {"type": "raw_text", "text": "Region"},
        {"type": "raw_text", "text": "Sales"},
    ]
    assert block["rows"][1] == [
        {"type": "raw_text", "text": "North"},
        {"type": "raw_number", "value": 1234000, "text": "1,234,000"},
    ]


def test_the_table_block_stays_as_the_fallback() -> None:
    """The same message keeps today's table block for a workspace that refuses data_table."""
    message = table(render_sync("nt00000001", "table", SALES_TABLE))
    assert message.blocks[0]["type"] == "table"
    assert message.native_blocks is not None
    assert message.csv is None


def test_a_column_with_a_word_sorts_as_text() -> None:
    """A column holding anything but numbers is text throughout (a mixed column cannot sort)."""
    body = {"headers": ["A", "B"], "rows": [["x", "1"], ["y", "n/a"]]}
    block = sortable(render_sync("nt00000002", "table", body))
    assert {c["type"] for row in block["rows"][1:] for c in row} == {"raw_text"}


@pytest.mark.parametrize(
    ("rows", "columns", "native_table"),
    [(100, 20, True), (101, 2, False), (2, 21, False)],
)
def test_table_limits_hold_at_the_edge(rows: int, columns: int, native_table: bool) -> None:
    """100 rows of 20 columns are a data_table; one more row or column keeps the preview."""
    body = {
        "headers": [f"C{c}" for c in range(columns)],
        "rows": [[r * c for c in range(columns)] for r in range(rows)],
    }
    message = table(render_sync("nt00000003", "table", body))
    assert (message.native_blocks is not None) is native_table
    if message.native_blocks is not None:
        assert len(sortable([message])["rows"]) == rows + 1
        assert len(message.native_blocks) == 1  # no "preview" line: the table is whole


def test_table_over_ten_thousand_characters_keeps_the_preview() -> None:
    """Slack's data_table holds 10,000 characters of cells: a larger table is not native."""
    body = {"headers": ["Text"], "rows": [["x" * 200] for _ in range(51)]}
    assert table(render_sync("nt00000004", "table", body)).native_blocks is None


def test_png_mode_keeps_tables_as_table_blocks() -> None:
    """``png`` is today's behaviour for tables too: no data_table."""
    message = table(render_sync("nt00000005", "table", SALES_TABLE, "png"))
    assert message.native_blocks is None
