"""Slack's own charts and tables: whether a chart fits ``data_visualization``, and ``data_table`` blocks.

Slack's limits (docs.slack.dev, "Data visualization block" and "Data table block"): a chart has a
title of at most 50 characters and is a ``pie`` (1-6 segments, each value above 0) or a ``bar``,
``area`` or ``line`` chart (1-6 series of uniquely named series, names of at most 20 characters,
1-20 points each, whose labels are the axis ``categories``, each at most 20 characters; axis
titles at most 50 characters); at most two a message. A data table has a caption, a header row
and 1-100 rows of 1-20 cells, at most 10,000 characters in all its cells; a column sorts as
numbers when all its cells are ``raw_number``.

Nothing is cut to fit: a chart or table that does not fit whole is drawn as a PNG, or shown as
the ``table`` preview with its CSV, instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from trellis_slack.viz.spec import ChartSpec
from trellis_slack.viz.tables import TableData, parse_number

#: ``auto``: native where Slack draws the chart as Trellis meant it, else a PNG. ``native``:
#: native also where only the form changes (horizontal or stacked bars become Slack's grouped
#: bars, a donut a pie), still a PNG where the data does not fit. ``png``: every chart a PNG
#: and every table today's ``table`` block (no ``data_visualization``, no ``data_table``).
ChartsMode = Literal["auto", "native", "png"]
CHARTS_MODES: tuple[ChartsMode, ...] = ("auto", "native", "png")

MAX_TITLE = 50
MAX_AXIS_TITLE = 50
MAX_SERIES = 6
MAX_POINTS = 20
MAX_LABEL = 20
MAX_SEGMENTS = 6
#: Slack draws at most this many ``data_visualization`` blocks in one message.
PER_MESSAGE = 2

TABLE_MAX_ROWS = 100
TABLE_MAX_COLUMNS = 20
TABLE_MAX_CHARS = 10_000
#: Rows a page of a native table shows (Slack: 1-100, 5 when omitted).
TABLE_PAGE_SIZE = 10

#: Chart types Slack draws natively, as they are.
FAITHFUL = {"bar": "bar", "line": "line", "area": "area", "pie": "pie"}
#: In ``native`` mode, chart types drawn in Slack's nearest form, and the note saying so.
NEAREST = {
    "bar_horizontal": ("bar", "Slack shows these bars upright."),
    "stacked_bar": ("bar", "Slack shows these stacked bars side by side."),
    "donut": ("pie", "Slack shows this donut chart as a pie."),
}


def chart_block(spec: ChartSpec, mode: ChartsMode) -> tuple[dict[str, Any], str | None] | None:
    """The ``data_visualization`` block showing ``spec`` whole and the note it needs, or None.

    None means "draw a PNG": the mode is ``png``, the type has no native form (in ``auto``:
    horizontal and stacked bars, donuts), or the data does not fit Slack's limits whole.
    """
    if mode == "png":
        return None
    kind, note = FAITHFUL.get(spec.chart_type), None
    if kind is None and mode == "native" and spec.chart_type in NEAREST:
        kind, note = NEAREST[spec.chart_type]
    if kind is None or not _fits(spec, kind):
        return None
    chart: dict[str, Any]
    if kind == "pie":
        values = spec.series[0].values
        chart = {
            "type": "pie",
            "segments": [
                {"label": c, "value": _number(v)}
                for c, v in zip(spec.categories, values, strict=True)
            ],
        }
    else:
        names = _series_names(spec)
        axis: dict[str, Any] = {"categories": list(spec.categories)}
        if spec.x_label:
            axis["x_label"] = spec.x_label
        if spec.y_label:
            axis["y_label"] = spec.y_label
        chart = {
            "type": kind,
            "series": [
                {
                    "name": name,
                    "data": [
                        {"label": c, "value": _number(v)}
                        for c, v in zip(spec.categories, series.values, strict=True)
                    ],
                }
                for name, series in zip(names, spec.series, strict=True)
            ],
            "axis_config": axis,
        }
    return {"type": "data_visualization", "title": spec.title, "chart": chart}, note


def _fits(spec: ChartSpec, kind: str) -> bool:
    """Whether Slack can show every point, name and title of ``spec`` as a ``kind`` chart."""
    categories = spec.categories
    if not spec.title.strip() or len(spec.title) > MAX_TITLE:
        return False
    if not categories or len(set(categories)) != len(categories):
        return False
    if any(not c.strip() or len(c) > MAX_LABEL for c in categories):
        return False
    if not spec.series or any(len(s.values) != len(categories) for s in spec.series):
        return False
    if any(not math.isfinite(v) for s in spec.series for v in s.values):
        return False
    if kind == "pie":
        return (
            len(spec.series) == 1
            and len(categories) <= MAX_SEGMENTS
            and all(v > 0 for v in spec.series[0].values)
        )
    if len(spec.series) > MAX_SERIES or len(categories) > MAX_POINTS:
        return False
    if len(spec.x_label) > MAX_AXIS_TITLE or len(spec.y_label) > MAX_AXIS_TITLE:
        return False
    names = _series_names(spec)
    return len(set(names)) == len(names) and all(n.strip() and len(n) <= MAX_LABEL for n in names)


def _series_names(spec: ChartSpec) -> list[str]:
    """Legend names: one series is named after the value axis when that fits."""
    if len(spec.series) == 1 and spec.y_label and len(spec.y_label) <= MAX_LABEL:
        return [spec.y_label]
    return [s.name for s in spec.series]


def _number(value: float) -> int | float:
    """A JSON number as people wrote it: ``412``, not ``412.0``."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def table_block(table: TableData, caption: str) -> dict[str, Any] | None:
    """The whole table as a sortable ``data_table`` block, or None when it does not fit whole.

    Columns whose every cell is a number are ``raw_number`` cells (the value to sort by, the
    text as Trellis formatted it), so they sort as numbers; other cells are ``raw_text``.
    """
    rows, headers = table.rows, table.headers
    if table.capped or not rows or len(rows) > TABLE_MAX_ROWS:
        return None
    if not headers or len(headers) > TABLE_MAX_COLUMNS or not caption.strip():
        return None
    numbers = [_column_numbers([row[i] for row in rows]) for i in range(len(headers))]

    def cell(column: int, row: int, text: str) -> dict[str, Any]:
        values = numbers[column]
        return _text_cell(text) if values is None else _number_cell(text, values[row])

    body = [[cell(i, r, text) for i, text in enumerate(row)] for r, row in enumerate(rows)]
    header = [_text_cell(h) for h in headers]
    if sum(len(cell["text"]) for line in [header, *body] for cell in line) > TABLE_MAX_CHARS:
        return None
    return {
        "type": "data_table",
        "caption": caption,
        "page_size": min(TABLE_PAGE_SIZE, len(rows)),
        "rows": [header, *body],
    }


def _column_numbers(cells: Sequence[str]) -> list[float] | None:
    """The numbers of a column whose every cell is one, else None (it sorts as text)."""
    numbers = [parse_number(c) for c in cells]
    if any(n is None for n in numbers):
        return None
    return [n for n in numbers if n is not None]


def _text_cell(text: str) -> dict[str, Any]:
    text = " ".join(text.split()) if "\n" in text or "\t" in text else text
    # Slack rejects empty cell text ("must be more than 0 characters").
    return {"type": "raw_text", "text": text if text.strip() else " "}


def _number_cell(text: str, value: float) -> dict[str, Any]:
    return {"type": "raw_number", "value": _number(value), "text": text.strip()}
