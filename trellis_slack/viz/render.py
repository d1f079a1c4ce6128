"""A Trellis ``visualization`` payload validated into a chart to draw, or the table or note to show instead."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from trellis_slack.viz import tables
from trellis_slack.viz.native import ChartsMode
from trellis_slack.viz.rendered import (
    CANNOT_SHOW,
    ChartJob,
    Rendered,
    VisualizationNote,
    choose,
    safe_failed,
    table_message,
    unshowable,
    without_native,
)
from trellis_slack.viz.spec import (
    ALIASES,
    BAR_TYPES,
    CHART_TYPES,
    MAX_BARS,
    MAX_POINTS,
    MAX_SERIES,
    SEGMENT_TYPES,
    TYPE_NAMES,
    ChartSpec,
    Series,
)
from trellis_slack.viz.tables import TableData

log = logging.getLogger(__name__)

#: Keys a chart item may use for its label, its value and its series (PROTOCOL.md, our decision).
_LABEL_KEYS = ("label", "text", "name", "x")
_VALUE_KEYS = ("value", "y")
_SERIES_KEYS = ("series", "group", "stack", "category")
_MAX_TITLE = 150
#: Larger magnitudes overflow matplotlib's transforms; such a chart is shown as a table.
_MAX_VALUE = 1e15


def render_sync(
    viz_id: str, kind: str, payload: Mapping[str, Any], charts: ChartsMode = "auto"
) -> list[Rendered]:
    """Everything a visualization turns into, drawn in this process; never raises.

    Bad data becomes a table of what was sent and/or a short note; the log names the
    visualization id, never the payload.
    """
    try:
        prepared = prepare(viz_id, kind, payload, charts)
        if not isinstance(prepared, ChartJob):
            return prepared
        try:
            png = draw_png(prepared.spec)
        except Exception:
            log.exception("visualization %s: drawing the chart failed", viz_id)
            return safe_failed(prepared, "drawing it failed")
        return prepared.done(png)
    except Exception:
        log.exception("visualization %s could not be rendered", viz_id)
        return [VisualizationNote(viz_id, CANNOT_SHOW)]


def prepare(
    viz_id: str, kind: str, payload: Mapping[str, Any], charts: ChartsMode = "auto"
) -> list[Rendered] | ChartJob:
    """Validates a payload: a PNG chart to draw, or what to show instead (no drawing needed).

    ``charts`` (``SLACK_CHARTS``) says when a chart is Slack's own ``data_visualization``
    block instead of a PNG, and ``png`` keeps tables to ``table`` blocks: see ``ChartsMode``.
    """
    prepared = _prepare(viz_id, kind, payload)
    if isinstance(prepared, ChartJob):
        return choose(prepared, charts)
    return without_native(prepared) if charts == "png" else prepared


def _prepare(viz_id: str, kind: str, payload: Mapping[str, Any]) -> list[Rendered] | ChartJob:
    try:
        if not isinstance(payload, Mapping):
            return unshowable(viz_id, "payload is not an object", CANNOT_SHOW)
        if kind == "table":
            return _table(viz_id, payload)
        if kind == "chart":
            return _chart(viz_id, payload)
        if isinstance(payload.get("rows"), list):
            return _table(viz_id, payload)
        if "data" in payload or "chart_type" in payload:
            return _chart(viz_id, payload)
        return unshowable(
            viz_id,
            "unknown visualization type",
            f"This visualization ({_quote(kind)}) is of a kind that cannot be shown in Slack.",
        )
    except Exception:
        log.exception("visualization %s could not be prepared", viz_id)
        return [VisualizationNote(viz_id, CANNOT_SHOW)]


def _chart(viz_id: str, payload: Mapping[str, Any]) -> list[Rendered] | ChartJob:
    title = _text(payload.get("title"))
    data = payload.get("data")
    if isinstance(data, Mapping):
        values = data.get("values")
        x_label, y_label = _text(data.get("x_axis_label")), _text(data.get("y_axis_label"))
        if values is None and isinstance(data.get("rows"), list):
            return _table(viz_id, {**data, "title": title or data.get("title")})
    else:
        values, x_label, y_label = data, "", ""
    if data is None or values is None:
        return unshowable(
            viz_id, "chart without data", "This chart could not be shown: it had no data."
        )
    if isinstance(values, Mapping):
        values = [{"label": k, "value": v} for k, v in values.items()]
    if not isinstance(values, list):
        return unshowable(
            viz_id,
            "chart values not a list",
            "This chart could not be shown: its data was unreadable.",
        )
    if not values:
        return unshowable(
            viz_id, "empty chart", "This chart could not be shown: it had no data points."
        )
    notes: list[str] = []
    total = len(values)
    items = values[:MAX_POINTS]
    if total > len(items):
        notes.append(f"Only the first {len(items):,} of {total:,} points are used.")
    chart_type, type_note = _resolve_type(payload.get("chart_type"), items)
    if type_note:
        notes.append(type_note)
    table = _items_table(items, total, x_label, y_label)
    points = _points(items)
    if isinstance(points, str):
        log.warning("visualization %s: chart data cannot be drawn; shown as a table", viz_id)
        note = " ".join([*notes, f"This chart could not be drawn: {points}."])
        note += " Here is its data as a table."
        return [table_message(viz_id, table, title or "Chart data", note)]
    categories, series = _pivot(points, stack=chart_type == "stacked_bar")
    chart_type, shown, series, more = _fit(chart_type, categories, series)
    notes += more
    spec = ChartSpec(
        chart_type=chart_type,
        title=title or _default_title(chart_type, x_label, y_label),
        categories=tuple(shown),
        series=tuple(series),
        x_label=x_label,
        y_label=y_label,
    )
    if notes:
        log.info("visualization %s: %s", viz_id, " ".join(notes))
    with_table = len(shown) < len(categories) or total > len(items)
    return ChartJob(viz_id, spec, " ".join(notes) or None, table, with_table)


def _points(items: Sequence[object]) -> list[tuple[str, str | None, float]] | str:
    """(label, series, value) per item, or what is wrong, in words for the reader.

    An item without ``value`` but with other numeric keys (``{"label": "Q1", "Online": 3}``)
    gives a point per key, that key being its series.
    """
    points: list[tuple[str, str | None, float]] = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            return f"point {position + 1} is not a label and a value"
        label = next((item[k] for k in _LABEL_KEYS if k in item), None)
        name = tables.cell_text(label).strip()[:200] if label is not None else ""
        name = name or f"#{position + 1}"
        raw = next((item[k] for k in _VALUE_KEYS if k in item), _MISSING)
        if raw is _MISSING:
            wide = [
                (tables.cell_text(k)[:100], tables.parse_number(v))
                for k, v in item.items()
                if k not in _LABEL_KEYS and k not in _SERIES_KEYS
            ]
            if not wide or any(number is None for _, number in wide):
                return f"point {_quote(name)} has no value"
            if any(number is not None and abs(number) > _MAX_VALUE for _, number in wide):
                return f"a value of {_quote(name)} is too large to draw"
            points.extend((name, key, number) for key, number in wide if number is not None)
            continue
        number = math.nan if raw is None else tables.parse_number(raw)
        if number is None:
            return f"the value of {_quote(name)} ({_quote(raw)}) is not a number"
        if abs(number) > _MAX_VALUE:
            return f"the value of {_quote(name)} is too large to draw"
        group = next((item[k] for k in _SERIES_KEYS if k in item and item[k] is not None), None)
        points.append((name, None if group is None else tables.cell_text(group)[:100], number))
    if all(math.isnan(v) for _, _, v in points):
        return "it has no values"
    return points


def _pivot(
    points: list[tuple[str, str | None, float]], *, stack: bool
) -> tuple[list[str], list[Series]]:
    """Categories and series: one series per series key, else one series in payload order."""
    if all(group is None for _, group, _ in points):
        return [p[0] for p in points], [Series("Value", tuple(p[2] for p in points))]
    categories: dict[str, int] = {}
    groups: dict[str, dict[str, float]] = {}
    for label, group, value in points:
        categories.setdefault(label, len(categories))
        cells = groups.setdefault(group or "Other", {})
        previous = cells.get(label, math.nan)
        cells[label] = (
            value if math.isnan(previous) else previous + (0.0 if math.isnan(value) else value)
        )
    names = list(categories)
    default = 0.0 if stack else math.nan
    return names, [
        Series(name, tuple(cells.get(c, default) for c in names)) for name, cells in groups.items()
    ]


def _fit(
    chart_type: str, categories: list[str], series: list[Series]
) -> tuple[str, list[str], list[Series], list[str]]:
    """Adapts the chart to what can be drawn legibly; returns the notes saying how."""
    notes: list[str] = []
    if chart_type in SEGMENT_TYPES:
        if len(series) > 1:
            notes.append(
                f"This {chart_type} chart has several series, so it is drawn as stacked bars."
            )
            chart_type = "stacked_bar"
        else:
            finite = [v for v in series[0].values if math.isfinite(v)]
            if any(v < 0 for v in finite):
                notes.append(
                    f"This {chart_type} chart has negative values, so it is drawn as bars."
                )
                chart_type = "bar"
            elif not any(v > 0 for v in finite):
                notes.append(
                    f"All values of this {chart_type} chart are zero, so it is drawn as bars."
                )
                chart_type = "bar"
    if len(series) > MAX_SERIES:
        ranked = sorted(series, key=lambda s: -sum(abs(v) for v in s.values if math.isfinite(v)))
        keep = ranked[: MAX_SERIES - 1]
        rest = ranked[MAX_SERIES - 1 :]
        if chart_type == "stacked_bar":
            folded = tuple(
                sum(s.values[i] for s in rest if math.isfinite(s.values[i]))
                for i in range(len(categories))
            )
            series = [s for s in series if s in keep] + [Series(f"Other ({len(rest)})", folded)]
            notes.append(f"The {len(rest)} smallest series are combined as “Other”.")
        else:
            series = [s for s in series if s in ranked[:MAX_SERIES]]
            notes.append(f"Only the {MAX_SERIES} largest of {len(ranked)} series are drawn.")
    if chart_type in BAR_TYPES and len(categories) > MAX_BARS:
        notes.append(
            f"Only the first {MAX_BARS} of {len(categories):,} bars are drawn;"
            " the full data is in the table below."
        )
        categories = categories[:MAX_BARS]
        series = [Series(s.name, s.values[:MAX_BARS]) for s in series]
    return chart_type, categories, series, notes


def _resolve_type(raw: object, items: Sequence[object]) -> tuple[str, str | None]:
    if isinstance(raw, str) and raw in CHART_TYPES:
        return raw, None
    key = re.sub(r"[\s-]+", "_", raw.strip().lower()) if isinstance(raw, str) else ""
    if key in CHART_TYPES:
        return key, None
    chosen = ALIASES.get(key)
    if chosen is None:
        segments = any(isinstance(i, Mapping) and "text" in i and "label" not in i for i in items)
        chosen = "pie" if segments else "bar"
    if raw is None or raw == "":
        return chosen, f"The chart type was missing, so it is drawn as {TYPE_NAMES[chosen]}."
    return chosen, f"Unknown chart type {_quote(raw)}, drawn as {TYPE_NAMES[chosen]}."


def _items_table(items: Sequence[object], total: int, x_label: str, y_label: str) -> TableData:
    """The chart's items as they were sent, one column per key (labels renamed after the axes)."""
    if not all(isinstance(i, Mapping) for i in items):
        return tables.table_from_rows(["Value"], [[i] for i in items])
    rename = {k: x_label for k in _LABEL_KEYS if x_label}
    rename |= {k: y_label for k in _VALUE_KEYS if y_label}
    rows = [
        {_column_name(str(k), rename): v for k, v in item.items()}
        for item in items
        if isinstance(item, Mapping)
    ]
    table = tables.table_from_rows(None, rows)
    return TableData(table.headers, table.rows, max(total, table.total_rows), table.total_columns)


def _column_name(key: str, rename: Mapping[str, str]) -> str:
    return rename.get(key) or key[:1].upper() + key[1:]


def _table(viz_id: str, payload: Mapping[str, Any]) -> list[Rendered]:
    rows = payload.get("rows")
    headers = payload.get("headers")
    data = payload.get("data")
    if rows is None and isinstance(data, Mapping):
        rows, headers = data.get("rows"), data.get("headers", headers)
    if rows is None:
        return unshowable(
            viz_id, "table without rows", "This table could not be shown: it had no rows."
        )
    if not isinstance(rows, list):
        return unshowable(
            viz_id,
            "table rows not a list",
            "This table could not be shown: its rows were unreadable.",
        )
    note = None
    if headers is not None and not isinstance(headers, list):
        log.warning("visualization %s: table headers not a list", viz_id)
        headers, note = None, "The column names were unreadable."
    table = tables.table_from_rows(headers, rows)
    if not table.headers:
        return unshowable(viz_id, "empty table", "This table could not be shown: it was empty.")
    if not table.rows:
        note = " ".join(filter(None, [note, "The table has no rows."]))
    title = _text(payload.get("title")) or _table_title(table.headers)
    return [table_message(viz_id, table, title, note)]


def _default_title(chart_type: str, x_label: str, y_label: str) -> str:
    if x_label and y_label:
        return f"{y_label} by {x_label}"
    return TYPE_NAMES.get(chart_type, "a chart")[2:].lstrip().capitalize()


def _table_title(headers: Sequence[str]) -> str:
    named = [h for h in headers if h.strip()]
    if not named:
        return "Table"
    shown = ", ".join(named[:4])
    return f"Table: {shown}{', …' if len(named) > 4 else ''}"


def _text(value: object) -> str:
    if not isinstance(value, str):
        return ""
    text = " ".join(value.split())
    return text if len(text) <= _MAX_TITLE else text[: _MAX_TITLE - 1] + "…"


def _quote(value: object) -> str:
    text = value if isinstance(value, str) else tables.cell_text(value)
    text = " ".join(text.split())
    return f"“{text[:40]}{'…' if len(text) > 40 else ''}”"


class _Missing:
    pass


_MISSING = _Missing()


def draw_png(chart: ChartSpec) -> bytes:
    """The chart as PNG bytes (what a chart worker runs).

    matplotlib is imported here, on the first chart, so the bot's own process never loads it:
    only the chart workers (and ``render_sync``) draw.
    """
    from trellis_slack.viz import charts  # noqa: PLC0415 - keeps matplotlib out of the bot process

    return charts.render_png(chart)
