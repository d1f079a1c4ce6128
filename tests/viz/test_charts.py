"""Tests for trellis_slack.viz.charts: the matplotlib figures and their PNGs."""

from __future__ import annotations

import math
import struct
import sys
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.colors import same_color, to_hex
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.patches import Rectangle, Wedge
from matplotlib.path import Path
from matplotlib.text import Text

from trellis_slack.viz import charts
from trellis_slack.viz.charts import PALETTE, ChartSpec, CompactFormatter, Series

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def spec(
    chart_type: str,
    values: Mapping[str, float],
    *,
    title: str = "Orders by Region",
    x_label: str = "Region",
    y_label: str = "Orders",
) -> ChartSpec:
    return ChartSpec(
        chart_type=chart_type,
        title=title,
        categories=tuple(values),
        series=(Series("Value", tuple(values.values())),),
        x_label=x_label,
        y_label=y_label,
    )


def drawn(chart: ChartSpec) -> tuple[Figure, Axes]:
    figure = charts.build_figure(chart)
    figure.canvas.draw()
    return figure, figure.axes[0]


def bars(axes: Axes) -> list[Rectangle]:
    return [p for c in axes.containers for p in c if isinstance(p, Rectangle)]


def stacks(axes: Axes) -> list[list[tuple[float, float, float, float]]]:
    """Each series' segments of a stacked bar chart as (left, right, bottom, top) in data units.

    A stacked chart draws each series as one shape of rectangles, not a bar patch per segment,
    so the segments are read from the shape's paths: the same rectangles the reader sees.
    """
    shapes = [c for c in axes.collections if c.get_gid() == charts.STACK_GID]
    return [
        [(box.x0, box.x1, box.y0, box.y1) for box in map(Path.get_extents, shape.get_paths())]
        for shape in shapes
    ]


def tick_texts(labels: Sequence[Text]) -> list[str]:
    return [t.get_text() for t in labels]


def legend_of(axes: Axes) -> Legend:
    legend = axes.get_legend()
    assert legend is not None
    return legend


def categories(axes: Axes) -> list[str]:
    """The category names written beside horizontal bars, top to bottom."""
    return [t.get_text() for t in axes.texts if t.get_gid() == charts.CATEGORY_GID]


def png_size(png: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png[16:24])
    return width, height


REGIONS = {"North": 412, "South": 289, "East": 531}


def test_bar_chart_has_axis_labels_one_bar_per_category_and_value_labels() -> None:
    """A bar chart shows both axis labels, a bar per category and each bar's value."""
    _figure, axes = drawn(spec("bar", REGIONS))
    assert axes.get_xlabel() == "Region"
    assert axes.get_ylabel() == "Orders"
    assert [b.get_height() for b in bars(axes)] == [412, 289, 531]
    assert tick_texts(axes.get_xticklabels()) == ["North", "South", "East"]
    assert [t.get_text() for t in axes.texts] == ["412", "289", "531"]


def test_value_axis_uses_thousands_separators_and_units() -> None:
    """The value axis reads 1,000 / 2,000 for thousands and 1M / 2M for millions."""
    _, axes = drawn(spec("bar", {"A": 1200, "B": 4100}))
    assert "2,000" in tick_texts(axes.get_yticklabels())
    _, axes = drawn(spec("bar", {"A": 1_234_000, "B": 2_100_000}))
    labels = tick_texts(axes.get_yticklabels())
    assert "0" in labels
    assert "1.0M" in labels or "1M" in labels
    assert all(label == "0" or label.endswith("M") for label in labels)


def test_many_categories_turn_a_bar_chart_horizontal() -> None:
    """More than ten categories are drawn as horizontal bars, first category on top."""
    values = {f"Store {i}": float(i) for i in range(15)}
    figure, axes = drawn(spec("bar", values))
    assert len(bars(axes)) == 15
    assert categories(axes)[:2] == ["Store 0", "Store 1"]
    assert axes.yaxis_inverted()
    title = [t.get_text() for t in axes.texts if t.get_gid() == charts.CATEGORY_TITLE_GID]
    assert title == ["Region"]
    assert axes.get_xlabel() == "Orders"
    assert figure.get_figheight() > charts.HEIGHT_IN


def test_long_labels_are_wrapped_and_truncated() -> None:
    """A very long category label is cut to two short lines ending in an ellipsis."""
    label = "An extremely long category name that would never fit under one bar " * 2
    _, axes = drawn(spec("bar", {label: 1, "Short": 2}))
    first = categories(axes)[0]
    assert first.count("\n") == 1
    assert first.endswith("…")
    assert max(len(line) for line in first.split("\n")) <= 26


def test_very_many_bars_get_one_line_labels() -> None:
    """With more than twenty bars each label is one line, so the bars stay close together."""
    values = {f"A rather long product name number {i}": float(i) for i in range(30)}
    _, axes = drawn(spec("bar", values))
    names = categories(axes)
    assert len(names) == 30
    assert all("\n" not in n and len(n) <= 34 for n in names)


def test_horizontal_bar_chart_points_right() -> None:
    """A bar_horizontal chart draws bar widths from the values, categories on the y axis."""
    _, axes = drawn(spec("bar_horizontal", REGIONS))
    assert [b.get_width() for b in bars(axes)] == [412, 289, 531]
    assert categories(axes) == ["North", "South", "East"]


def test_stacked_bars_stack_every_series_and_label_totals() -> None:
    """A stacked bar chart stacks each series on the previous one and labels the totals.

    Each series is one shape of rectangles rather than a patch per segment (the PNG is the
    same, pixel for pixel), so the segments are counted and measured on those shapes.
    """
    chart = ChartSpec(
        "stacked_bar",
        "Orders by quarter",
        ("Q1", "Q2"),
        (Series("Online", (10.0, 20.0)), Series("Retail", (5.0, 7.0))),
        "Quarter",
        "Orders",
    )
    _figure, axes = drawn(chart)
    online, retail = stacks(axes)
    assert [(bottom, top) for _, _, bottom, top in online] == [(0.0, 10.0), (0.0, 20.0)]
    assert [(bottom, top) for _, _, bottom, top in retail] == [(10.0, 15.0), (20.0, 27.0)]
    assert [(left + right) / 2 for left, right, _, _ in retail] == [0.0, 1.0]
    assert all(right - left == pytest.approx(0.6) for left, right, _, _ in retail)
    assert [t.get_text() for t in axes.texts] == ["15", "27"]
    assert [t.get_text() for t in legend_of(axes).get_texts()] == ["Online", "Retail"]


def test_stacked_totals_sit_on_top_of_their_stacks() -> None:
    """A stack's total is written just past its end: above upright stacks, right of lying ones."""
    series = (Series("Online", (10.0, 20.0)), Series("Retail", (5.0, 7.0)))
    _, axes = drawn(ChartSpec("stacked_bar", "t", ("Q1", "Q2"), series))
    assert [t.xy for t in axes.texts] == [(0, 15.0), (1, 27.0)]  # type: ignore[attr-defined]
    assert {(t.get_horizontalalignment(), t.get_verticalalignment()) for t in axes.texts} == {
        ("center", "bottom")
    }
    names = tuple(f"Store {i}" for i in range(12))
    lying = (Series("A", tuple(1.0 for _ in names)), Series("B", tuple(2.0 for _ in names)))
    _, axes = drawn(ChartSpec("stacked_bar", "t", names, lying))
    totals = [t for t in axes.texts if t.get_gid() != charts.CATEGORY_GID]
    assert [t.xy for t in totals] == [(3.0, i) for i in range(12)]  # type: ignore[attr-defined]
    assert {(t.get_horizontalalignment(), t.get_verticalalignment()) for t in totals} == {
        ("left", "center")
    }


def test_stacked_series_keep_their_colour_in_the_legend() -> None:
    """Each series' segments share one palette colour, and its legend swatch shows that colour."""
    series = (Series("In", (1.0, 2.0)), Series("Out", (3.0, 4.0)), Series("Fees", (1.0, 1.0)))
    _, axes = drawn(ChartSpec("stacked_bar", "t", ("Q1", "Q2"), series))
    shapes = [c for c in axes.collections if c.get_gid() == charts.STACK_GID]
    colours = [c.lower() for c in PALETTE[:3]]
    assert [[to_hex(c) for c in np.asarray(shape.get_facecolor())] for shape in shapes] == [
        [c] for c in colours
    ]
    swatches = legend_of(axes).get_patches()
    assert len(swatches) == 3
    assert all(same_color(p.get_facecolor(), c) for p, c in zip(swatches, colours, strict=True))


def test_stacked_bars_put_negative_parts_below_zero() -> None:
    """Negative parts of a stacked bar hang below the axis instead of eating into the positives.

    Measured on each series' shape of rectangles (see the test above).
    """
    chart = ChartSpec(
        "stacked_bar",
        "Net",
        ("Q1",),
        (Series("In", (10.0,)), Series("Out", (-4.0,)), Series("Fees", (-1.0,))),
    )
    _, axes = drawn(chart)
    spans = [[(bottom, top) for _, _, bottom, top in shape] for shape in stacks(axes)]
    assert spans == [[(0.0, 10.0)], [(-4.0, 0.0)], [(-5.0, -4.0)]]
    assert not axes.texts  # no total is written where parts cancel out


def test_negative_values_get_a_zero_line_and_their_own_colour() -> None:
    """Negative bars are drawn in a contrasting colour with a line at zero."""
    _, axes = drawn(spec("bar", {"Gain": 5, "Loss": -3}))
    gain, loss = bars(axes)
    assert gain.get_facecolor() != loss.get_facecolor()
    assert any(line.get_ydata()[0] == 0 for line in axes.lines)  # type: ignore[index]


def test_line_chart_draws_every_point_with_at_most_eight_labels() -> None:
    """A line chart of 100 points draws one line through all of them with a few x labels."""
    values = {f"2024-{i:03d}": float(i * i) for i in range(100)}
    _, axes = drawn(spec("line", values, x_label="Day", y_label="Users"))
    (line,) = axes.lines
    assert len(line.get_xdata()) == 100  # type: ignore[arg-type]
    labels = tick_texts(axes.get_xticklabels())
    assert 2 <= len(labels) <= 8
    assert labels[0] == "2024-000"


def test_area_chart_fills_under_the_line() -> None:
    """An area chart fills between its line and zero."""
    _, axes = drawn(spec("area", {"Jan": 3, "Feb": -1, "Mar": 4}))
    assert any(isinstance(c, PolyCollection) for c in axes.collections)
    assert len(axes.lines) >= 1


def test_multi_series_line_chart_has_a_line_and_legend_entry_per_series() -> None:
    """Several series in a line chart give one line and one legend entry each."""
    chart = ChartSpec(
        "line",
        "Users",
        ("Mon", "Tue", "Wed"),
        (Series("Web", (1.0, 2.0, 3.0)), Series("App", (2.0, math.nan, 1.0))),
    )
    _figure, axes = drawn(chart)
    assert len(axes.lines) == 2
    assert [t.get_text() for t in legend_of(axes).get_texts()] == ["Web", "App"]


def test_single_point_line_chart_is_visible() -> None:
    """A line chart with one point shows a marker and an axis that starts at zero."""
    _, axes = drawn(spec("line", {"2024": 5}))
    assert axes.lines[0].get_marker() == "o"
    low, high = axes.get_ylim()
    assert low <= 0
    assert high > 5


def test_all_zero_data_gets_a_sensible_axis() -> None:
    """All-zero bars still get a 0-to-1 axis instead of a collapsed one."""
    _, axes = drawn(spec("bar", {"A": 0, "B": 0}))
    assert axes.get_ylim() == (0.0, 1.0)
    assert [t.get_text() for t in axes.texts] == ["0", "0"]


def test_pie_chart_has_a_wedge_and_legend_entry_per_slice() -> None:
    """A pie chart draws one wedge per slice with value and share in the legend."""
    figure, axes = drawn(spec("pie", {"Open": 45, "Closed": 55}))
    wedges = [p for p in axes.patches if isinstance(p, Wedge)]
    assert len(wedges) == 2
    assert [t.get_text() for t in figure.legends[0].get_texts()] == [
        "Open  45 (45%)",
        "Closed  55 (55%)",
    ]


def test_pie_with_many_slices_folds_the_smallest_into_other() -> None:
    """A pie of twelve slices shows the seven largest and one grey "Other (5)" slice."""
    values = {f"Vendor {c}": float(v) for c, v in zip("ABCDEFGHIJKL", range(1, 13), strict=True)}
    figure, axes = drawn(spec("pie", values))
    wedges = [p for p in axes.patches if isinstance(p, Wedge)]
    assert len(wedges) == charts.MAX_SLICES
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend[-1].startswith("Other (5)  15")
    assert "Vendor L  12" in legend[-2]


def test_donut_is_a_ring_with_the_total_in_the_middle() -> None:
    """A donut chart draws ring wedges and writes the total in its hole."""
    _, axes = drawn(spec("donut", {"Open": 12_000, "Closed": 34_000}))
    wedges = [p for p in axes.patches if isinstance(p, Wedge)]
    assert len(wedges) == 2
    assert all(w.width is not None and w.width < 1 for w in wedges)
    assert "46K\nTotal" in [t.get_text() for t in axes.texts]


def test_pie_that_cannot_be_a_pie_is_drawn_as_bars() -> None:
    """A pie with negative values falls back to bars rather than failing."""
    _, axes = drawn(spec("pie", {"A": 5, "B": -2}))
    assert len(bars(axes)) == 2


@pytest.mark.parametrize("chart_type", charts.CHART_TYPES)
def test_every_chart_type_renders_a_png_of_the_preview_size(chart_type: str) -> None:
    """Every chart type gives a PNG twice Slack's display width, small enough to upload quickly."""
    png = charts.render_png(spec(chart_type, REGIONS))
    assert png.startswith(PNG_SIGNATURE)
    width, height = png_size(png)
    assert width == 2 * charts.DISPLAY_WIDTH_PX
    assert height == round(charts.HEIGHT_IN * charts.DPI)
    assert 5_000 < len(png) < 400_000


def test_dollar_signs_are_text_not_mathematics() -> None:
    """Labels and legends from the data show "$x$ plan" as written, not as maths."""
    chart = ChartSpec(
        "line",
        "Price $5 to $10",
        ("$a$", "b"),
        (Series("$x$ plan", (1.0, 2.0)), Series("_y", (2.0, 1.0))),
        "$ spent",
        "Cost ($)",
    )
    figure, axes = drawn(chart)
    texts = [
        *figure.texts,
        axes.xaxis.label,
        axes.yaxis.label,
        *axes.get_xticklabels(),
        *legend_of(axes).get_texts(),
    ]
    assert [t.get_text() for t in legend_of(axes).get_texts()] == ["$x$ plan", "_y"]
    assert not any(t.get_parse_math() for t in texts)


def test_rendering_never_touches_pyplot() -> None:
    """Drawing a chart uses the object API only: pyplot (global figure state) is never loaded."""
    charts.render_png(spec("line", REGIONS))
    assert "matplotlib.pyplot" not in sys.modules


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (412, "412"),
        (1234, "1,234"),
        (12.5, "12.5"),
        (0.042, "0.042"),
        (15_000, "15K"),
        (-4_000, "-4,000"),
        (987_500, "988K"),
        (12_345, "12.3K"),
        (1_234_000, "1.2M"),
        (2_100_000, "2.1M"),
        (3_400_000_000, "3.4B"),
        (math.nan, ""),
    ],
)
def test_format_number(value: float, text: str) -> None:
    """Labels use thousands separators below 10,000 and K/M/B above, to one decimal."""
    assert charts.format_number(value) == text


def test_labels_side_by_side_share_a_unit() -> None:
    """With a scale, small values use the chart's unit ("-4K" next to "15K")."""
    assert charts.format_number(-4_000, scale=15_000) == "-4K"


def test_small_values_beside_large_ones_keep_their_own_value() -> None:
    """A bar of 412 next to one of 1.23M is labelled "412", never "0"."""
    assert charts.format_number(412, scale=1_234_567) == "412"
    assert charts.format_number(-4, scale=15_000) == "-4"


def test_compact_formatter_shares_unit_and_decimals_across_ticks() -> None:
    """Axis ticks share one unit and just enough decimals: 0, 0.5M, 1.0M, 1.5M."""
    formatter = CompactFormatter()
    ticks = [0.0, 500_000.0, 1_000_000.0, 1_500_000.0]
    assert formatter.format_ticks(ticks) == ["0", "0.5M", "1.0M", "1.5M"]
    assert formatter.format_ticks([0.0, 2500.0, 5000.0]) == ["0", "2,500", "5,000"]


def test_alt_text_says_type_title_axes_and_values() -> None:
    """The alt text names the chart type, the title, the axes and every value in full."""
    text = charts.describe(spec("bar", {"North": 1_234_000, "South": 987_500}, title="Sales"))
    assert text == "Bar chart: Sales. Orders by Region. North 1,234,000, South 987,500."


def test_alt_text_fits_slacks_limit() -> None:
    """Alt text for a thousand points is cut below Slack's 1,000-character limit."""
    text = charts.describe(spec("line", {f"Day {i}": i for i in range(1000)}))
    assert len(text) <= 1000
    assert text.endswith("…")


def test_fold_slices_keeps_order_of_the_kept_slices() -> None:
    """Folding keeps the largest slices in their original order and sums the rest."""
    labels, values = charts.fold_slices(["a", "b", "c", "d"], [1.0, 9.0, 2.0, 8.0], limit=3)
    assert labels == ["b", "d", "Other (2)"]
    assert values == [9.0, 8.0, 3.0]
