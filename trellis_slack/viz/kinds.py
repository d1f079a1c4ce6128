"""The chart kinds drawn on matplotlib axes: bars (grouped, stacked, horizontal), lines and areas, pies."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.transforms import ScaledTranslation, blended_transform_factory

from trellis_slack.viz.labels import format_number, share, unit_of, wrap
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
#: ``gid`` of the shapes of a stacked bar chart, one per series.
STACK_GID = "stack"
#: Horizontal bar charts up to this many bars get two-line labels.
TWO_LINE_BARS = 20


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
    if stacked and len(spec.series) > 1:
        handles, totals = _draw_stacks(axes, spec, positions, horizontal=horizontal)
        containers: list[BarContainer] = []
    else:
        containers = _draw_bar_series(axes, spec, positions, horizontal=horizontal)
        handles, totals = [c.patches[0] for c in containers], np.zeros(count)
    if horizontal:
        _horizontal_categories(axes, spec, positions)
        axes.set_xlabel(spec.y_label, parse_math=False)
    else:
        labels = [wrap(c, vertical_wrap(count), 2) for c in spec.categories]
        axes.set_xticks(positions, labels, parse_math=False)
        axes.set_xlabel(spec.x_label, parse_math=False)
        axes.set_ylabel(spec.y_label, parse_math=False)
    if count <= 25:
        _label_bars(axes, spec, containers, horizontal=horizontal, totals=totals)
    finite = [v for s in spec.series for v in s.values if math.isfinite(v)]
    if finite and all(v == 0 for v in finite):
        (axes.set_xlim if horizontal else axes.set_ylim)(0, 1)
    if any(v < 0 for v in finite):
        (axes.axvline if horizontal else axes.axhline)(0, color=MUTED_COLOR, linewidth=0.8)
    return handles


def _draw_bar_series(
    axes: Axes, spec: ChartSpec, positions: np.ndarray, *, horizontal: bool
) -> list[BarContainer]:
    """One bar per category, or a group of bars side by side (one per series)."""
    series = spec.series
    width = 0.8 / len(series) if len(series) > 1 else (0.6 if len(positions) > 1 else 0.4)
    containers = []
    for index, one in enumerate(series):
        values = np.nan_to_num(np.array(one.values, dtype=float), nan=0.0)
        if len(series) == 1:
            colors: list[str] | str = [NEGATIVE_COLOR if v < 0 else PALETTE[0] for v in values]
        else:
            colors = PALETTE[index % len(PALETTE)]
        offsets = positions - 0.4 + width * (index + 0.5) if len(series) > 1 else positions
        if horizontal:
            containers.append(axes.barh(offsets, values, height=width, color=colors))
        else:
            containers.append(axes.bar(offsets, values, width=width, color=colors))
    return containers


def _draw_stacks(
    axes: Axes, spec: ChartSpec, positions: np.ndarray, *, horizontal: bool
) -> tuple[list[Artist], np.ndarray]:
    """Each series as one shape of rectangles: positive parts stacked up from zero, negative down.

    A shape per series rather than a bar patch per segment: matplotlib adds each patch on its
    own, which made 30 stacks of three series miss the render target. Returns the shapes (the
    legend's handles) and each stack's total.
    """
    half = 0.3 if len(positions) > 1 else 0.2
    across = np.stack([positions - half, positions + half, positions + half, positions - half], 1)
    positive = np.zeros(len(positions))
    negative = np.zeros(len(positions))
    shapes: list[Artist] = []
    for index, one in enumerate(spec.series):
        values = np.nan_to_num(np.array(one.values, dtype=float), nan=0.0)
        base = np.where(values >= 0, positive, negative)
        positive = positive + np.clip(values, 0, None)
        negative = negative + np.clip(values, None, 0)
        along = np.stack([base, base, base + values, base + values], 1)
        corners = np.stack([along, across] if horizontal else [across, along], 2)
        shape = PolyCollection(
            list(corners),
            facecolors=PALETTE[index % len(PALETTE)],
            edgecolors="none",
            gid=STACK_GID,
        )
        (shape.sticky_edges.x if horizontal else shape.sticky_edges.y)[:] = [0.0]
        axes.add_collection(shape)
        shapes.append(shape)
    return shapes, positive + negative


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
    totals: np.ndarray,
) -> None:
    """Each bar's value; a stack's total above (or right of) it when no part is negative."""
    unit = unit_of(spec.y_label)
    if len(spec.series) == 1:
        values = spec.series[0].values
        scale = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
        labels = [unit.write(format_number(v, scale=scale)) for v in values]
        axes.bar_label(
            containers[0], labels=labels, padding=3, fontsize=VALUE_PT, color=MUTED_COLOR
        )
    elif not containers and all(
        v >= 0 or not math.isfinite(v) for s in spec.series for v in s.values
    ):
        scale = float(np.max(np.abs(totals))) if len(totals) else 0.0
        for position, total in enumerate(totals.tolist()):
            axes.annotate(
                unit.write(format_number(total, scale=scale)),
                (total, position) if horizontal else (position, total),
                (3, 0) if horizontal else (0, 3),
                textcoords="offset points",
                ha="left" if horizontal else "center",
                va="center" if horizontal else "bottom",
                fontsize=VALUE_PT,
                color=MUTED_COLOR,
            )
    elif containers:
        return  # bars side by side: no labels
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


def vertical_wrap(count: int) -> int:
    """Characters a line under each of ``count`` upright bars (or line ticks) has room for."""
    return max(4, min(20, 62 // max(count, 1) - 1))


def _tick_indices(count: int, most: int) -> list[int]:
    if count <= most:
        return list(range(count))
    step = math.ceil(count / most)
    return list(range(0, count, step))
