"""Tests for trellis_slack.viz.tables: Slack table blocks and CSV files."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from trellis_slack.viz import tables
from trellis_slack.viz.tables import TableData


def texts(block: dict[str, Any]) -> list[list[str]]:
    """The text of every cell of a table block, header included."""
    out = []
    for row in block["rows"]:
        cells = []
        for cell in row:
            if cell["type"] == "raw_text":
                cells.append(cell["text"])
            else:
                cells.append(cell["elements"][0]["elements"][0]["text"])
        out.append(cells)
    return out


def context_text(blocks: tuple[dict[str, Any], ...]) -> str:
    (context,) = [b for b in blocks if b["type"] == "context"]
    return str(context["elements"][0]["text"])


def grid(rows: int, columns: int) -> TableData:
    return tables.table_from_rows(
        [f"C{c}" for c in range(columns)],
        [[f"r{r}c{c}" for c in range(columns)] for r in range(rows)],
    )


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (1234, 1234.0),
        (12.5, 12.5),
        ("1,234", 1234.0),
        ("1,234,000", 1234000.0),
        (" 42 ", 42.0),
        ("-3.5", -3.5),
        ("$1,234.50", 1234.5),
        ("-$5", -5.0),
        ("(1,200)", -1200.0),
        ("12%", 12.0),
        ("1.2M", 1_200_000.0),
        ("3K", 3000.0),
        ("2bn", 2e9),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("€7", 7.0),
    ],
)
def test_parse_number_reads_formatted_numbers(value: object, number: float) -> None:
    """Numbers Trellis formats for people ("1,234", "$1.2M", "(5)") are read as numbers."""
    assert tables.parse_number(value) == pytest.approx(number)


@pytest.mark.parametrize(
    "value",
    [True, None, "", "n/a", "abc", "2024-01-05", "12 kg", "1,23", "--5", float("nan"), "inf", [1]],
)
def test_parse_number_rejects_non_numbers(value: object) -> None:
    """Dates, words, booleans, NaN and malformed numbers are not numbers."""
    assert tables.parse_number(value) is None


def test_cells_keep_trellis_formatting() -> None:
    """Strings stay as sent; numbers print as sent; null is empty; objects become JSON."""
    assert tables.cell_text("1,234,000") == "1,234,000"
    assert tables.cell_text(2024) == "2024"
    assert tables.cell_text(0.25) == "0.25"
    assert tables.cell_text(None) == ""
    assert tables.cell_text(False) == "false"
    assert tables.cell_text({"a": 1}) == '{"a": 1}'


def test_rows_as_objects_follow_the_headers() -> None:
    """Rows given as objects keyed by header land in the header's column; missing keys are empty."""
    table = tables.table_from_rows(
        ["Region", "Sales"], [{"Sales": "1,234", "Region": "North"}, {"Region": "South"}]
    )
    assert table.rows == (("North", "1,234"), ("South", ""))


def test_rows_as_objects_without_headers_supply_the_columns() -> None:
    """Without headers, the objects' keys become the columns in order of first appearance."""
    table = tables.table_from_rows(None, [{"a": 1}, {"b": 2, "a": 3}])
    assert table.headers == ("a", "b")
    assert table.rows == (("1", ""), ("3", "2"))


def test_ragged_rows_are_padded_and_extra_cells_get_columns() -> None:
    """Short rows are padded; a row longer than the headers adds a named column."""
    table = tables.table_from_rows(["A"], [["1"], ["2", "3"], "lonely"])
    assert table.headers == ("A", "Column 2")
    assert table.rows == (("1", ""), ("2", "3"), ("lonely", ""))


def test_table_block_has_bold_header_and_right_aligned_numbers() -> None:
    """The header row is bold rich text; numeric columns are right-aligned, text left."""
    table = tables.table_from_rows(
        ["Region", "Sales"], [["North", "1,234,000"], ["South", 987500], ["East", None]]
    )
    preview = tables.preview_blocks(table)
    (block,) = preview.blocks
    header = block["rows"][0][0]
    assert header["type"] == "rich_text"
    assert header["elements"][0]["elements"][0]["style"] == {"bold": True}
    assert [s["align"] for s in block["column_settings"]] == ["left", "right"]
    assert texts(block) == [
        ["Region", "Sales"],
        ["North", "1,234,000"],
        ["South", "987500"],
        ["East", " "],
    ]
    assert not preview.truncated


def test_table_block_is_valid_for_slack_sdk() -> None:
    """slack-sdk parses our table and context blocks back to the same JSON."""
    preview = tables.preview_blocks(grid(150, 3), note="A note")
    for block in preview.blocks:
        assert Block.parse(block).to_dict() == block  # type: ignore[union-attr]


def test_table_at_the_limits_is_shown_whole() -> None:
    """99 rows under the header and 20 columns fit one block: no preview line, no CSV needed."""
    preview = tables.preview_blocks(grid(99, 20))
    (block,) = preview.blocks
    assert len(block["rows"]) == tables.BLOCK_MAX_ROWS
    assert all(len(row) == tables.BLOCK_MAX_COLUMNS for row in block["rows"])
    assert not preview.truncated


def test_table_beyond_the_limits_is_a_preview_that_says_so() -> None:
    """A table of 2,345 rows and 31 columns shows 99 rows and 20 columns and says how much is shown."""
    preview = tables.preview_blocks(grid(2345, 31))
    block = preview.blocks[0]
    assert len(block["rows"]) == 100
    assert all(len(row) == 20 for row in block["rows"])
    assert len(block["column_settings"]) == 20
    assert preview.truncated
    assert (preview.shown_rows, preview.shown_columns) == (99, 20)
    text = context_text(preview.blocks)
    assert "showing 99 of 2,345 rows" in text
    assert "20 of 31 columns" in text
    assert "CSV" in text


def test_one_row_too_many_is_truncated() -> None:
    """100 data rows (101 with the header) no longer fit: the preview shows 99."""
    preview = tables.preview_blocks(grid(100, 2))
    assert preview.truncated
    assert "showing 99 of 100 rows" in context_text(preview.blocks)


def test_long_cells_are_cut_in_the_block_but_not_in_the_csv() -> None:
    """A huge cell is shortened in the block; the CSV keeps it whole."""
    long = "x" * 5000
    table = tables.table_from_rows(["Notes"], [[long]])
    block = tables.preview_blocks(table).blocks[0]
    cell = texts(block)[1][0]
    assert len(cell) == tables.BLOCK_MAX_CELL_CHARS
    assert cell.endswith("…")
    assert block["column_settings"][0]["is_wrapped"] is True
    assert long in tables.to_csv(table).decode()


def test_preview_stays_within_a_character_budget() -> None:
    """Rows of very long cells stop the preview before the block grows too big for Slack."""
    table = tables.table_from_rows(["A", "B"], [["a" * 300, "b" * 300] for _ in range(99)])
    preview = tables.preview_blocks(table)
    shown = preview.shown_rows
    assert 0 < shown < 99
    assert shown * 600 <= tables.BLOCK_MAX_TOTAL_CHARS


def test_note_goes_into_the_context_line() -> None:
    """A note (why a chart became a table) is shown under the table, escaped for mrkdwn."""
    preview = tables.preview_blocks(grid(2, 2), note="Value <b> & more")
    assert context_text(preview.blocks) == "Value &lt;b&gt; &amp; more"


def test_csv_has_every_row_and_column_with_trellis_formatting() -> None:
    """The CSV holds the whole table, header first, cells exactly as Trellis sent them."""
    table = tables.table_from_rows(
        ["Region", "Sales", "Delta"],
        [["North", "1,234,000", -5], ["South, West", "987,500", "-1.5%"]],
    )
    rows = list(csv.reader(io.StringIO(tables.to_csv(table).decode("utf-8"))))
    assert rows == [
        ["Region", "Sales", "Delta"],
        ["North", "1,234,000", "-5"],
        ["South, West", "987,500", "-1.5%"],
    ]


def test_csv_of_a_large_table_has_all_rows() -> None:
    """Beyond the block's limits the CSV still carries every row and column."""
    table = grid(2345, 31)
    rows = list(csv.reader(io.StringIO(tables.to_csv(table).decode())))
    assert len(rows) == 2346
    assert len(rows[-1]) == 31
    assert rows[-1][-1] == "r2344c30"


def test_csv_defuses_spreadsheet_formulas() -> None:
    """Cells that would run as formulas in a spreadsheet are prefixed with a quote."""
    table = tables.table_from_rows(["A"], [["=HYPERLINK(1)"], ["@SUM(A1)"], ["+cmd"], ["-2"]])
    rows = list(csv.reader(io.StringIO(tables.to_csv(table).decode())))
    assert [r[0] for r in rows[1:]] == ["'=HYPERLINK(1)", "'@SUM(A1)", "'+cmd", "-2"]


def test_huge_tables_are_capped_and_say_so() -> None:
    """A table of more rows than we read keeps its real size and the preview says it was cut."""
    rows = [[i, "x"] for i in range(tables.MAX_ROWS + 10)]
    table = tables.table_from_rows(["n", "x"], rows)
    assert len(table.rows) == tables.MAX_ROWS
    assert table.total_rows == tables.MAX_ROWS + 10
    assert table.capped
    assert f"first {tables.MAX_ROWS:,} rows" in context_text(tables.preview_blocks(table).blocks)
