"""Charts: a validated chart laid out on a new Agg figure and returned as PNG bytes."""

from __future__ import annotations

import math
import struct
import textwrap
import zlib
from typing import Protocol, cast

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter

from trellis_slack.viz.kinds import (
    AXIS_PT,
    CATEGORY_GID,
    CATEGORY_TITLE_GID,
    GRID_COLOR,
    LEGEND_PT,
    MUTED_COLOR,
    NEGATIVE_COLOR,
    OTHER_COLOR,
    PALETTE,
    STACK_GID,
    TEXT_COLOR,
    TICK_PT,
    TWO_LINE_BARS,
    draw_bars,
    draw_line,
    draw_pie,
    fold_slices,
    plain,
    vertical_wrap,
)
from trellis_slack.viz.labels import UNITS, Unit, exact_number, format_number, unit_of, wrap
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
    "DISPLAY_WIDTH_PX",
    "DPI",
    "HEIGHT_IN",
    "MAX_BARS",
    "MAX_POINTS",
    "MAX_SERIES",
    "MAX_SLICES",
    "MAX_VERTICAL_BARS",
    "MIN_TEXT_PX",
    "NEGATIVE_COLOR",
    "OTHER_COLOR",
    "PALETTE",
    "PIE_WIDTH_IN",
    "SEGMENT_TYPES",
    "STACK_GID",
    "WIDTH_IN",
    "ChartSpec",
    "CompactFormatter",
    "Series",
    "build_figure",
    "describe",
    "display_px",
    "exact_number",
    "figure_png",
    "fold_slices",
    "format_number",
    "render_png",
]

#: Slack shows a chart image about 500 px wide (desktop and phone alike); the figure is drawn
#: for that width, at twice its pixels for sharp high-density screens: 1000 by 620 px.
DISPLAY_WIDTH_PX = 500
WIDTH_IN = 5.0
HEIGHT_IN = 3.1
PIE_WIDTH_IN = 5.0
DPI = 200
#: The smallest text of a chart, in pixels at Slack's displayed width (Slack's own message text
#: is about 13 px; its secondary text about 12).
MIN_TEXT_PX = 12.0
_MAX_HEIGHT_IN = 9.0


def display_px(figure: Figure, points: float) -> float:
    """How tall text of ``points`` shows, in pixels, once Slack scales ``figure`` to its width."""
    width_in = float(figure.get_figwidth())
    return points / 72 * DISPLAY_WIDTH_PX / width_in


def render_png(spec: ChartSpec) -> bytes:
    """The chart as PNG bytes; the figure is freed before returning (runs in the render pool)."""
    figure = build_figure(spec)
    try:
        return figure_png(figure)
    finally:
        figure.clear()


def figure_png(figure: Figure) -> bytes:
    """Draws a figure once and encodes it as a PNG with its transparent background.

    Faster than ``savefig`` (which lays the figure out twice) and than Pillow's encoder (whose
    per-row filters buy little on a chart that is mostly transparent): rows unfiltered, zlib at
    level 3, about 8 ms for a 1000 by 1300 px chart.
    """
    agg = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    canvas = cast(_RasterCanvas, agg)
    canvas.draw()
    width, height = canvas.get_width_height(physical=True)
    pixels = np.asarray(canvas.buffer_rgba()).reshape(height, width * 4)
    rows = np.concatenate([np.zeros((height, 1), np.uint8), pixels], axis=1)  # filter 0: none
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows.tobytes(), 3)),
            _chunk(b"IEND", b""),
        )
    )


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


class _RasterCanvas(Protocol):
    """The typed part of ``FigureCanvasAgg`` we use (matplotlib ships it without annotations)."""

    def draw(self) -> None: ...
    def buffer_rgba(self) -> memoryview: ...
    def get_width_height(self, *, physical: bool = False) -> tuple[int, int]: ...


class CompactFormatter(Formatter):
    """Axis ticks with thousands separators, or K/M/B/T shared by every tick of the axis."""

    def __init__(self, unit: Unit | None = None) -> None:
        self._unit = unit or Unit()
        self._divisor = 1.0
        self._suffix = ""
        self._decimals = 0

    def set_locs(self, locs: list[float]) -> None:
        """Picks one unit and the fewest decimals that tell these ticks apart."""
        super().set_locs(locs)
        finite = [v for v in locs if math.isfinite(v)]
        top = max((abs(v) for v in finite), default=0.0)
        self._divisor, self._suffix = next(
            ((divisor, suffix) for threshold, divisor, suffix in UNITS if top >= threshold),
            (1.0, ""),
        )
        scaled = [v / self._divisor for v in finite]
        self._decimals = next(
            (
                d
                for d in range(5)
                if all(abs(round(v, d) - v) < 1e-9 * max(1.0, abs(v)) for v in scaled)
            ),
            4,
        )

    def __call__(self, x: float, pos: int | None = None) -> str:
        """The tick label for ``x``."""
        if not math.isfinite(x):
            return ""
        scaled = x / self._divisor
        if abs(scaled) < 0.5 * 10.0**-self._decimals:
            return self._unit.write("0")  # not "0K", "0.0M" or "-0"
        return self._unit.write(f"{scaled:,.{self._decimals}f}{self._suffix}")


def style_axes(axes: Axes, *, value_axis: str, unit: Unit | None = None) -> None:
    axes.set_axisbelow(True)
    axes.grid(axis="y" if value_axis == "y" else "x", color=GRID_COLOR, linewidth=0.8)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        axes.spines[side].set_color(GRID_COLOR)
    axes.set_facecolor("none")
    axes.tick_params(labelsize=TICK_PT, colors=MUTED_COLOR, length=0)
    axes.xaxis.label.set_color(MUTED_COLOR)
    axes.yaxis.label.set_color(MUTED_COLOR)
    axes.xaxis.label.set_fontsize(AXIS_PT)
    axes.yaxis.label.set_fontsize(AXIS_PT)
    value = axes.yaxis if value_axis == "y" else axes.xaxis
    value.set_major_formatter(CompactFormatter(unit))


def build_figure(spec: ChartSpec) -> Figure:
    """Draws the chart on a new Agg figure (no pyplot, no global state).

    The title is not drawn: Slack shows it above the image (the upload's and the image block's
    ``title``), so it appears once. Many or long-labelled categories turn a ``bar`` chart
    horizontal; a pie or donut that cannot be a pie (negative or all-zero values) is drawn as
    bars, though the caller normally catches that first and says so.
    """
    kind = spec.chart_type if spec.chart_type in CHART_TYPES else "bar"
    if kind in SEGMENT_TYPES and not _pie_drawable(spec):
        kind = "bar"
    horizontal = kind == "bar_horizontal" or (kind in BAR_TYPES and _prefers_horizontal(spec))
    height = _horizontal_height(spec) if horizontal else HEIGHT_IN
    width = PIE_WIDTH_IN if kind in SEGMENT_TYPES else WIDTH_IN
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained", facecolor="none")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    handles: list[Artist] = []
    if kind in SEGMENT_TYPES:
        draw_pie(figure, axes, spec, donut=kind == "donut")
    elif kind in ("line", "area"):
        style_axes(axes, value_axis="y", unit=unit_of(spec.y_label))
        handles = draw_line(axes, spec, fill=kind == "area")
    else:
        style_axes(axes, value_axis="x" if horizontal else "y", unit=unit_of(spec.y_label))
        handles = draw_bars(axes, spec, horizontal=horizontal, stacked=kind == "stacked_bar")
    if len(spec.series) > 1 and kind not in SEGMENT_TYPES:
        names = [wrap(s.name, 18, 2) for s in spec.series]
        # Above the plot, under the title: the layout keeps room for an axes legend.
        legend = axes.legend(
            handles,
            names,
            loc="lower left",
            bbox_to_anchor=(0, 1.02),
            borderaxespad=0,
            ncols=min(len(names), 3),
            frameon=False,
            fontsize=LEGEND_PT,
            labelcolor=TEXT_COLOR,
        )
        plain(legend)
    return figure


def _pie_drawable(spec: ChartSpec) -> bool:
    if len(spec.series) != 1:
        return False
    finite = [v for v in spec.series[0].values if math.isfinite(v)]
    return bool(finite) and all(v >= 0 for v in finite) and sum(finite) > 0


def _prefers_horizontal(spec: ChartSpec) -> bool:
    """Too many bars, or a name that would not fit two lines under its bar: bars lie down."""
    count = len(spec.categories)
    if count > MAX_VERTICAL_BARS:
        return True
    width = vertical_wrap(count)
    return any(
        len(textwrap.wrap(c, width, break_long_words=False)) > 2
        or any(len(word) > width for word in c.split())
        for c in spec.categories
    )


def _horizontal_height(spec: ChartSpec) -> float:
    """Room for each bar (a group of bars side by side counts for more; stacked bars do not)."""
    count = len(spec.categories)
    grouped = spec.chart_type != "stacked_bar" and len(spec.series) > 1
    rows = count * (1 + 0.5 * (len(spec.series) - 1)) if grouped else count
    per_row = 0.3 if count <= TWO_LINE_BARS else 0.18
    return min(_MAX_HEIGHT_IN, max(HEIGHT_IN, 1.0 + per_row * rows))
