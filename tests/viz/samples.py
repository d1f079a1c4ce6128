"""Visualization payloads and accessors shared by the viz tests (the contract's own examples)."""

from __future__ import annotations

from typing import Any

from trellis_slack.viz.renderer import ChartImage, Rendered, TableMessage, VisualizationNote

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: The contract's own example (v-seed).
ORDERS: dict[str, Any] = {
    "id": "ab12xy3456",
    "type": "chart",
    "chart_type": "bar",
    "title": "Orders by Region",
    "data": {
        "values": [
            {"label": "North", "value": 412},
            {"label": "South", "value": 289},
            {"label": "East", "value": 531},
        ],
        "x_axis_label": "Region",
        "y_axis_label": "Orders",
    },
}
SALES_TABLE: dict[str, Any] = {
    "id": "kl78mn9012",
    "type": "table",
    "headers": ["Region", "Sales"],
    "rows": [["North", "1,234,000"], ["South", "987,500"], ["East", "2,100,000"]],
}


def chart(chart_type: object, values: object, **extra: Any) -> dict[str, Any]:
    """A chart payload of ``values``."""
    return {
        "id": "cc00000000",
        "type": "chart",
        "chart_type": chart_type,
        "data": {"values": values},
    }


def only(items: list[Rendered]) -> Rendered:
    """The one thing a visualization became."""
    assert len(items) == 1, items
    return items[0]


def image(items: list[Rendered]) -> ChartImage:
    """The one chart image a visualization became."""
    item = only(items)
    assert isinstance(item, ChartImage), item
    return item


def table(items: list[Rendered]) -> TableMessage:
    """The one table message a visualization became."""
    item = only(items)
    assert isinstance(item, TableMessage), item
    return item


def note(items: list[Rendered]) -> VisualizationNote:
    """The one note a visualization became."""
    item = only(items)
    assert isinstance(item, VisualizationNote), item
    return item


def cells(message: TableMessage) -> list[list[str]]:
    """The texts of a table block's cells, row by row."""
    rows = message.blocks[0]["rows"]
    return [
        [
            c["text"] if c["type"] == "raw_text" else c["elements"][0]["elements"][0]["text"]
            for c in r
        ]
        for r in rows
    ]


def context(message: TableMessage) -> str:
    """The text of a table message's context lines."""
    return " ".join(b["elements"][0]["text"] for b in message.blocks if b["type"] == "context")
