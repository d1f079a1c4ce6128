"""Visualizations: validate a Trellis ``visualization`` payload and render it off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import re
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from trellis_slack.viz import charts, tables
from trellis_slack.viz.charts import ChartSpec, Series
from trellis_slack.viz.tables import TableData

log = logging.getLogger(__name__)

#: Keys a chart item may use for its label, its value and its series (PROTOCOL.md, our decision).
_LABEL_KEYS = ("label", "text", "name", "x")
_VALUE_KEYS = ("value", "y")
_SERIES_KEYS = ("series", "group", "stack", "category")
#: Closest supported chart for chart types Trellis may invent; anything else becomes bars.
_ALIASES = {
    "column": "bar",
    "columns": "bar",
    "vertical_bar": "bar",
    "histogram": "bar",
    "grouped_bar": "bar",
    "horizontal_bar": "bar_horizontal",
    "barh": "bar_horizontal",
    "hbar": "bar_horizontal",
    "stacked": "stacked_bar",
    "stacked_column": "stacked_bar",
    "stacked_bars": "stacked_bar",
    "line_chart": "line",
    "timeseries": "line",
    "time_series": "line",
    "scatter": "line",
    "spline": "line",
    "area_chart": "area",
    "stacked_area": "area",
    "doughnut": "donut",
    "ring": "donut",
    "pie_chart": "pie",
}
_TYPE_NAMES = {
    "bar": "a bar chart",
    "bar_horizontal": "a horizontal bar chart",
    "stacked_bar": "a stacked bar chart",
    "line": "a line chart",
    "area": "an area chart",
    "pie": "a pie chart",
    "donut": "a donut chart",
}
_MAX_TITLE = 150
#: Larger magnitudes overflow matplotlib's transforms; such a chart is shown as a table.
_MAX_VALUE = 1e15
#: Payloads bigger than this many items are prepared in a thread, not on the event loop.
_INLINE_ITEMS = 2_000
_CANNOT_SHOW = "This visualization could not be shown."


@dataclass(frozen=True, slots=True)
class ChartImage:
    """A chart drawn as a PNG, to upload into the thread."""

    viz_id: str
    png: bytes
    filename: str
    title: str
    alt_text: str
    #: Plain words for the reader when the chart differs from what Trellis sent (mrkdwn-escaped).
    note: str | None = None


@dataclass(frozen=True, slots=True)
class TableMessage:
    """A table as one Slack message: ONE ``table`` block, plus a context line when cut or noted.

    ``csv`` (the full table) is set only when the block shows part of the table.
    """

    viz_id: str
    text: str
    blocks: tuple[dict[str, Any], ...]
    csv: bytes | None
    csv_filename: str | None
    title: str
    #: Why this is a table (a chart that could not be drawn); already shown in ``blocks``.
    #: ``text`` and ``note`` are mrkdwn-escaped.
    note: str | None = None


@dataclass(frozen=True, slots=True)
class VisualizationNote:
    """A short note for the reader when nothing of the visualization can be shown (mrkdwn-escaped)."""

    viz_id: str
    text: str


Rendered = ChartImage | TableMessage | VisualizationNote


@dataclass(frozen=True, slots=True)
class ChartJob:
    """A valid chart waiting for its PNG, with the data to show as a table if drawing fails."""

    viz_id: str
    spec: ChartSpec
    note: str | None
    data: TableData
    #: Also show ``data`` as a table (the chart could only draw part of it).
    with_table: bool = False

    def done(self, png: bytes) -> list[Rendered]:
        """The chart image (and the data table when the chart shows only part of it)."""
        image = ChartImage(
            viz_id=self.viz_id,
            png=png,
            filename=_slug(self.spec.title, "chart") + ".png",
            title=self.spec.title,
            alt_text=charts.describe(self.spec),
            note=_mrkdwn(self.note) if self.note else None,
        )
        if not self.with_table:
            return [image]
        return [image, _table_message(self.viz_id, self.data, f"{self.spec.title} (data)", None)]

    def failed(self, reason: str) -> list[Rendered]:
        """The chart's data as a table, saying why there is no picture."""
        note = f"This chart could not be drawn ({reason}); here is its data as a table."
        return [_table_message(self.viz_id, self.data, self.spec.title, note)]


def render_sync(viz_id: str, kind: str, payload: Mapping[str, Any]) -> list[Rendered]:
    """Everything a visualization turns into, drawn in this process; never raises.

    Bad data becomes a table of what was sent and/or a short note; the log names the
    visualization id, never the payload.
    """
    try:
        prepared = prepare(viz_id, kind, payload)
        if not isinstance(prepared, ChartJob):
            return prepared
        try:
            png = charts.render_png(prepared.spec)
        except Exception:
            log.exception("visualization %s: drawing the chart failed", viz_id)
            return _safe_failed(prepared, "drawing it failed")
        return prepared.done(png)
    except Exception:
        log.exception("visualization %s could not be rendered", viz_id)
        return [VisualizationNote(viz_id, _CANNOT_SHOW)]


def prepare(viz_id: str, kind: str, payload: Mapping[str, Any]) -> list[Rendered] | ChartJob:
    """Validates a payload: a chart to draw, or what to show instead (tables need no drawing)."""
    try:
        if not isinstance(payload, Mapping):
            return _note(viz_id, "payload is not an object", _CANNOT_SHOW)
        if kind == "table":
            return _table(viz_id, payload)
        if kind == "chart":
            return _chart(viz_id, payload)
        if isinstance(payload.get("rows"), list):
            return _table(viz_id, payload)
        if "data" in payload or "chart_type" in payload:
            return _chart(viz_id, payload)
        return _note(
            viz_id,
            "unknown visualization type",
            f"This visualization ({_quote(kind)}) is of a kind that cannot be shown in Slack.",
        )
    except Exception:
        log.exception("visualization %s could not be prepared", viz_id)
        return [VisualizationNote(viz_id, _CANNOT_SHOW)]


class Renderer:
    """Renders visualizations with charts drawn in a process pool, so the event loop stays free.

    Tables are built inline (in a thread when large). The same visualization id is rendered once:
    concurrent and repeated calls share the result.
    """

    def __init__(
        self, *, max_workers: int | None = None, timeout: float = 30.0, cache_size: int = 64
    ) -> None:
        self.max_workers = max_workers if max_workers is not None else _default_workers()
        self.timeout = timeout
        self._cache_size = cache_size
        self._cache: OrderedDict[str, list[Rendered]] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[list[Rendered]]] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._retired: list[ProcessPoolExecutor] = []
        self._closed = False

    async def render(self, viz_id: str, kind: str, payload: Mapping[str, Any]) -> list[Rendered]:
        """What to post for one visualization; never raises (a failed worker gives a table/note)."""
        cached = self._cache.get(viz_id)
        if cached is not None:
            self._cache.move_to_end(viz_id)
            return list(cached)
        task = self._inflight.get(viz_id)
        if task is None:
            task = asyncio.create_task(self._render(viz_id, kind, payload))
            self._inflight[viz_id] = task
            task.add_done_callback(lambda done: self._finished(viz_id, done))
        return list(await asyncio.shield(task))

    async def warm_up(self) -> None:
        """Starts every worker and loads matplotlib there, so the first chart is not slow."""
        loop = asyncio.get_running_loop()
        try:
            pool = self._ensure_pool()
            async with asyncio.timeout(self.timeout):
                await asyncio.gather(
                    *(loop.run_in_executor(pool, _warm) for _ in range(self.max_workers))
                )
        except Exception:
            log.warning("the chart workers could not be warmed up", exc_info=True)

    @property
    def worker_pids(self) -> tuple[int, ...]:
        """Process ids of the live chart workers (for monitoring, and tests that kill one)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return tuple(processes)

    def close(self, grace: float = 2.0) -> None:
        """Stops the workers: a chart being drawn gets ``grace`` seconds, then its worker is killed.

        Charts still waiting for a worker, and later calls to ``render``, get their data as a
        table with a note.
        """
        self._closed = True
        for retired in self._retired:
            retired.shutdown(wait=False, cancel_futures=True)
            _terminate(retired)
        self._retired.clear()
        current, self._pool = self._pool, None
        if current is not None:
            processes = list((getattr(current, "_processes", None) or {}).values())
            current.shutdown(wait=False, cancel_futures=True)
            deadline = time.monotonic() + grace
            for process in processes:
                process.join(max(0.0, deadline - time.monotonic()))
            _terminate(current, processes)

    async def _render(self, viz_id: str, kind: str, payload: Mapping[str, Any]) -> list[Rendered]:
        try:
            if _size_hint(payload) > _INLINE_ITEMS:
                prepared = await asyncio.to_thread(prepare, viz_id, kind, payload)
            else:
                prepared = prepare(viz_id, kind, payload)
            if not isinstance(prepared, ChartJob):
                return prepared
            if self._closed:
                return _safe_failed(prepared, "the bot is shutting down")
            try:
                png = await self._draw(prepared.spec)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # we are being cancelled, not the pool's future
                return _safe_failed(prepared, "the bot is shutting down")
            except TimeoutError:
                log.warning("visualization %s: drawing took longer than %ss", viz_id, self.timeout)
                return _safe_failed(prepared, "it took too long to draw")
            except Exception:
                if self._closed:
                    return _safe_failed(prepared, "the bot is shutting down")
                log.exception("visualization %s: the chart worker failed", viz_id)
                return _safe_failed(prepared, "drawing it failed")
            return prepared.done(png)
        except Exception:
            log.exception("visualization %s could not be rendered", viz_id)
            return [VisualizationNote(viz_id, _CANNOT_SHOW)]

    async def _draw(self, spec: ChartSpec) -> bytes:
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            pool = self._ensure_pool()
            try:
                async with asyncio.timeout(self.timeout):
                    return await loop.run_in_executor(pool, charts.render_png, spec)
            except BrokenProcessPool:
                # A worker died (perhaps drawing another chart): a fresh pool, one more try.
                self._retire(pool)
                if attempt == 2:
                    raise
            except TimeoutError:
                self._retire(pool)  # its stuck worker must not hold up the next charts
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._closed:
            raise RuntimeError("the renderer is closed")
        if self._pool is None:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context(
                "forkserver" if "forkserver" in methods else "spawn"
            )
            self._pool = ProcessPoolExecutor(
                max_workers=self.max_workers, mp_context=context, initializer=_worker_init
            )
        return self._pool

    def _retire(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
            self._retired.append(pool)
            pool.shutdown(wait=False, cancel_futures=False)

    def _finished(self, viz_id: str, task: asyncio.Task[list[Rendered]]) -> None:
        self._inflight.pop(viz_id, None)
        if task.cancelled() or task.exception() is not None or self._cache_size <= 0:
            return
        self._cache[viz_id] = task.result()
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


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
        return _note(viz_id, "chart without data", "This chart could not be shown: it had no data.")
    if isinstance(values, Mapping):
        values = [{"label": k, "value": v} for k, v in values.items()]
    if not isinstance(values, list):
        return _note(
            viz_id,
            "chart values not a list",
            "This chart could not be shown: its data was unreadable.",
        )
    if not values:
        return _note(viz_id, "empty chart", "This chart could not be shown: it had no data points.")
    notes: list[str] = []
    total = len(values)
    items = values[: charts.MAX_POINTS]
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
        return [_table_message(viz_id, table, title or "Chart data", note)]
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
    if chart_type in charts.SEGMENT_TYPES:
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
    if len(series) > charts.MAX_SERIES:
        ranked = sorted(series, key=lambda s: -sum(abs(v) for v in s.values if math.isfinite(v)))
        keep = ranked[: charts.MAX_SERIES - 1]
        rest = ranked[charts.MAX_SERIES - 1 :]
        if chart_type == "stacked_bar":
            folded = tuple(
                sum(s.values[i] for s in rest if math.isfinite(s.values[i]))
                for i in range(len(categories))
            )
            series = [s for s in series if s in keep] + [Series(f"Other ({len(rest)})", folded)]
            notes.append(f"The {len(rest)} smallest series are combined as “Other”.")
        else:
            series = [s for s in series if s in ranked[: charts.MAX_SERIES]]
            notes.append(f"Only the {charts.MAX_SERIES} largest of {len(ranked)} series are drawn.")
    if chart_type in charts.BAR_TYPES and len(categories) > charts.MAX_BARS:
        notes.append(
            f"Only the first {charts.MAX_BARS} of {len(categories):,} bars are drawn;"
            " the full data is in the table below."
        )
        categories = categories[: charts.MAX_BARS]
        series = [Series(s.name, s.values[: charts.MAX_BARS]) for s in series]
    return chart_type, categories, series, notes


def _resolve_type(raw: object, items: Sequence[object]) -> tuple[str, str | None]:
    if isinstance(raw, str) and raw in charts.CHART_TYPES:
        return raw, None
    key = re.sub(r"[\s-]+", "_", raw.strip().lower()) if isinstance(raw, str) else ""
    if key in charts.CHART_TYPES:
        return key, None
    chosen = _ALIASES.get(key)
    if chosen is None:
        segments = any(isinstance(i, Mapping) and "text" in i and "label" not in i for i in items)
        chosen = "pie" if segments else "bar"
    if raw is None or raw == "":
        return chosen, f"The chart type was missing, so it is drawn as {_TYPE_NAMES[chosen]}."
    return chosen, f"Unknown chart type {_quote(raw)}, drawn as {_TYPE_NAMES[chosen]}."


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
        return _note(viz_id, "table without rows", "This table could not be shown: it had no rows.")
    if not isinstance(rows, list):
        return _note(
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
        return _note(viz_id, "empty table", "This table could not be shown: it was empty.")
    if not table.rows:
        note = " ".join(filter(None, [note, "The table has no rows."]))
    title = _text(payload.get("title")) or _table_title(table.headers)
    return [_table_message(viz_id, table, title, note)]


def _table_message(viz_id: str, table: TableData, title: str, note: str | None) -> TableMessage:
    preview = tables.preview_blocks(table, note=note)
    size = f"{table.total_rows:,} row{'s' if table.total_rows != 1 else ''}"
    return TableMessage(
        viz_id=viz_id,
        text=_mrkdwn(f"{title} ({size})"),
        blocks=preview.blocks,
        csv=tables.to_csv(table) if preview.truncated else None,
        csv_filename=_slug(title, "table") + ".csv" if preview.truncated else None,
        title=title,
        note=_mrkdwn(note) if note else None,
    )


def _safe_failed(job: ChartJob, reason: str) -> list[Rendered]:
    try:
        return job.failed(reason)
    except Exception:
        log.exception("visualization %s: its data could not be shown as a table", job.viz_id)
        return [VisualizationNote(job.viz_id, "This chart could not be shown.")]


def _note(viz_id: str, reason: str, text: str) -> list[Rendered]:
    log.warning("visualization %s not shown: %s", viz_id, reason)
    return [VisualizationNote(viz_id, _mrkdwn(text))]


def _mrkdwn(text: str) -> str:
    """Text for Slack mrkdwn: quoted payload text cannot become a link or an @channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _size_hint(payload: Mapping[str, Any]) -> int:
    if not isinstance(payload, Mapping):
        return 0
    rows = payload.get("rows")
    data = payload.get("data")
    values = data.get("values") if isinstance(data, Mapping) else data
    return max(
        len(rows) if isinstance(rows, list) else 0, len(values) if isinstance(values, list) else 0
    )


def _default_title(chart_type: str, x_label: str, y_label: str) -> str:
    if x_label and y_label:
        return f"{y_label} by {x_label}"
    return _TYPE_NAMES.get(chart_type, "a chart")[2:].lstrip().capitalize()


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


def _slug(title: str, fallback: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60].rstrip("-")
    return slug or fallback


class _Missing:
    pass


_MISSING = _Missing()


def _default_workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus))


def _worker_init() -> None:
    """Runs in each render worker: yield the CPU to the bot's event loop first."""
    with contextlib.suppress(OSError):
        os.nice(5)


def _warm() -> None:
    charts.render_png(ChartSpec("bar", "warm-up", ("a",), (Series("Value", (1.0,)),)))


def _terminate(pool: ProcessPoolExecutor, processes: Sequence[Any] = ()) -> None:
    """Kills the workers of a pool that is shutting down (one may be stuck drawing)."""
    known = (getattr(pool, "_processes", None) or {}).values()
    for process in [*processes, *known]:
        if process.is_alive():
            process.terminate()
