"""Tables: a Trellis table as one Slack ``table`` block (a preview within Slack's limits) and a CSV."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Slack's table block: at most 100 rows (the header row is one of them) and 20 cells per row.
BLOCK_MAX_ROWS = 100
BLOCK_MAX_COLUMNS = 20
#: Our decision, not a documented limit: Slack rejects over-long cells (reported, limit unknown), so a
#: cell in the block is cut at this many characters; the CSV keeps it whole.
BLOCK_MAX_CELL_CHARS = 300
#: Our decision: characters across all cells of one preview; rows beyond it go to the CSV only.
BLOCK_MAX_TOTAL_CHARS = 20_000
#: Guards against payloads of megabytes: rows and columns read from a payload, characters per cell.
MAX_ROWS = 50_000
MAX_COLUMNS = 200
MAX_CELLS = 500_000
MAX_CELL_CHARS = 10_000
#: Cells that wrap in the block when a column holds text longer than this.
_WRAP_OVER_CHARS = 40

_NUMBER = re.compile(
    r"""
    (?P<sign>[-+\u2212])?
    (?P<currency>[$€£¥₹])?
    (?P<sign2>[-+\u2212])?
    (?P<digits>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
    (?P<exponent>[eE][-+]?\d+)?
    \s?(?P<suffix>[kKmMbB]|bn|%)?
    """,
    re.VERBOSE,
)
_SCALE = {"k": 1e3, "m": 1e6, "b": 1e9, "bn": 1e9, "%": 1.0, "": 1.0}


@dataclass(frozen=True, slots=True)
class TableData:
    """A table ready to show: headers and rows of display strings, plus the payload's real size."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    #: Rows and columns in the payload; larger than ``rows``/``headers`` when the payload was capped.
    total_rows: int
    total_columns: int

    @property
    def capped(self) -> bool:
        """Whether the payload had more rows or columns than were read."""
        return self.total_rows > len(self.rows) or self.total_columns > len(self.headers)


@dataclass(frozen=True, slots=True)
class TablePreview:
    """The blocks of one table message and how much of the table they show."""

    blocks: tuple[dict[str, Any], ...]
    shown_rows: int
    shown_columns: int
    truncated: bool


def parse_number(value: object) -> float | None:
    """The number in a cell or chart value (``1234``, ``"1,234"``, ``"$1.2M"``, ``"(5)"``), or None.

    Booleans, NaN and infinities are not numbers here.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 40:
        return None
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1].strip()
    match = _NUMBER.fullmatch(text)
    if match is None:
        return None
    signs = (match["sign"] or "") + (match["sign2"] or "")
    if len(signs) > 1:
        return None
    try:
        number = float(match["digits"].replace(",", "") + (match["exponent"] or ""))
    except ValueError:  # pragma: no cover - the pattern only lets valid literals through
        return None
    number *= _SCALE[(match["suffix"] or "").lower()]
    if signs in ("-", "\u2212"):
        negative = not negative
    if not math.isfinite(number):
        return None
    return -number if negative else number


def cell_text(value: object) -> str:
    """A cell as Trellis formatted it: strings unchanged, numbers as sent, ``null`` empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = str(value)
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def table_from_rows(headers: Sequence[object] | None, rows: Sequence[object]) -> TableData:
    """Reads rows given as lists or as objects keyed by header; pads ragged rows; caps huge ones.

    Without headers, objects supply their keys (in order of first appearance) and lists get
    "Column 1", "Column 2", …; a row longer than the headers adds columns.
    """
    names = [cell_text(h) for h in headers[:MAX_COLUMNS]] if headers is not None else []
    total_columns = len(headers) if headers is not None else 0
    kept = rows[: min(MAX_ROWS, MAX_CELLS // max(1, _width_hint(headers, rows)))]
    if headers is None:
        for row in kept:
            if isinstance(row, Mapping):
                for key in row:
                    name = cell_text(key)
                    if name not in names:
                        names.append(name)
        total_columns = len(names)
        names = names[:MAX_COLUMNS]
    index = {name: i for i, name in enumerate(names)}
    table: list[list[str]] = []
    for row in kept:
        if isinstance(row, Mapping):
            cells = [""] * len(names)
            for key, value in row.items():
                position = index.get(cell_text(key))
                if position is not None:
                    cells[position] = cell_text(value)
        elif isinstance(row, list | tuple):
            total_columns = max(total_columns, len(row))
            cells = [cell_text(value) for value in row[:MAX_COLUMNS]]
        else:
            cells = [cell_text(row)]
        table.append(cells)
    width = min(max([len(names), total_columns, *(len(r) for r in table)]), MAX_COLUMNS)
    names += [f"Column {i + 1}" for i in range(len(names), width)]
    return TableData(
        headers=tuple(names),
        rows=tuple(tuple(cells + [""] * (width - len(cells))) for cells in table),
        total_rows=len(rows),
        total_columns=max(total_columns, width),
    )


def numeric_columns(table: TableData) -> tuple[bool, ...]:
    """For each column: whether every non-empty cell of the preview is a number (right-aligned)."""
    preview = table.rows[: BLOCK_MAX_ROWS - 1]
    flags = []
    for column in range(len(table.headers)):
        cells = [row[column] for row in preview if row[column].strip()]
        flags.append(bool(cells) and all(parse_number(c) is not None for c in cells))
    return tuple(flags)


def preview_blocks(table: TableData, *, note: str | None = None) -> TablePreview:
    """One ``table`` block (bold header, numbers right-aligned), plus a context line when cut.

    The block shows at most 99 rows under the header and 20 columns; ``note`` (for example why a
    chart is shown as a table) goes into the context line too.
    """
    columns = min(len(table.headers), BLOCK_MAX_COLUMNS)
    budget = BLOCK_MAX_TOTAL_CHARS - sum(len(_block_cell(h)) for h in table.headers[:columns])
    shown: list[tuple[str, ...]] = []
    for row in table.rows[: BLOCK_MAX_ROWS - 1]:
        cells = tuple(_block_cell(c) for c in row[:columns])
        budget -= sum(len(c) for c in cells)
        if budget < 0 and shown:
            break
        shown.append(cells)
    numeric = numeric_columns(table)[:columns]
    block: dict[str, Any] = {
        "type": "table",
        "column_settings": [
            {"align": "right" if numeric[i] else "left", "is_wrapped": _wraps(table, i, numeric[i])}
            for i in range(columns)
        ],
        "rows": [
            [_header_cell(_block_cell(h)) for h in table.headers[:columns]],
            *([{"type": "raw_text", "text": c} for c in cells] for cells in shown),
        ],
    }
    truncated = len(shown) < table.total_rows or columns < table.total_columns
    lines = []
    if truncated:
        lines.append(_showing(len(shown), table.total_rows, columns, table.total_columns, table))
    if note:
        lines.append(note)
    blocks: list[dict[str, Any]] = [block]
    if lines:
        text = "\n".join(lines)
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(text)[:3000]}]}
        )
    return TablePreview(tuple(blocks), len(shown), columns, truncated)


def to_csv(table: TableData) -> bytes:
    """The whole table (as read) as UTF-8 CSV; cells that look like spreadsheet formulas are
    prefixed with ``'`` so opening the file cannot run them."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_csv_cell(h) for h in table.headers])
    writer.writerows([_csv_cell(c) for c in row] for row in table.rows)
    return out.getvalue().encode("utf-8")


def _width_hint(headers: Sequence[object] | None, rows: Sequence[object]) -> int:
    """Columns per row, guessed from the headers or the first row, to cap the cells read."""
    if headers is not None and len(headers):
        return min(len(headers), MAX_COLUMNS)
    first = rows[0] if len(rows) else None
    if isinstance(first, Mapping | list | tuple):
        return min(len(first), MAX_COLUMNS)
    return 1


def _showing(rows: int, total_rows: int, columns: int, total_columns: int, table: TableData) -> str:
    parts = []
    if rows < total_rows:
        parts.append(f"showing {rows:,} of {total_rows:,} rows")
    if columns < total_columns:
        parts.append(f"{columns:,} of {total_columns:,} columns")
    text = "Preview: " + " · ".join(parts) + ". The full table is in the CSV file in this thread."
    if table.capped:
        text += (
            f" The table was too large to read whole: the CSV holds the first"
            f" {len(table.rows):,} rows and {len(table.headers):,} columns."
        )
    return text


def _block_cell(text: str) -> str:
    text = " ".join(text.split()) if "\n" in text or "\t" in text else text
    if len(text) > BLOCK_MAX_CELL_CHARS:
        text = text[: BLOCK_MAX_CELL_CHARS - 1] + "…"
    # Slack rejects empty cell text ("must be more than 0 characters").
    return text if text.strip() else " "


def _header_cell(text: str) -> dict[str, Any]:
    return {
        "type": "rich_text",
        "elements": [
            {
                "type": "rich_text_section",
                "elements": [{"type": "text", "text": text, "style": {"bold": True}}],
            }
        ],
    }


def _wraps(table: TableData, column: int, numeric: bool) -> bool:
    if numeric:
        return False
    return any(len(row[column]) > _WRAP_OVER_CHARS for row in table.rows[: BLOCK_MAX_ROWS - 1])


def _csv_cell(text: str) -> str:
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and parse_number(text) is None:
        return "'" + text
    return text


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
