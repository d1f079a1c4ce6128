"""Charts: a validated chart drawn with matplotlib's object API on Agg and returned as PNG bytes."""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.ticker import Formatter
from matplotlib.transforms import ScaledTranslation, blended_transform_factory
from PIL import Image

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

#: One palette for every chart (Tableau 10 order, colour-blind friendly enough for decks).
PALETTE = (
    "#4E79A7",
    "#F28E2B",
    "#59A14F",
    "#E15759",
    "#76B7B2",
    "#EDC948",
    "#B07AA1",
    "#FF9DA7",
    "#9C755F",
    "#BAB0AC",
)
NEGATIVE_COLOR = "#E15759"
OTHER_COLOR = "#C9CDD2"
_TEXT = "#1F2933"
_MUTED = "#52606D"
_GRID = "#E4E7EB"

#: 1200 by 675 px: sharp in Slack's desktop preview and still legible on a phone.
WIDTH_IN = 8.0
HEIGHT_IN = 4.5
PIE_WIDTH_IN = 7.0
DPI = 150
_MAX_HEIGHT_IN = 12.0
#: ``gid`` of the category names (and their title) drawn beside horizontal bars.
CATEGORY_GID = "category"
CATEGORY_TITLE_GID = "category-title"
#: Horizontal bar charts up to this many bars get two-line labels.
_TWO_LINE_BARS = 20

#: (from this magnitude, divide by, suffix): K starts at 10,000 so "9,500" stays exact.
_UNITS = ((1e12, 1e12, "T"), (1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "K"))


@dataclass(frozen=True, slots=True)
class Series:
    """One series: a value per category (NaN where the data had none)."""

    name: str
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """A chart to draw; built (and capped) by ``visualizations`` from a Trellis payload.

    ``x_label`` names the categories and ``y_label`` the values, whichever way the bars point.
    """

    chart_type: str
    title: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    x_label: str = ""
    y_label: str = ""


def format_number(value: float, *, scale: float | None = None) -> str:
    """A value for a label: ``412``, ``1,234``, ``12.5``, ``2.1M``, ``-3.4K``, ``0.042``.

    ``scale`` (say the largest value of the chart) picks the unit, so labels side by side share
    it ("12K", "-4K" rather than "12K", "-4,000"), unless the shared unit would round a value
    that is not zero to nothing: 412 beside 1.23M stays "412", not "0".
    """
    if not math.isfinite(value):
        return ""
    if value == 0:
        return "0"
    magnitude = abs(value) if scale is None or not math.isfinite(scale) else abs(scale)
    for threshold, divisor, suffix in _UNITS:
        if magnitude >= threshold:
            text = _trim(f"{value / divisor:,.2f}")
            if text in ("0", "-0"):
                return format_number(value)
            return text + suffix
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return _trim(f"{value:,.2f}")
    return f"{value:.2g}"


def exact_number(value: float) -> str:
    """A value in full for alt text: ``1,234,000``, ``12.5``, ``0.0042``."""
    if not math.isfinite(value):
        return "no value"
    if value != 0 and abs(value) < 1:
        return f"{value:.3g}"
    return _trim(f"{value:,.2f}")


class CompactFormatter(Formatter):
    """Axis ticks with thousands separators, or K/M/B/T shared by every tick of the axis."""

    def __init__(self) -> None:
        self._divisor = 1.0
        self._suffix = ""
        self._decimals = 0

    def set_locs(self, locs: list[float]) -> None:
        """Picks one unit and the fewest decimals that tell these ticks apart."""
        super().set_locs(locs)
        finite = [v for v in locs if math.isfinite(v)]
        top = max((abs(v) for v in finite), default=0.0)
        self._divisor, self._suffix = next(
            ((divisor, suffix) for threshold, divisor, suffix in _UNITS if top >= threshold),
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
            return "0"  # not "0K", "0.0M" or "-0"
        return f"{scaled:,.{self._decimals}f}{self._suffix}"


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
    if kind in SEGMENT_TYPES:
        _draw_pie(figure, axes, spec, donut=kind == "donut")
    elif kind in ("line", "area"):
        _style_axes(axes, value_axis="y")
        handles = _draw_line(axes, spec, fill=kind == "area")
    else:
        _style_axes(axes, value_axis="x" if horizontal else "y")
        handles = _draw_bars(axes, spec, horizontal=horizontal, stacked=kind == "stacked_bar")
    if len(spec.series) > 1 and kind not in SEGMENT_TYPES:
        names = [_wrap(s.name, 24, 2) for s in spec.series]
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
            labelcolor=_TEXT,
        )
        _plain(legend)
    figure.suptitle(
        _wrap(spec.title, int(width * 7), 2),
        x=0.01,
        ha="left",
        fontsize=14,
        fontweight="bold",
        color=_TEXT,
        parse_math=False,
    )
    return figure


def _plain(legend: Legend) -> None:
    """Legend entries come from the data: "$5 to $10" is text, not mathematics."""
    for text in legend.get_texts():
        text.set_parse_math(False)


def fold_slices(
    labels: Sequence[str], values: Sequence[float], limit: int = MAX_SLICES
) -> tuple[list[str], list[float]]:
    """Keeps the ``limit - 1`` largest slices and sums the rest into "Other (N)"."""
    if len(values) <= limit:
        return list(labels), list(values)
    order = sorted(range(len(values)), key=lambda i: values[i], reverse=True)
    keep = sorted(order[: limit - 1])
    rest = order[limit - 1 :]
    return (
        [labels[i] for i in keep] + [f"Other ({len(rest)})"],
        [values[i] for i in keep] + [sum(values[i] for i in rest)],
    )


def describe(spec: ChartSpec, limit: int = 1000) -> str:
    """Alt text: the chart type, title, axes and the values (cut to ``limit`` characters)."""
    kind = {
        "bar": "Bar chart",
        "bar_horizontal": "Horizontal bar chart",
        "stacked_bar": "Stacked bar chart",
        "line": "Line chart",
        "area": "Area chart",
        "pie": "Pie chart",
        "donut": "Donut chart",
    }.get(spec.chart_type, "Chart")
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


def _draw_bars(axes: Axes, spec: ChartSpec, *, horizontal: bool, stacked: bool) -> list[Artist]:
    count = len(spec.categories)
    positions = np.arange(count, dtype=float)
    series = spec.series
    grouped = len(series) > 1 and not stacked
    width = 0.8 / len(series) if grouped else (0.6 if count > 1 else 0.4)
    positive = np.zeros(count)
    negative = np.zeros(count)
    containers: list[BarContainer] = []
    for index, one in enumerate(series):
        raw = np.array(one.values, dtype=float)
        values = np.nan_to_num(raw, nan=0.0)
        if len(series) == 1:
            colors: list[str] | str = [NEGATIVE_COLOR if v < 0 else PALETTE[0] for v in values]
        else:
            colors = PALETTE[index % len(PALETTE)]
        offsets = positions
        base: np.ndarray | float = 0.0
        if grouped:
            offsets = positions - 0.4 + width * (index + 0.5)
        elif stacked:
            base = np.where(values >= 0, positive, negative)
            positive = positive + np.clip(values, 0, None)
            negative = negative + np.clip(values, None, 0)
        if horizontal:
            container = axes.barh(offsets, values, height=width, left=base, color=colors)
        else:
            container = axes.bar(offsets, values, width=width, bottom=base, color=colors)
        containers.append(container)
    if horizontal:
        _horizontal_categories(axes, spec, positions)
        axes.set_xlabel(spec.y_label, parse_math=False)
    else:
        labels = [_wrap(c, _vertical_wrap(count), 2) for c in spec.categories]
        axes.set_xticks(positions, labels, parse_math=False)
        axes.set_xlabel(spec.x_label, parse_math=False)
        axes.set_ylabel(spec.y_label, parse_math=False)
    if count <= 25:
        _label_bars(
            axes,
            spec,
            containers,
            horizontal=horizontal,
            stacked=stacked,
            totals=positive + negative,
        )
    finite = [v for s in series for v in s.values if math.isfinite(v)]
    if finite and all(v == 0 for v in finite):
        (axes.set_xlim if horizontal else axes.set_ylim)(0, 1)
    if any(v < 0 for v in finite):
        (axes.axvline if horizontal else axes.axhline)(0, color=_MUTED, linewidth=0.8)
    return [container.patches[0] for container in containers]


def _horizontal_categories(axes: Axes, spec: ChartSpec, positions: np.ndarray) -> None:
    """Category names left of the bars, first on top, with the category axis title above them.

    They are plain texts rather than tick labels: matplotlib builds a Tick (three lines, two
    texts) per tick, which made a 40-bar chart take twice as long to draw.
    """
    count = len(spec.categories)
    # Many bars: one line per label keeps the bars close enough to compare.
    lines = 2 if count <= _TWO_LINE_BARS else 1
    axes.set_yticks([])
    axes.set_ylim(count - 0.5, -0.5)
    gap = ScaledTranslation(-6 / 72, 0, axes.figure.dpi_scale_trans)
    rows = blended_transform_factory(axes.transAxes, axes.transData) + gap
    for position, name in zip(positions, spec.categories, strict=True):
        axes.text(
            0,
            float(position),
            _wrap(name, 26 if lines == 2 else 34, lines),
            transform=rows,
            ha="right",
            va="center",
            fontsize=9,
            color=_MUTED,
            gid=CATEGORY_GID,
            parse_math=False,
        )
    if spec.x_label:
        above = ScaledTranslation(-6 / 72, 6 / 72, axes.figure.dpi_scale_trans)
        axes.text(
            0,
            1,
            spec.x_label,
            transform=axes.transAxes + above,
            ha="right",
            va="bottom",
            fontsize=10,
            fontweight="bold",
            color=_MUTED,
            gid=CATEGORY_TITLE_GID,
            parse_math=False,
        )


def _label_bars(
    axes: Axes,
    spec: ChartSpec,
    containers: list[BarContainer],
    *,
    horizontal: bool,
    stacked: bool,
    totals: np.ndarray,
) -> None:
    if len(spec.series) == 1:
        values = spec.series[0].values
        scale = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
        labels = [format_number(v, scale=scale) for v in values]
        axes.bar_label(containers[0], labels=labels, padding=3, fontsize=8, color=_MUTED)
    elif stacked:
        if all(v >= 0 or not math.isfinite(v) for s in spec.series for v in s.values):
            scale = float(np.max(np.abs(totals))) if len(totals) else 0.0
            totals_text = [format_number(float(t), scale=scale) for t in totals]
            axes.bar_label(containers[-1], labels=totals_text, padding=3, fontsize=8, color=_MUTED)
    else:
        return
    if horizontal:
        axes.margins(x=0.12)
    else:
        axes.margins(y=0.12)


def _draw_line(axes: Axes, spec: ChartSpec, *, fill: bool) -> list[Artist]:
    count = len(spec.categories)
    x = np.arange(count, dtype=float)
    markers = count <= 40
    handles: list[Artist] = []
    for index, one in enumerate(spec.series):
        color = PALETTE[index % len(PALETTE)]
        values = np.array(one.values, dtype=float)
        (line,) = axes.plot(
            x,
            values,
            color=color,
            linewidth=2.0 if count <= 200 else 1.2,
            marker="o" if markers else None,
            markersize=7 if count <= 2 else 4,
        )
        handles.append(line)
        if fill and count > 1:
            axes.fill_between(
                x, values, 0, color=color, alpha=0.25 if len(spec.series) == 1 else 0.12, lw=0
            )
    if len(spec.series) == 1 and count <= 12:
        points = spec.series[0].values
        scale = max((abs(v) for v in points if math.isfinite(v)), default=0.0)
        for xi, value in zip(x, points, strict=False):
            if math.isfinite(value):
                axes.annotate(
                    format_number(value, scale=scale),
                    (xi, value),
                    textcoords="offset points",
                    xytext=(0, -9 if value < 0 else 7),
                    va="top" if value < 0 else "baseline",
                    ha="center",
                    fontsize=8,
                    color=_MUTED,
                )
    ticks = _tick_indices(count, 8)
    axes.set_xticks(
        [float(i) for i in ticks],
        [_wrap(spec.categories[i], 14, 2) for i in ticks],
        parse_math=False,
    )
    if count <= 2:
        axes.set_xlim(-0.5, count - 0.5)
    else:
        axes.set_xlim(-0.02 * (count - 1), (count - 1) * 1.02)
    finite = [v for s in spec.series for v in s.values if math.isfinite(v)]
    if finite and all(v == 0 for v in finite):
        axes.set_ylim(-1, 1)
    elif finite and (fill or min(finite) == max(finite)):
        low, high = min(0.0, *finite), max(0.0, *finite)
        pad = (high - low) * 0.12 or 1.0
        axes.set_ylim(low - (pad if low < 0 else 0), high + pad)
    else:
        axes.margins(y=0.15)
    if any(v < 0 for v in finite) and any(v > 0 for v in finite):
        axes.axhline(0, color=_MUTED, linewidth=0.8)
    axes.set_xlabel(spec.x_label, parse_math=False)
    axes.set_ylabel(spec.y_label, parse_math=False)
    return handles


def _draw_pie(figure: Figure, axes: Axes, spec: ChartSpec, *, donut: bool) -> None:
    pairs = [
        (c, v)
        for c, v in zip(spec.categories, spec.series[0].values, strict=False)
        if math.isfinite(v)
    ]
    labels, values = fold_slices([c for c, _ in pairs], [v for _, v in pairs])
    total = sum(values)
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(labels))]
    if len(pairs) > MAX_SLICES:
        colors[-1] = OTHER_COLOR
    wedges, _texts, autotexts = axes.pie(
        values,
        colors=colors,
        startangle=90,
        counterclock=False,
        autopct=lambda pct: f"{pct:.0f}%" if pct >= 4 else "",
        pctdistance=0.79 if donut else 0.68,
        wedgeprops={"width": 0.42 if donut else 1.0, "edgecolor": "white", "linewidth": 1.5},
        textprops={"color": "white", "fontsize": 9, "fontweight": "bold"},
    )
    for text, color in zip(autotexts, colors, strict=False):
        text.set_color(_TEXT if _is_light(color) else "white")
    if donut:
        axes.text(
            0,
            0,
            f"{format_number(total)}\nTotal",
            ha="center",
            va="center",
            fontsize=13,
            fontweight="bold",
            color=_TEXT,
        )
    legend = [
        f"{_wrap(label, 28, 1)}  {format_number(value)} ({_share(value / total)})"
        for label, value in zip(labels, values, strict=True)
    ]
    _plain(figure.legend(wedges, legend, loc="outside right center", frameon=False, fontsize=9))
    axes.set_aspect("equal")


def _share(fraction: float) -> str:
    return "<1%" if 0 < fraction < 0.005 else f"{fraction:.0%}"


def _is_light(color: str) -> bool:
    red, green, blue = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.299 * red + 0.587 * green + 0.114 * blue > 0.6


def _pie_drawable(spec: ChartSpec) -> bool:
    if len(spec.series) != 1:
        return False
    finite = [v for v in spec.series[0].values if math.isfinite(v)]
    return bool(finite) and all(v >= 0 for v in finite) and sum(finite) > 0


def _style_axes(axes: Axes, *, value_axis: str) -> None:
    axes.set_axisbelow(True)
    axes.grid(axis="y" if value_axis == "y" else "x", color=_GRID, linewidth=0.8)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        axes.spines[side].set_color(_GRID)
    axes.tick_params(labelsize=9, colors=_MUTED, length=0)
    axes.xaxis.label.set_color(_MUTED)
    axes.yaxis.label.set_color(_MUTED)
    axes.xaxis.label.set_fontsize(10)
    axes.yaxis.label.set_fontsize(10)
    value = axes.yaxis if value_axis == "y" else axes.xaxis
    value.set_major_formatter(CompactFormatter())


def _prefers_horizontal(spec: ChartSpec) -> bool:
    count = len(spec.categories)
    longest = max((len(c) for c in spec.categories), default=0)
    return count > MAX_VERTICAL_BARS or (count > 4 and longest > 14) or longest > 28


def _horizontal_height(spec: ChartSpec) -> float:
    count = len(spec.categories)
    rows = count * (1 + 0.5 * (len(spec.series) - 1) if spec.series else 1)
    per_row = 0.3 if count <= _TWO_LINE_BARS else 0.2
    return min(_MAX_HEIGHT_IN, max(HEIGHT_IN, 1.4 + per_row * rows))


def _vertical_wrap(count: int) -> int:
    return max(8, min(16, 90 // max(count, 1)))


def _tick_indices(count: int, most: int) -> list[int]:
    if count <= most:
        return list(range(count))
    step = math.ceil(count / most)
    return list(range(0, count, step))


def _wrap(text: str, width: int, lines: int) -> str:
    """Wraps ``text`` to ``lines`` lines of ``width`` characters, ending in "…" when cut."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    wrapped = textwrap.wrap(text, width, break_long_words=True, max_lines=lines, placeholder="…")
    return "\n".join(wrapped)


def _trim(number: str) -> str:
    return number.rstrip("0").rstrip(".") if "." in number else number
