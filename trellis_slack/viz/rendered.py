"""What a visualization becomes in Slack: a native chart, a chart image, a table message or a note."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any

from trellis_slack.viz import native, tables
from trellis_slack.viz.native import ChartsMode
from trellis_slack.viz.spec import ChartSpec, describe
from trellis_slack.viz.tables import TableData

log = logging.getLogger(__name__)

CANNOT_SHOW = "This visualization could not be shown."


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
class NativeChart:
    """A chart Slack draws itself: one ``data_visualization`` block to put inside the answer.

    Slack shows at most two such blocks a message. Should Slack refuse the block, the renderer
    draws ``job`` as the PNG instead (``Renderer.draw_instead``).
    """

    viz_id: str
    block: dict[str, Any]
    title: str
    alt_text: str
    #: Plain words for the reader when Slack's form differs from Trellis's (mrkdwn-escaped).
    note: str | None = None
    job: ChartJob | None = field(default=None, repr=False, compare=False)


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
    #: The same message with a sortable ``data_table`` block (the whole table) in place of the
    #: ``table`` block, when the whole table fits one; sent, it needs no CSV (``csv`` belongs to
    #: the preview in ``blocks``, the fallback for a workspace that refuses ``data_table``).
    native_blocks: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True, slots=True)
class VisualizationNote:
    """A short note for the reader when nothing of the visualization can be shown (mrkdwn-escaped)."""

    viz_id: str
    text: str


Rendered = NativeChart | ChartImage | TableMessage | VisualizationNote


@dataclass(frozen=True, slots=True)
class ChartJob:
    """A valid chart waiting for its PNG, with the data to show as a table if drawing fails."""

    viz_id: str
    spec: ChartSpec
    note: str | None
    data: TableData
    #: Also show ``data`` as a table (the chart could only draw part of it).
    with_table: bool = False
    #: Tables may be native ``data_table`` blocks (not in the ``png`` mode).
    native_tables: bool = True

    def done(self, png: bytes) -> list[Rendered]:
        """The chart image (and the data table when the chart shows only part of it)."""
        image = ChartImage(
            viz_id=self.viz_id,
            png=png,
            filename=slug(self.spec.title, "chart") + ".png",
            title=self.spec.title,
            alt_text=describe(self.spec),
            note=mrkdwn(self.note) if self.note else None,
        )
        if not self.with_table:
            return [image]
        title = f"{self.spec.title} (data)"
        return [image, table_message(self.viz_id, self.data, title, None, self.native_tables)]

    def failed(self, reason: str) -> list[Rendered]:
        """The chart's data as a table, saying why there is no picture."""
        note = f"This chart could not be drawn ({reason}); here is its data as a table."
        return [table_message(self.viz_id, self.data, self.spec.title, note, self.native_tables)]


def choose(job: ChartJob, mode: ChartsMode) -> list[Rendered] | ChartJob:
    """A native chart when Slack can show the whole chart in this mode, else the PNG to draw."""
    if mode == "png":
        return replace(job, native_tables=False)
    if job.with_table:
        return job  # the chart shows part of the data: a PNG with the table beside it
    chosen = native.chart_block(job.spec, mode)
    if chosen is None:
        return job
    block, form = chosen
    note = " ".join(filter(None, [job.note, form])) or None
    return [
        NativeChart(
            viz_id=job.viz_id,
            block=block,
            title=job.spec.title,
            alt_text=describe(job.spec),
            note=mrkdwn(note) if note else None,
            job=job,
        )
    ]


def without_native(items: list[Rendered]) -> list[Rendered]:
    """``items`` with tables as today's ``table`` blocks only (the ``png`` mode)."""
    return [replace(i, native_blocks=None) if isinstance(i, TableMessage) else i for i in items]


def safe_failed(job: ChartJob, reason: str) -> list[Rendered]:
    """``job.failed(reason)``, or a note if even the table cannot be built; never raises."""
    try:
        return job.failed(reason)
    except Exception:
        log.exception("visualization %s: its data could not be shown as a table", job.viz_id)
        return [VisualizationNote(job.viz_id, "This chart could not be shown.")]


def table_message(
    viz_id: str, table: TableData, title: str, note: str | None, native_table: bool = True
) -> TableMessage:
    """A table as its Slack message: the preview block, and the full CSV when the preview is cut.

    A table that fits Slack's ``data_table`` whole also gets ``native_blocks``.
    """
    preview = tables.preview_blocks(table, note=note)
    size = f"{table.total_rows:,} row{'s' if table.total_rows != 1 else ''}"
    sortable = native.table_block(table, title) if native_table else None
    return TableMessage(
        viz_id=viz_id,
        text=mrkdwn(f"{title} ({size})"),
        blocks=preview.blocks,
        csv=tables.to_csv(table) if preview.truncated else None,
        csv_filename=slug(title, "table") + ".csv" if preview.truncated else None,
        title=title,
        note=mrkdwn(note) if note else None,
        native_blocks=None if sortable is None else (sortable, *_note_blocks(note)),
    )


def _note_blocks(note: str | None) -> tuple[dict[str, Any], ...]:
    """The context line under a native table: only the note (the table is whole)."""
    if not note:
        return ()
    return ({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(note)[:3000]}]},)


def unshowable(viz_id: str, reason: str, text: str) -> list[Rendered]:
    """A note for the reader; ``reason`` (no payload data) goes to the log."""
    log.warning("visualization %s not shown: %s", viz_id, reason)
    return [VisualizationNote(viz_id, mrkdwn(text))]


def mrkdwn(text: str) -> str:
    """Text for Slack mrkdwn: quoted payload text cannot become a link or an @channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slug(title: str, fallback: str) -> str:
    """A file name stem from a title: ``"Orders by Region"`` → ``orders-by-region``."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60].rstrip("-")
    return slug or fallback
