"""Charts: a validated chart laid out on a new Agg figure and returned as PNG bytes."""

from __future__ import annotations

import io
import math
from typing import Protocol, cast

import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from trellis_slack.viz.kinds import (
    CATEGORY_GID,
    CATEGORY_TITLE_GID,
    NEGATIVE_COLOR,
    OTHER_COLOR,
    PALETTE,
    TEXT_COLOR,
    TWO_LINE_BARS,
    CompactFormatter,
    draw_bars,
    draw_line,
    draw_pie,
    fold_slices,
    plain,
    style_axes,
)
from trellis_slack.viz.labels import exact_number, format_number, wrap
from trellis_slack.viz.spec import (
    AXIS_TYPES,
    BAR_TYPES,
    CHART_TYPES,
    MAX_BARS,
    MAX_POINTS,
    MAX_SERIES,
    MAX_SLICES,
    MAX_VERTICAL_BARS,
    SEGMENT_TYPES,
    ChartSpec,
    Series,
    describe,
)

__all__ = [
    "AXIS_TYPES",
    "BAR_TYPES",
    "CATEGORY_GID",
    "CATEGORY_TITLE_GID",
    "CHART_TYPES",
    "DPI",
    "HEIGHT_IN",
    "MAX_BARS",
    "MAX_POINTS",
    "MAX_SERIES",
    "MAX_SLICES",
    "MAX_VERTICAL_BARS",
    "NEGATIVE_COLOR",
    "OTHER_COLOR",
    "PALETTE",
    "PIE_WIDTH_IN",
    "SEGMENT_TYPES",
    "WIDTH_IN",
    "ChartSpec",
    "CompactFormatter",
    "Series",
    "build_figure",
    "describe",
    "exact_number",
    "figure_png",
    "fold_slices",
    "format_number",
    "render_png",
]

#: 1200 by 675 px: sharp in Slack's desktop preview and still legible on a phone.
WIDTH_IN = 8.0
HEIGHT_IN = 4.5
PIE_WIDTH_IN = 7.0
DPI = 150
_MAX_HEIGHT_IN = 12.0


def render_png(spec: ChartSpec) -> bytes:
    """The chart as PNG bytes; the figure is freed before returning (runs in the render pool)."""
    figure = build_figure(spec)
    try:
        return figure_png(figure)
    finally:
        figure.clear()


def figure_png(figure: Figure) -> bytes:
    """Draws a figure once and encodes it as an opaque PNG.

    Faster than ``savefig`` (which lays the figure out twice and keeps an alpha channel we do not
    need): about a quarter of the render time.
    """
    agg = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    canvas = cast(_RasterCanvas, agg)
    canvas.draw()
    width, height = canvas.get_width_height(physical=True)
    image = Image.fromarray(np.asarray(canvas.buffer_rgba()).reshape(height, width, 4), "RGBA")
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="png", compress_level=3)
    return buffer.getvalue()


class _RasterCanvas(Protocol):
    """The typed part of ``FigureCanvasAgg`` we use (matplotlib ships it without annotations)."""

    def draw(self) -> None: ...
    def buffer_rgba(self) -> memoryview: ...
    def get_width_height(self, *, physical: bool = False) -> tuple[int, int]: ...


def build_figure(spec: ChartSpec) -> Figure:
    """Draws the chart on a new Agg figure (no pyplot, no global state).

    Many or long-labelled categories turn a ``bar`` chart horizontal; a pie or donut that cannot
    be a pie (negative or all-zero values) is drawn as bars, though the caller normally catches
    that first and says so.
    """
    kind = spec.chart_type if spec.chart_type in CHART_TYPES else "bar"
    if kind in SEGMENT_TYPES and not _pie_drawable(spec):
        kind = "bar"
    horizontal = kind == "bar_horizontal" or (kind in BAR_TYPES and _prefers_horizontal(spec))
    height = _horizontal_height(spec) if horizontal else HEIGHT_IN
    width = PIE_WIDTH_IN if kind in SEGMENT_TYPES else WIDTH_IN
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained", facecolor="white")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    handles: list[Artist] = []
    if kind in SEGMENT_TYPES:
        draw_pie(figure, axes, spec, donut=kind == "donut")
    elif kind in ("line", "area"):
        style_axes(axes, value_axis="y")
        handles = draw_line(axes, spec, fill=kind == "area")
    else:
        style_axes(axes, value_axis="x" if horizontal else "y")
        handles = draw_bars(axes, spec, horizontal=horizontal, stacked=kind == "stacked_bar")
    if len(spec.series) > 1 and kind not in SEGMENT_TYPES:
        names = [wrap(s.name, 24, 2) for s in spec.series]
        # Above the plot, under the title: the layout keeps room for an axes legend.
        legend = axes.legend(
            handles,
            names,
            loc="lower left",
            bbox_to_anchor=(0, 1.02),
            borderaxespad=0,
            ncols=min(len(names), 4),
            frameon=False,
            fontsize=9,
            labelcolor=TEXT_COLOR,
        )
        plain(legend)
    figure.suptitle(
        wrap(spec.title, int(width * 7), 2),
        x=0.01,
        ha="left",
        fontsize=14,
        fontweight="bold",
        color=TEXT_COLOR,
        parse_math=False,
    )
    return figure


def _pie_drawable(spec: ChartSpec) -> bool:
    if len(spec.series) != 1:
        return False
    finite = [v for v in spec.series[0].values if math.isfinite(v)]
    return bool(finite) and all(v >= 0 for v in finite) and sum(finite) > 0


def _prefers_horizontal(spec: ChartSpec) -> bool:
    count = len(spec.categories)
    longest = max((len(c) for c in spec.categories), default=0)
    return count > MAX_VERTICAL_BARS or (count > 4 and longest > 14) or longest > 28


def _horizontal_height(spec: ChartSpec) -> float:
    count = len(spec.categories)
    rows = count * (1 + 0.5 * (len(spec.series) - 1) if spec.series else 1)
    per_row = 0.3 if count <= TWO_LINE_BARS else 0.2
    return min(_MAX_HEIGHT_IN, max(HEIGHT_IN, 1.4 + per_row * rows))
