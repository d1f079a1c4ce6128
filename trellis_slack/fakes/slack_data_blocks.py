"""Slack's native chart and table blocks as the fake checks them: data_visualization, data_table.

Read from https://docs.slack.dev/reference/block-kit/blocks/data-visualization-block and
https://docs.slack.dev/reference/block-kit/blocks/data-table-block (2026), with Slack's own
``@slack/types`` (``RawNumberElement``) and the slack-messaging / slack-morphism crates where
the page is silent. The shapes accepted::

    {"type": "data_visualization", "title": "≤ 50 chars", "block_id": "…optional",
     "chart": {"type": "pie",
               "segments": [{"label": "≤ 20 chars", "value": 45}, …]}}         # 1-6, value > 0
    {"type": "data_visualization", "title": "…",
     "chart": {"type": "bar" | "area" | "line",
               "series": [{"name": "≤ 20 chars, unique",                       # 1-6 series
                           "data": [{"label": "Mon", "value": 200}, …]}, …],   # 1-20 points
               "axis_config": {"categories": ["Mon", …],                       # 1-20, ≤ 20 chars
                               "x_label": "≤ 50 chars, optional",
                               "y_label": "≤ 50 chars, optional"}}}

Each series has exactly one point per category (its labels are the categories; values are
numbers, negative allowed); at most two ``data_visualization`` blocks a message. ::

    {"type": "data_table", "caption": "required", "page_size": 1-100 (default 5),
     "row_header_column_index": 0…columns-1 (default 0), "block_id": "…optional",
     "rows": [[{"type": "raw_text", "text": "Region"}, {"type": "raw_text", "text": "Sales"}],
              [{"type": "raw_text", "text": "EMEA"},
               {"type": "raw_number", "value": 1234.5, "text": "1,234.5"}], …]}

2-101 rows (the first is the header, which may not hold ``rich_text``), 1-20 cells a row, every
row as long as the header; cells are ``raw_text`` (``text`` ≥ 1 char), ``raw_number``
(``value`` a number and ``text`` ≥ 1 char, its display) or ``rich_text`` (``elements``); at
most 10,000 characters of cell text in a table and across a message's tables.

From Slack's pages: chart types, the title, 1-6 segments or series, labels of 20, pie values
over 0, the data_table fields, rows, columns, cell types and characters. From the crates (the
stored copy of Slack's page stops at Data Series): series names of 20, 1-20 points, axis labels
of 50, categories of 20, one point per category, unique names, two charts a message. From
``@slack/types``: a ``raw_number`` carries ``text``. The fake's own reading: unique categories
and a ``row_header_column_index`` inside the table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Final

from trellis_slack.fakes.slack_model import JsonDict

__all__ = [
    "CELL_TYPES",
    "CHART_TYPES",
    "MAX_CATEGORIES",
    "MAX_CHARTS_PER_MESSAGE",
    "MAX_CHART_LABEL",
    "MAX_CHART_TITLE",
    "MAX_COLUMNS",
    "MAX_POINTS",
    "MAX_SEGMENTS",
    "MAX_SERIES",
    "MAX_TABLE_CHARS",
    "MAX_TABLE_ROWS",
    "data_table_problems",
    "data_visualization_problems",
    "message_problems",
    "table_chars",
]

#: ``chart.type`` of a ``data_visualization`` block.
CHART_TYPES: Final = frozenset({"pie", "bar", "area", "line"})
#: A chart's ``title``, and an axis's ``x_label`` / ``y_label``, in characters.
MAX_CHART_TITLE: Final = 50
#: A segment's or point's ``label``, a series ``name`` and a category, in characters.
MAX_CHART_LABEL: Final = 20
#: Segments of a pie.
MAX_SEGMENTS: Final = 6
#: Series of a bar, area or line chart (Slack's docs; slack-morphism allows 12, Slack says 6).
MAX_SERIES: Final = 6
#: Points of one series.
MAX_POINTS: Final = 20
#: Categories of an axis (one point per category in each series).
MAX_CATEGORIES: Final = MAX_POINTS
#: ``data_visualization`` blocks in one message.
MAX_CHARTS_PER_MESSAGE: Final = 2
#: Rows of a ``data_table``, its header included (100 data rows).
MAX_TABLE_ROWS: Final = 101
#: Cells in a ``data_table`` row.
MAX_COLUMNS: Final = 20
#: Characters of cell text in a ``data_table``, and across a message's ``data_table`` blocks.
MAX_TABLE_CHARS: Final = 10_000
#: The cells a ``data_table`` holds.
CELL_TYPES: Final = frozenset({"raw_text", "raw_number", "rich_text"})


def _error(message: str, pointer: str) -> str:
    return f"[ERROR] {message} [json-pointer:{pointer}]"


def _is_number(value: object) -> bool:
    """A JSON number: not a bool, a string or ``null``, and finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text_problems(value: object, limit: int, pointer: str, *, required: bool = True) -> list[str]:
    """A string field of 1..``limit`` characters (absent is fine when not ``required``)."""
    if value is None and not required:
        return []
    if not isinstance(value, str):
        return [_error("must be a string", pointer) if value is not None else _missing(pointer)]
    if not value:
        return [_error("must be more than 0 characters", pointer)]
    if len(value) > limit:
        return [_error(f"must be less than {limit + 1} characters", pointer)]
    return []


def _missing(pointer: str) -> str:
    parent, _, name = pointer.rpartition("/")
    return _error(f"missing required field: {name}", parent)


def _array_problems(value: object, low: int, high: int, pointer: str) -> list[str]:
    """An array of ``low``..``high`` items."""
    if value is None:
        return [_missing(pointer)]
    if not isinstance(value, list):
        return [_error("must be an array", pointer)]
    if len(value) < low:
        return [_error(f"must have at least {low} items", pointer)]
    if len(value) > high:
        return [_error(f"no more than {high} items allowed", pointer)]
    return []


# --------------------------------------------------------------------------- data_visualization


def _segment_problems(segment: object, pointer: str) -> list[str]:
    if not isinstance(segment, dict):
        return [_error("must be an object", pointer)]
    problems = _text_problems(segment.get("label"), MAX_CHART_LABEL, f"{pointer}/label")
    value = segment.get("value")
    if value is None:
        problems.append(_missing(f"{pointer}/value"))
    elif not _is_number(value):
        problems.append(_error("must be a number", f"{pointer}/value"))
    elif value <= 0:
        problems.append(_error("must be greater than 0", f"{pointer}/value"))
    return problems


def _pie_problems(chart: JsonDict, pointer: str) -> list[str]:
    segments = chart.get("segments")
    where = f"{pointer}/segments"
    problems = _array_problems(segments, 1, MAX_SEGMENTS, where)
    if isinstance(segments, list):
        for i, segment in enumerate(segments):
            problems += _segment_problems(segment, f"{where}/{i}")
    return problems


def _categories(axis: object, pointer: str) -> tuple[list[str], list[str]]:
    """The axis's categories (when valid) and its problems."""
    if axis is None:
        return [], [_missing(pointer)]
    if not isinstance(axis, dict):
        return [], [_error("must be an object", pointer)]
    problems: list[str] = []
    for key in ("x_label", "y_label"):
        problems += _text_problems(
            axis.get(key), MAX_CHART_TITLE, f"{pointer}/{key}", required=False
        )
    categories = axis.get("categories")
    where = f"{pointer}/categories"
    problems += _array_problems(categories, 1, MAX_CATEGORIES, where)
    if not isinstance(categories, list):
        return [], problems
    for i, category in enumerate(categories):
        problems += _text_problems(category, MAX_CHART_LABEL, f"{where}/{i}")
    names = [c for c in categories if isinstance(c, str)]
    if len(set(names)) != len(names):
        problems.append(_error("categories must be unique", where))
    return names, problems


def _points_problems(data: list[Any], categories: list[str], pointer: str) -> list[str]:
    """A series's points: labelled with the axis's categories, one each, numeric values."""
    problems: list[str] = []
    seen: set[str] = set()
    for i, point in enumerate(data):
        where = f"{pointer}/{i}"
        if not isinstance(point, dict):
            problems.append(_error("must be an object", where))
            continue
        label = point.get("label")
        label_problems = _text_problems(label, MAX_CHART_LABEL, f"{where}/label")
        problems += label_problems
        if not label_problems and isinstance(label, str):
            if categories and label not in categories:
                problems.append(_error("label must be one of the categories", f"{where}/label"))
            elif label in seen:
                problems.append(_error("duplicate label in series", f"{where}/label"))
            seen.add(label)
        if "value" not in point:
            problems.append(_missing(f"{where}/value"))
        elif not _is_number(point["value"]):
            problems.append(_error("must be a number", f"{where}/value"))
    if categories and not problems and seen != set(categories):
        problems.append(_error("must have one data point per category", pointer))
    return problems


def _series_chart_problems(chart: JsonDict, pointer: str) -> list[str]:
    categories, problems = _categories(chart.get("axis_config"), f"{pointer}/axis_config")
    series = chart.get("series")
    where = f"{pointer}/series"
    problems += _array_problems(series, 1, MAX_SERIES, where)
    if not isinstance(series, list):
        return problems
    names: set[str] = set()
    for i, one in enumerate(series):
        at = f"{where}/{i}"
        if not isinstance(one, dict):
            problems.append(_error("must be an object", at))
            continue
        name = one.get("name")
        problems += _text_problems(name, MAX_CHART_LABEL, f"{at}/name")
        if isinstance(name, str):
            if name in names:
                problems.append(_error("series names must be unique", f"{at}/name"))
            names.add(name)
        data = one.get("data")
        found = _array_problems(data, 1, MAX_POINTS, f"{at}/data")
        problems += found
        if not found and isinstance(data, list):
            problems += _points_problems(data, categories, f"{at}/data")
    return problems


def data_visualization_problems(block: JsonDict, pointer: str) -> list[str]:
    """Why Slack would refuse this ``data_visualization`` block (a chart): empty when valid."""
    problems = _text_problems(block.get("title"), MAX_CHART_TITLE, f"{pointer}/title")
    chart = block.get("chart")
    if chart is None:
        return [*problems, _missing(f"{pointer}/chart")]
    if not isinstance(chart, dict):
        return [*problems, _error("must be an object", f"{pointer}/chart")]
    kind = chart.get("type")
    if kind not in CHART_TYPES:
        return [*problems, _error(f"unsupported type: {kind}", f"{pointer}/chart/type")]
    if kind == "pie":
        return problems + _pie_problems(chart, f"{pointer}/chart")
    return problems + _series_chart_problems(chart, f"{pointer}/chart")


# --------------------------------------------------------------------------- data_table


def _cell_chars(cell: object) -> int:
    """The characters of text a cell shows (``rich_text`` counted through its elements)."""
    if isinstance(cell, list):
        return sum(_cell_chars(item) for item in cell)
    if not isinstance(cell, dict):
        return 0
    text = cell.get("text")
    own = len(text) if isinstance(text, str) else 0
    return own + _cell_chars(cell.get("elements"))


def table_chars(block: JsonDict) -> int:
    """Characters of cell text in a ``data_table`` block."""
    rows = block.get("rows")
    return _cell_chars(rows) if isinstance(rows, list) else 0


def _cell_problems(cell: object, pointer: str, *, header: bool) -> list[str]:
    if not isinstance(cell, dict):
        return [_error("must be an object", pointer)]
    kind = cell.get("type")
    if kind not in CELL_TYPES or (header and kind == "rich_text"):
        return [_error(f"unsupported type: {kind}", f"{pointer}/type")]
    if kind == "rich_text":
        elements = cell.get("elements")
        if not isinstance(elements, list) or not elements:
            return [_missing(f"{pointer}/elements")]
        return []
    problems = _text_problems(cell.get("text"), MAX_TABLE_CHARS, f"{pointer}/text")
    if kind == "raw_number":
        if "value" not in cell:
            problems.append(_missing(f"{pointer}/value"))
        elif not _is_number(cell["value"]):
            problems.append(_error("must be a number", f"{pointer}/value"))
    return problems


def _table_rows_problems(rows: list[Any], pointer: str) -> list[str]:
    problems: list[str] = []
    width: int | None = None
    for i, row in enumerate(rows):
        where = f"{pointer}/{i}"
        found = _array_problems(row, 1, MAX_COLUMNS, where)
        problems += found
        if found or not isinstance(row, list):
            continue
        if width is None:
            width = len(row)
        elif len(row) != width:
            problems.append(_error(f"must have {width} items, as the first row has", where))
        for j, cell in enumerate(row):
            problems += _cell_problems(cell, f"{where}/{j}", header=i == 0)
    return problems


def _int_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def data_table_problems(block: JsonDict, pointer: str) -> list[str]:
    """Why Slack would refuse this ``data_table`` block (a sortable table): empty when valid."""
    problems: list[str] = []
    caption = block.get("caption")
    if not isinstance(caption, str) or not caption:
        problems.append(_error("missing required field: caption", pointer))
    size = block.get("page_size")
    if size is not None and not _int_in(size, 1, 100):
        problems.append(_error("must be between 1 and 100", f"{pointer}/page_size"))
    rows = block.get("rows")
    found = _array_problems(rows, 2, MAX_TABLE_ROWS, f"{pointer}/rows")
    if found or not isinstance(rows, list):
        return problems + found
    problems += _table_rows_problems(rows, f"{pointer}/rows")
    width = len(rows[0]) if isinstance(rows[0], list) else 0
    index = block.get("row_header_column_index")
    if index is not None and not _int_in(index, 0, max(width - 1, 0)):
        where = f"{pointer}/row_header_column_index"
        problems.append(_error(f"must be between 0 and {max(width - 1, 0)}", where))
    if table_chars(block) > MAX_TABLE_CHARS:
        where = f"{pointer}/rows"
        problems.append(_error(f"cells exceed {MAX_TABLE_CHARS} characters in total", where))
    return problems


# --------------------------------------------------------------------------- a message's blocks


def message_problems(blocks: Iterable[object]) -> list[str]:
    """Limits on a whole message's blocks: one ``table``, two charts, 10,000 table characters.

    Applied to each message's ``blocks`` and, for a streamed message, to everything it holds:
    its ``blocks`` chunks so far, the ones a call adds and ``stopStream``'s ``blocks``.
    """
    counts: dict[str, int] = {}
    tables: list[int] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = str(block.get("type"))
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "data_table":
            tables.append(table_chars(block))
    problems: list[str] = []
    if counts.get("table", 0) > 1:
        problems.append(_error("only one table block is allowed per message", "/blocks"))
    if counts.get("data_visualization", 0) > MAX_CHARTS_PER_MESSAGE:
        problems.append(
            _error(f"no more than {MAX_CHARTS_PER_MESSAGE} data_visualization blocks", "/blocks")
        )
    # One table over the limit is reported at the table; several are reported here.
    if sum(tables) > MAX_TABLE_CHARS and max(tables) <= MAX_TABLE_CHARS:
        problems.append(
            _error(f"data_table cells exceed {MAX_TABLE_CHARS} characters in a message", "/blocks")
        )
    return problems
