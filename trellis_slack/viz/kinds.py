"""The chart kinds drawn on matplotlib axes: bars (grouped, stacked, horizontal), lines and areas, pies."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.ticker import Formatter
from matplotlib.transforms import ScaledTranslation, blended_transform_factory

from trellis_slack.viz.labels import UNITS, Unit, format_number, share, unit_of, wrap
from trellis_slack.viz.spec import MAX_SLICES, ChartSpec

#: One palette for every chart: Okabe and Ito's colour-blind-safe colours (their yellow, too
#: faint on white, and black, lost on a dark theme, replaced by Paul Tol's olive, purple, teal).
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#999933",
    "#AA4499",
    "#44AA99",
    "#8C8C8C",
)
NEGATIVE_COLOR = "#D55E00"
OTHER_COLOR = "#9AA0A6"
#: The background is transparent, so Slack's light or dark theme shows through: text and lines
#: are a grey that reads about 4:1 against both white and Slack's dark background.
TEXT_COLOR = "#74808E"
MUTED_COLOR = "#74808E"
GRID_COLOR = (0.455, 0.502, 0.557, 0.3)
#: Font sizes in points; ``charts`` draws a figure whose points come out at least 12 px tall
#: at Slack's displayed width (``charts.display_px``).
TICK_PT = 9.0
VALUE_PT = 9.0
AXIS_PT = 10.0
LEGEND_PT = 9.0
#: ``gid`` of the category names (and their title) drawn beside horizontal bars.
CATEGORY_GID = "category"
CATEGORY_TITLE_GID = "category-title"
#: Horizontal bar charts up to this many bars get two-line labels.
TWO_LINE_BARS = 20


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


def plain(legend: Legend) -> None:
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


def draw_bars(axes: Axes, spec: ChartSpec, *, horizontal: bool, stacked: bool) -> list[Artist]:
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
        labels = [wrap(c, vertical_wrap(count), 2) for c in spec.categories]
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
        (axes.axvline if horizontal else axes.axhline)(0, color=MUTED_COLOR, linewidth=0.8)
    return [container.patches[0] for container in containers]


def _horizontal_categories(axes: Axes, spec: ChartSpec, positions: np.ndarray) -> None:
    """Category names left of the bars, first on top, with the category axis title above them.

    They are plain texts rather than tick labels: matplotlib builds a Tick (three lines, two
    texts) per tick, which made a 40-bar chart take twice as long to draw.
    """
    count = len(spec.categories)
    # Many bars: one line per label keeps the bars close enough to compare.
    lines = 2 if count <= TWO_LINE_BARS else 1
    axes.set_yticks([])
    axes.set_ylim(count - 0.5, -0.5)
    gap = ScaledTranslation(-6 / 72, 0, axes.figure.dpi_scale_trans)
    rows = blended_transform_factory(axes.transAxes, axes.transData) + gap
    for position, name in zip(positions, spec.categories, strict=True):
        axes.text(
            0,
            float(position),
            wrap(name, 20 if lines == 2 else 24, lines),
            transform=rows,
            ha="right",
            va="center",
            fontsize=TICK_PT,
            color=MUTED_COLOR,
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
            fontsize=AXIS_PT,
            fontweight="bold",
            color=MUTED_COLOR,
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
    unit = unit_of(spec.y_label)
    if len(spec.series) == 1:
        values = spec.series[0].values
        scale = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
        labels = [unit.write(format_number(v, scale=scale)) for v in values]
        axes.bar_label(
            containers[0], labels=labels, padding=3, fontsize=VALUE_PT, color=MUTED_COLOR
        )
    elif stacked:
        if all(v >= 0 or not math.isfinite(v) for s in spec.series for v in s.values):
            scale = float(np.max(np.abs(totals))) if len(totals) else 0.0
            totals_text = [unit.write(format_number(float(t), scale=scale)) for t in totals]
            axes.bar_label(
                containers[-1], labels=totals_text, padding=3, fontsize=VALUE_PT, color=MUTED_COLOR
            )
    else:
        return
    if horizontal:
        axes.margins(x=0.12)
    else:
        axes.margins(y=0.12)


def draw_line(axes: Axes, spec: ChartSpec, *, fill: bool) -> list[Artist]:
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
        unit = unit_of(spec.y_label)
        for xi, value in zip(x, points, strict=False):
            if math.isfinite(value):
                axes.annotate(
                    unit.write(format_number(value, scale=scale)),
                    (xi, value),
                    textcoords="offset points",
                    xytext=(0, -9 if value < 0 else 7),
                    va="top" if value < 0 else "baseline",
                    ha="center",
                    fontsize=VALUE_PT,
                    color=MUTED_COLOR,
                )
    ticks = _tick_indices(count, 6)
    axes.set_xticks(
        [float(i) for i in ticks],
        [wrap(spec.categories[i], vertical_wrap(len(ticks)), 2) for i in ticks],
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
        axes.axhline(0, color=MUTED_COLOR, linewidth=0.8)
    axes.set_xlabel(spec.x_label, parse_math=False)
    axes.set_ylabel(spec.y_label, parse_math=False)
    return handles


def draw_pie(figure: Figure, axes: Axes, spec: ChartSpec, *, donut: bool) -> None:
    unit = unit_of(spec.y_label)
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
        wedgeprops={"width": 0.42 if donut else 1.0, "linewidth": 0},
        textprops={"color": "white", "fontsize": VALUE_PT, "fontweight": "bold"},
    )
    for text, color in zip(autotexts, colors, strict=False):
        text.set_color("#1F2933" if _is_light(color) else "white")
    if donut:
        axes.text(
            0,
            0,
            f"{unit.write(format_number(total))}\nTotal",
            ha="center",
            va="center",
            fontsize=13,
            fontweight="bold",
            color=TEXT_COLOR,
        )
    legend = [
        f"{wrap(label, 18, 1)}  {unit.write(format_number(value))} ({share(value / total)})"
        for label, value in zip(labels, values, strict=True)
    ]
    plain(
        figure.legend(
            wedges,
            legend,
            loc="outside right center",
            frameon=False,
            fontsize=LEGEND_PT,
            labelcolor=TEXT_COLOR,
        )
    )
    axes.set_aspect("equal")


def _is_light(color: str) -> bool:
    red, green, blue = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.299 * red + 0.587 * green + 0.114 * blue > 0.6


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


def vertical_wrap(count: int) -> int:
    """Characters a line under each of ``count`` upright bars (or line ticks) has room for."""
    return max(4, min(20, 62 // max(count, 1) - 1))


def _tick_indices(count: int, most: int) -> list[int]:
    if count <= most:
        return list(range(count))
    step = math.ceil(count / most)
    return list(range(0, count, step))
