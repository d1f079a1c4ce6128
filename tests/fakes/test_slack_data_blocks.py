"""Tests for the fake Slack's native charts and tables: data_visualization and data_table limits."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from trellis_slack.fakes.slack_content import block_problems
from trellis_slack.fakes.slack_server import FakeSlack

ALICE = "U0ALICE"
CHANNEL = "C0GENERAL"
TEAM = "T0TEAM"
Block = dict[str, Any]


def pie(segments: int = 4, **block: Any) -> Block:
    """A pie chart of ``segments`` slices."""
    parts = [{"label": f"Slice {i}", "value": 10 + i} for i in range(segments)]
    return {
        "type": "data_visualization",
        "title": "Share",
        "chart": {"type": "pie", "segments": parts},
        **block,
    }


def chart(kind: str = "bar", series: int = 1, points: int = 5, **axis: Any) -> Block:
    """A ``kind`` chart of ``series`` series, each one point per category, ``points`` categories."""
    categories = [f"Day {i}" for i in range(points)]
    data = [
        {
            "name": f"Series {s}",
            "data": [{"label": c, "value": s * 10 + i} for i, c in enumerate(categories)],
        }
        for s in range(series)
    ]
    return {
        "type": "data_visualization",
        "title": "Sales",
        "chart": {
            "type": kind,
            "series": data,
            "axis_config": {"categories": categories, "x_label": "Day", "y_label": "USD", **axis},
        },
    }


def text(value: str) -> Block:
    return {"type": "raw_text", "text": value}


def number(value: Any, shown: str | None = "1") -> Block:
    cell: Block = {"type": "raw_number", "value": value}
    if shown is not None:
        cell["text"] = shown
    return cell


def table(rows: int = 3, columns: int = 2, **block: Any) -> Block:
    """A data_table of a header and ``rows`` data rows, the last column numeric."""
    header = [text(f"Col {j}") for j in range(columns)]
    body = [
        [text(f"r{i}c{j}") for j in range(columns - 1)] + [number(i, str(i))] for i in range(rows)
    ]
    return {"type": "data_table", "caption": "Sales by region", "rows": [header, *body], **block}


def pointers(blocks: list[Block]) -> list[str]:
    """The JSON pointers of the problems Slack would report for ``blocks``."""
    return [p.rsplit("json-pointer:", 1)[1].rstrip("]") for p in block_problems(blocks)]


def points(block: Block) -> list[Any]:
    return list(block["chart"]["series"][0]["data"])


# ---------------------------------------------------------------------------- Slack's examples


def test_slacks_documented_shapes_are_accepted() -> None:
    """Slack's pie, bar, area and line examples and a data_table of every cell type pass."""
    candy = {
        "type": "data_visualization",
        "title": "My Favorite Candy Bars",
        "chart": {
            "type": "pie",
            "segments": [
                {"label": "Kit Kat", "value": 45},
                {"label": "Twix", "value": 28},
                {"label": "Crunch", "value": 18},
                {"label": "Milky Way", "value": 9.5},
            ],
        },
    }
    rich = {
        "type": "rich_text",
        "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": "Blue"}]}],
    }
    mixed = {
        "type": "data_table",
        "caption": "A Fabulous Table",
        "page_size": 10,
        "row_header_column_index": 0,
        "rows": [
            [text("Name"), text("Badge"), text("Count")],
            [text("Refinement"), rich, number(-3.25, "-3.25")],
        ],
    }
    assert block_problems([candy, chart("bar", series=2), mixed]) == []
    assert block_problems([chart("area"), chart("line")]) == []


@pytest.mark.parametrize("kind", ["pie", "bar", "area", "line"])
def test_each_chart_type_is_accepted(kind: str) -> None:
    """The four chart types Slack draws are accepted."""
    block = pie() if kind == "pie" else chart(kind)
    assert block_problems([block]) == []


@pytest.mark.parametrize("kind", ["donut", "scatter", "horizontal_bar", None])
def test_an_unknown_chart_type_is_refused(kind: str | None) -> None:
    """Any other chart type (or none) is refused at the chart's type."""
    block = chart()
    block["chart"]["type"] = kind
    assert pointers([block]) == ["/blocks/0/chart/type"]


def test_a_chart_needs_a_title_and_a_chart() -> None:
    """A chart without title, with an empty title, or without chart is refused."""
    untitled = chart()
    del untitled["title"]
    assert pointers([untitled]) == ["/blocks/0"]
    assert pointers([chart() | {"title": ""}]) == ["/blocks/0/title"]
    assert pointers([{"type": "data_visualization", "title": "x"}]) == ["/blocks/0"]
    assert pointers([{"type": "data_visualization", "title": "x", "chart": []}]) == [
        "/blocks/0/chart"
    ]


# ---------------------------------------------------------------------------- chart limits


@pytest.mark.parametrize(("length", "ok"), [(50, True), (51, False)])
def test_title_is_at_most_50_characters(length: int, ok: bool) -> None:
    """A title of 50 characters passes; 51 is refused at /title."""
    assert pointers([chart() | {"title": "t" * length}]) == ([] if ok else ["/blocks/0/title"])


@pytest.mark.parametrize("kind", ["bar", "area", "line"])
@pytest.mark.parametrize(("count", "ok"), [(6, True), (7, False)])
def test_at_most_6_series(kind: str, count: int, ok: bool) -> None:
    """Six series pass; a seventh is refused at /chart/series."""
    expected = [] if ok else ["/blocks/0/chart/series"]
    assert pointers([chart(kind, series=count)]) == expected


@pytest.mark.parametrize(("count", "ok"), [(6, True), (7, False)])
def test_at_most_6_pie_segments(count: int, ok: bool) -> None:
    """Six slices pass; a seventh is refused at /chart/segments."""
    assert pointers([pie(count)]) == ([] if ok else ["/blocks/0/chart/segments"])


def test_no_empty_series_or_pie() -> None:
    """A chart with no series, a series with no points, or a pie with no slices is refused."""
    empty = chart()
    empty["chart"]["series"] = []
    assert pointers([empty]) == ["/blocks/0/chart/series"]
    pointless = chart()
    pointless["chart"]["series"][0]["data"] = []
    assert pointers([pointless]) == ["/blocks/0/chart/series/0/data"]
    assert pointers([pie(0)]) == ["/blocks/0/chart/segments"]


def test_at_most_20_points_a_series() -> None:
    """Twenty points (and categories) pass; a 21st is refused for the series and the axis."""
    assert block_problems([chart(points=20)]) == []
    assert pointers([chart(points=21)]) == [
        "/blocks/0/chart/axis_config/categories",
        "/blocks/0/chart/series/0/data",
    ]


@pytest.mark.parametrize(("length", "ok"), [(20, True), (21, False)])
def test_labels_names_and_categories_are_at_most_20_characters(length: int, ok: bool) -> None:
    """A point label, category, series name or slice label of 20 characters passes; 21 does not."""
    long = "x" * length
    labelled = chart(points=1)
    labelled["chart"]["axis_config"]["categories"] = [long]
    points(labelled)[0]["label"] = long
    named = chart()
    named["chart"]["series"][0]["name"] = long
    slice_ = pie(1)
    slice_["chart"]["segments"][0]["label"] = long
    if ok:
        assert block_problems([labelled, named]) == []
        assert block_problems([slice_]) == []
        return
    assert pointers([labelled, named]) == [
        "/blocks/0/chart/axis_config/categories/0",
        "/blocks/0/chart/series/0/data/0/label",
        "/blocks/1/chart/series/0/name",
    ]
    assert pointers([slice_]) == ["/blocks/0/chart/segments/0/label"]


@pytest.mark.parametrize(("length", "ok"), [(50, True), (51, False)])
def test_axis_titles_are_at_most_50_characters(length: int, ok: bool) -> None:
    """x_label and y_label of 50 characters pass; 51 are refused where they are."""
    block = chart(x_label="x" * length, y_label="y" * length)
    where = "/blocks/0/chart/axis_config"
    assert pointers([block]) == ([] if ok else [f"{where}/x_label", f"{where}/y_label"])
    bare = chart()
    del bare["chart"]["axis_config"]["x_label"], bare["chart"]["axis_config"]["y_label"]
    assert block_problems([bare]) == []


@pytest.mark.parametrize("value", ["12", None, True, [], math.nan, math.inf])
def test_a_point_value_is_a_number(value: Any) -> None:
    """A point whose value is a string, null, a bool, an array or not finite is refused."""
    block = chart()
    points(block)[0]["value"] = value
    assert pointers([block]) == ["/blocks/0/chart/series/0/data/0/value"]


def test_points_may_be_negative_or_fractional_but_slices_must_be_positive() -> None:
    """Bar values may be negative or fractional; a pie slice of 0, -1 or "5" is refused."""
    block = chart()
    points(block)[0]["value"] = -2.5
    assert block_problems([block]) == []
    for value in (0, -1, "5"):
        slice_ = pie(1)
        slice_["chart"]["segments"][0]["value"] = value
        assert pointers([slice_]) == ["/blocks/0/chart/segments/0/value"], value
    missing = pie(1)
    del missing["chart"]["segments"][0]["value"]
    assert pointers([missing]) == ["/blocks/0/chart/segments/0"]


def test_each_series_has_one_point_per_category() -> None:
    """A label outside the categories, a repeated label or a missing category is refused."""
    stranger = chart(points=3)
    points(stranger)[0]["label"] = "Someday"
    assert pointers([stranger]) == ["/blocks/0/chart/series/0/data/0/label"]
    twice = chart(points=3)
    points(twice)[1]["label"] = "Day 0"
    assert pointers([twice]) == ["/blocks/0/chart/series/0/data/1/label"]
    short = chart(points=3)
    short["chart"]["series"][0]["data"].pop()
    assert pointers([short]) == ["/blocks/0/chart/series/0/data"]


def test_axis_config_and_unique_names_are_required() -> None:
    """A series chart needs axis_config with categories, unique categories and series names."""
    bare = chart()
    del bare["chart"]["axis_config"]
    assert pointers([bare]) == ["/blocks/0/chart"]
    same = chart(series=2)
    same["chart"]["series"][1]["name"] = "Series 0"
    assert pointers([same]) == ["/blocks/0/chart/series/1/name"]
    repeated = chart(points=2)
    repeated["chart"]["axis_config"]["categories"] = ["Day 0", "Day 0"]
    assert "/blocks/0/chart/axis_config/categories" in pointers([repeated])


@pytest.mark.parametrize(("count", "ok"), [(2, True), (3, False)])
def test_at_most_two_charts_a_message(count: int, ok: bool) -> None:
    """Two data_visualization blocks pass in one message; a third is refused for the message."""
    blocks = [pie(), chart(), chart("line")][:count]
    assert pointers(blocks) == ([] if ok else ["/blocks"])


# ---------------------------------------------------------------------------- data_table


def test_a_table_needs_a_caption() -> None:
    """A data_table without caption, or with an empty one, is refused."""
    untitled = table()
    del untitled["caption"]
    assert pointers([untitled]) == ["/blocks/0"]
    assert pointers([table(caption="")]) == ["/blocks/0"]


@pytest.mark.parametrize(("rows", "ok"), [(1, True), (100, True), (0, False), (101, False)])
def test_a_header_and_1_to_100_data_rows(rows: int, ok: bool) -> None:
    """2 to 101 rows (header included) pass; a header alone or 102 rows are refused."""
    assert pointers([table(rows)]) == ([] if ok else ["/blocks/0/rows"])


@pytest.mark.parametrize(("columns", "ok"), [(1, True), (20, True), (21, False)])
def test_1_to_20_columns(columns: int, ok: bool) -> None:
    """Rows of 1 to 20 cells pass; 21 cells are refused at each row."""
    expected = [] if ok else [f"/blocks/0/rows/{i}" for i in range(3)]
    assert pointers([table(2, columns)]) == expected


def test_rows_have_the_headers_length() -> None:
    """A row longer or shorter than the header, or an empty row, is refused at that row."""
    block = table(3, 3)
    block["rows"][1].pop()
    block["rows"][2].append(text("extra"))
    block["rows"][3] = []
    assert pointers([block]) == ["/blocks/0/rows/1", "/blocks/0/rows/2", "/blocks/0/rows/3"]


@pytest.mark.parametrize(
    ("size", "ok"),
    [(1, True), (100, True), (0, False), (101, False), ("5", False), (True, False), (2.5, False)],
)
def test_page_size_is_1_to_100(size: Any, ok: bool) -> None:
    """page_size is an integer from 1 to 100 (5 when omitted)."""
    assert pointers([table(page_size=size)]) == ([] if ok else ["/blocks/0/page_size"])


@pytest.mark.parametrize(("index", "ok"), [(0, True), (1, True), (2, False), (-1, False)])
def test_the_row_header_column_is_one_of_the_columns(index: int, ok: bool) -> None:
    """row_header_column_index names one of the table's columns."""
    block = table(2, 2, row_header_column_index=index)
    assert pointers([block]) == ([] if ok else ["/blocks/0/row_header_column_index"])


@pytest.mark.parametrize("value", ["12", None, True, math.nan])
def test_a_number_cell_holds_a_number(value: Any) -> None:
    """A raw_number cell whose value is a string, null, a bool or NaN is refused."""
    block = table(1, 2)
    block["rows"][1][1] = number(value)
    assert pointers([block]) == ["/blocks/0/rows/1/1/value"]


def test_cells_are_typed_and_shown() -> None:
    """A number needs its value and text, text needs text; rich_text is no header; others fail."""
    block = table(1, 2)
    block["rows"][1] = [text(""), number(3, shown=None)]
    assert pointers([block]) == ["/blocks/0/rows/1/0/text", "/blocks/0/rows/1/1"]
    rich = {"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": []}]}
    header = table(1, 2)
    header["rows"][0][0] = rich
    assert pointers([header]) == ["/blocks/0/rows/0/0/type"]
    odd = table(1, 2)
    odd["rows"][1][0] = {"type": "mrkdwn", "text": "*x*"}
    valueless = table(1, 2)
    valueless["rows"][1][1] = {"type": "raw_number", "text": "1"}
    assert pointers([odd, valueless]) == ["/blocks/0/rows/1/0/type", "/blocks/1/rows/1/1"]


@pytest.mark.parametrize(("chars", "ok"), [(10_000, True), (10_001, False)])
def test_at_most_10000_characters_of_cells(chars: int, ok: bool) -> None:
    """A table's cells hold at most 10,000 characters; one more is refused at its rows."""
    block = table(1, 2)
    used = sum(len(c["text"]) for row in block["rows"] for c in row) - len("r0c0")
    block["rows"][1][0] = text("x" * (chars - used))
    assert pointers([block]) == ([] if ok else ["/blocks/0/rows"])


def test_10000_characters_across_a_messages_tables() -> None:
    """Two tables within the limit each but over it together are refused for the message."""
    halves = []
    for _ in range(2):
        block = table(1, 1)
        block["rows"][1][0] = number(1, "9" * 4_996)
        halves.append(block)
    assert pointers(halves) == ["/blocks"]
    halves[1]["rows"][1][0] = number(1, "9")
    assert block_problems(halves) == []


# ---------------------------------------------------------------------------- through the Web API


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        server.add_user(ALICE, "alice")
        server.add_channel(CHANNEL, "general", members=[ALICE])
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)


async def refusal(call: Any) -> tuple[str, list[str]]:
    """Slack's error and the messages naming each problem."""
    with pytest.raises(SlackApiError) as info:
        await call
    response = info.value.response
    return str(response["error"]), list(response.get("response_metadata", {}).get("messages", []))


async def start(client: AsyncWebClient, thread_ts: str, **args: Any) -> str:
    answer = await client.chat_startStream(
        channel=CHANNEL,
        thread_ts=thread_ts,
        recipient_user_id=ALICE,
        recipient_team_id=TEAM,
        **args,
    )
    return str(answer["ts"])


async def test_post_message_and_update_refuse_what_slack_refuses(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """chat.postMessage and chat.update answer invalid_blocks with a pointer; valid ones store."""
    error, messages = await refusal(
        client.chat_postMessage(channel=CHANNEL, text="x", blocks=[chart(series=7)])
    )
    assert error == "invalid_blocks"
    assert any("json-pointer:/blocks/0/chart/series" in m for m in messages)
    posted = await client.chat_postMessage(
        channel=CHANNEL, text="Sales", blocks=[chart(), pie(), table()]
    )
    error, messages = await refusal(
        client.chat_update(
            channel=CHANNEL, ts=posted["ts"], text="Sales", blocks=[chart(), pie(), chart("area")]
        )
    )
    assert (error, messages) == (
        "invalid_blocks",
        ["[ERROR] no more than 2 data_visualization blocks [json-pointer:/blocks]"],
    )
    (message,) = fake.bot_messages(CHANNEL)
    assert [b["type"] for b in message["blocks"]] == [
        "data_visualization",
        "data_visualization",
        "data_table",
    ]


async def test_stop_stream_blocks_are_checked(fake: FakeSlack, client: AsyncWebClient) -> None:
    """chat.stopStream refuses a bad data_table and accepts a good one."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    ts = await start(client, parent, markdown_text="Sales")
    error, messages = await refusal(
        client.chat_stopStream(channel=CHANNEL, ts=ts, blocks=[table(page_size=0)])
    )
    assert error == "invalid_blocks"
    assert messages == ["[ERROR] must be between 1 and 100 [json-pointer:/blocks/0/page_size]"]
    await client.chat_stopStream(channel=CHANNEL, ts=ts, blocks=[table()])
    assert fake.stream_of(ts).final_blocks[0]["type"] == "data_table"


async def test_a_streamed_message_holds_two_charts_in_all(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """Charts in blocks chunks and stopStream's blocks count together: a third one is refused."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    ts = await start(client, parent, chunks=[{"type": "blocks", "blocks": [pie()]}])
    bad_chunk = [{"type": "blocks", "blocks": [chart() | {"title": "t" * 51}]}]
    error, _ = await refusal(client.chat_appendStream(channel=CHANNEL, ts=ts, chunks=bad_chunk))
    assert error == "invalid_blocks"
    await client.chat_appendStream(
        channel=CHANNEL, ts=ts, chunks=[{"type": "blocks", "blocks": [chart()]}]
    )
    third = [{"type": "blocks", "blocks": [chart("line")]}]
    error, messages = await refusal(client.chat_appendStream(channel=CHANNEL, ts=ts, chunks=third))
    assert (error, messages) == (
        "invalid_blocks",
        ["[ERROR] no more than 2 data_visualization blocks [json-pointer:/blocks]"],
    )
    error, _ = await refusal(client.chat_stopStream(channel=CHANNEL, ts=ts, blocks=[chart("area")]))
    assert error == "invalid_blocks"
    assert fake.stream_of(ts).streaming
    await client.chat_stopStream(channel=CHANNEL, ts=ts, blocks=[table()])
    (message,) = fake.bot_messages(CHANNEL, parent)
    assert [b["type"] for b in message["blocks"]] == [
        "data_visualization",
        "data_visualization",
        "data_table",
    ]


async def test_two_charts_in_one_start_stream_call_are_counted_together(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """Three charts split over chunks of one chat.startStream call are refused."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    chunks = [{"type": "blocks", "blocks": [pie(), chart()]}, {"type": "blocks", "blocks": [pie()]}]
    start_call = client.chat_startStream(
        channel=CHANNEL,
        thread_ts=parent,
        recipient_user_id=ALICE,
        recipient_team_id=TEAM,
        chunks=chunks,
    )
    error, _ = await refusal(start_call)
    assert error == "invalid_blocks"
    assert fake.bot_messages(CHANNEL, parent) == []
