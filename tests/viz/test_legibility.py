"""The PNG charts as a reader sees them in Slack: text size at display width, overlaps, colours."""

from __future__ import annotations

import itertools
import struct
import zlib
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from trellis_slack.viz import charts
from trellis_slack.viz.charts import ChartSpec, Series
from trellis_slack.viz.kinds import PALETTE


def spec(chart_type: str, categories: list[str], series: int = 1, **extra: str) -> ChartSpec:
    return ChartSpec(
        chart_type=chart_type,
        title=extra.get("title", "Revenue by store"),
        categories=tuple(categories),
        series=tuple(
            Series(
                f"Channel {s}", tuple(1_000.0 * (i + 1) * (s + 1) for i in range(len(categories)))
            )
            for s in range(series)
        ),
        x_label="Store",
        y_label=extra.get("y_label", "Revenue (USD)"),
    )


SHORT = ["North", "South", "East", "West"]
LONG = [f"Store number {i} on the high street" for i in range(12)]
DATES = [f"2026-{m:02d}-{d:02d}" for m in range(1, 4) for d in range(1, 29, 3)]
SAMPLES = [
    *((t, SHORT, 1) for t in charts.CHART_TYPES),
    ("bar", LONG, 1),
    ("bar", [f"Week {i}" for i in range(9)], 1),
    ("stacked_bar", LONG, 3),
    ("bar", SHORT, 3),
    ("line", DATES, 2),
    ("area", DATES, 1),
    ("pie", LONG[:8], 1),
]


def drawn(chart: ChartSpec) -> Figure:
    figure = charts.build_figure(chart)
    figure.canvas.draw()
    return figure


def texts(figure: Figure) -> list[Text]:
    """Every piece of text the reader sees."""
    return [
        t
        for t in figure.findobj(Text)
        if isinstance(t, Text) and t.get_visible() and t.get_text().strip()
    ]


def overlapping(items: list[Text], figure: Figure) -> list[tuple[str, str]]:
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in items]
    return [
        (a, b)
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2)
        if box_a.overlaps(box_b)
    ]


@pytest.mark.parametrize(("chart_type", "categories", "series"), SAMPLES)
def test_every_text_is_at_least_twelve_pixels_at_slacks_width(
    chart_type: str, categories: list[str], series: int
) -> None:
    """Tick, value, axis and legend text all show >= 12 px tall once Slack scales to 500 px."""
    figure = drawn(spec(chart_type, categories, series))
    sizes = [
        (t.get_text(), charts.display_px(figure, float(t.get_fontsize()))) for t in texts(figure)
    ]
    small = [(text, round(px, 1)) for text, px in sizes if px < charts.MIN_TEXT_PX]
    assert texts(figure)
    assert not small


def test_display_scale_follows_the_figure_width() -> None:
    """9 pt on a 5 in figure shown 500 px wide is 12.5 px: the measure is points x scale."""
    figure = Figure(figsize=(5, 3))
    assert charts.display_px(figure, 9) == pytest.approx(12.5)
    assert charts.display_px(Figure(figsize=(8, 3)), 9) == pytest.approx(7.8125)


@pytest.mark.parametrize("chart_type", charts.CHART_TYPES)
def test_the_title_is_not_drawn_in_the_image(chart_type: str) -> None:
    """Slack shows the title above the image, so the picture does not repeat it."""
    figure = drawn(spec(chart_type, SHORT, title="Quarterly revenue"))
    assert figure.get_suptitle() == ""
    assert "Quarterly revenue" not in [t.get_text() for t in texts(figure)]


@pytest.mark.parametrize(
    ("chart_type", "categories"),
    [
        ("bar", [f"Week {i}" for i in range(9)]),
        ("bar", ["Electronics", "Garden", "Toys"]),
        ("line", DATES),
        ("area", [f"Region {i} total" for i in range(7)]),
    ],
)
def test_category_labels_under_the_axis_do_not_overlap(
    chart_type: str, categories: list[str]
) -> None:
    """Labels under upright bars and along a line's axis wrap or thin out rather than collide."""
    figure = drawn(spec(chart_type, categories))
    labels = [t for t in figure.axes[0].get_xticklabels() if t.get_text()]
    assert labels
    assert not overlapping(labels, figure)


def test_long_names_lay_the_bars_down_without_overlap() -> None:
    """Long store names turn the bars horizontal, names beside the bars, none touching."""
    figure = drawn(spec("bar", LONG))
    names = [t for t in figure.axes[0].texts if t.get_gid() == charts.CATEGORY_GID]
    assert len(names) == len(LONG)
    assert not overlapping(names, figure)


def test_value_labels_are_abbreviated_with_the_axis_unit() -> None:
    """A revenue axis in USD labels its bars "$1K" … "$1.2M", the way people write money."""
    chart = ChartSpec(
        "bar", "t", ("A", "B"), (Series("v", (1_234_000.0, 15_000.0)),), "Store", "Revenue (USD)"
    )
    axes = drawn(chart).axes[0]
    assert [t.get_text() for t in axes.texts] == ["$1.2M", "$15K"]
    assert any(t.get_text().startswith("$") for t in axes.get_yticklabels())


def test_share_axis_writes_percent() -> None:
    """An axis titled "(%)" writes its values as percentages."""
    chart = ChartSpec("bar", "t", ("A", "B"), (Series("v", (45.0, 55.0)),), "Group", "Share (%)")
    assert [t.get_text() for t in drawn(chart).axes[0].texts] == ["45%", "55%"]


def test_the_png_background_is_transparent() -> None:
    """The PNG keeps an alpha channel and a clear background: no white box in dark mode."""
    png = charts.render_png(spec("bar", SHORT))
    width, height, depth, colour = struct.unpack(">IIBB", png[16:26])
    assert (depth, colour) == (8, 6)  # 8-bit RGBA
    length = struct.unpack(">I", png[33:37])[0]
    assert png[37:41] == b"IDAT"
    pixels = zlib.decompress(png[41 : 41 + length])
    first_row = pixels[1 : 1 + width * 4]
    assert first_row[3] == 0  # the top-left pixel is fully transparent
    assert height > 0


# Machado, Oliveira and Fernandes (2009), full severity, in linear RGB.
_SIMULATIONS = {
    "protanopia": (
        (0.152286, 1.052583, -0.204868),
        (0.114503, 0.786281, 0.099216),
        (-0.003882, -0.048116, 1.051998),
    ),
    "deuteranopia": (
        (0.367322, 0.860646, -0.227968),
        (0.280085, 0.672501, 0.047413),
        (-0.011820, 0.042940, 0.968881),
    ),
    "tritanopia": (
        (1.255528, -0.076749, -0.178779),
        (-0.078411, 0.930809, 0.147602),
        (0.004733, 0.691367, 0.303900),
    ),
}


def _seen(colour: str, matrix: tuple[tuple[float, ...], ...]) -> np.ndarray[Any, Any]:
    srgb = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    shown = np.clip(np.array(matrix) @ linear, 0, 1)
    seen: np.ndarray[Any, Any] = np.where(
        shown <= 0.0031308, 12.92 * shown, 1.055 * shown ** (1 / 2.4) - 0.055
    )
    return seen


@pytest.mark.parametrize("vision", sorted(_SIMULATIONS))
def test_series_colours_stay_apart_for_colour_blind_readers(vision: str) -> None:
    """The first six series colours stay distinguishable with each kind of colour blindness."""
    seen = [_seen(c, _SIMULATIONS[vision]) for c in PALETTE[:6]]
    closest = min(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(seen, 2))
    assert closest >= 0.1
