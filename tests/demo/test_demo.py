"""`trellis-slack demo` without a browser: the sample analyst, the page's API and feed, the command."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import aiohttp
import pytest

from trellis_slack.cli import main
from trellis_slack.demo.answers import SUGGESTIONS, topic_of
from trellis_slack.demo.data import SAMPLE_FILE
from trellis_slack.demo.files import sample_csv
from trellis_slack.demo.runner import CHANNEL, DM, PEOPLE, YOU, Demo, display_available
from trellis_slack.demo.sample import SampleAnalyst
from trellis_slack.demo.workspace import Person, diff, editable_text, slack_text
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_script import Question
from trellis_slack.slack.blocks import RETRY_ACTION, SHOW_STEPS_ACTION, STOP_ACTION, working
from trellis_slack.viz.render import prepare
from trellis_slack.viz.rendered import ChartJob, NativeChart, TableMessage

T = TypeVar("T")
Items = dict[str, dict[str, Any]]

BOT = Person("U0BOT", "trellis", is_bot=True)
EVERYONE = (*PEOPLE, BOT)


def ask(text: str, *, again: bool = False, files: tuple[tuple[str, bytes], ...] = ()) -> Question:
    return Question(text, "chat-1", None, None, again, "demo", files=files)


# --------------------------------------------------------------------------- the sample analyst


def test_every_suggestion_is_answered_with_a_visualization_and_text() -> None:
    """Each suggested question has its own topic and gets statuses, a chart or table, and text."""
    analyst = SampleAnalyst(pace=0)
    topics = set()
    for suggestion in SUGGESTIONS:
        # The file question comes with the sample CSV, which is what it is about.
        files = ((SAMPLE_FILE, sample_csv()),) if suggestion.attach else ()
        topics.add("file" if files else topic_of(suggestion.question))
        # The flaky one is answered when asked again (Retry): see the next test.
        again = topic_of(suggestion.question) == "flaky"
        steps = analyst(ask(suggestion.question, again=again, files=files))
        events = [s.event for s in steps]
        assert events[0] == "processing"
        assert "visualization" in events
        assert "text_delta" in events
        assert events[-1] == "message"
        assert steps[-1].data["content"]
    assert "unknown" not in topics
    assert len(topics) == len(SUGGESTIONS)


def test_a_csv_file_is_answered_from_its_own_rows() -> None:
    """The file question reads the attached CSV: its rows, its columns, its totals."""
    steps = SampleAnalyst(pace=0)(ask("what is in it?", files=((SAMPLE_FILE, sample_csv()),)))
    text = steps[-1].data["content"]
    assert f"Your file **{SAMPLE_FILE}** has **12 rows**" in text
    assert "`month`, `region`, `orders`" in text
    [chart] = [s for s in steps if s.event == "visualization"]
    assert {v["label"] for v in chart.data["data"]["values"]} == {"North", "South", "East", "West"}
    other = SampleAnalyst(pace=0)(ask("and this?", files=(("notes.pdf", b"%PDF-1.4"),)))
    assert "reads only CSV files" in other[-1].data["content"]


def test_answers_carry_the_sql_behind_them_when_steps_are_asked_for() -> None:
    """With include_tool_events, an answer runs its query first: the SQL, tables and rows."""
    question = Question(
        "How many orders did each region have?",
        "c",
        None,
        None,
        False,
        "d",
        include_tool_events=True,
    )
    steps = SampleAnalyst(pace=0)(question)
    [call] = [s for s in steps if s.event == "tool_call"]
    [result] = [s for s in steps if s.event == "tool_result"]
    assert "GROUP BY region" in call.data["input"]["sql"]
    assert call.data["input"]["tables"] == ["orders"]
    assert result.data["row_count"] == 4
    assert not [
        s
        for s in SampleAnalyst(pace=0)(ask("How many orders by region?"))
        if s.event == "tool_call"
    ]


def test_charts_of_several_types_and_a_table() -> None:
    """The sample answers use bar, line, donut, stacked, area, horizontal and pie charts, and a table."""
    questions = [s.question for s in SUGGESTIONS]
    questions += ["and only the West?", "average order value", "online or in stores?"]
    kinds = set()
    for question in questions:
        for step in SampleAnalyst(pace=0)(ask(question)):
            if step.event == "visualization":
                kinds.add(step.data.get("chart_type") or step.data["type"])
    assert kinds >= {
        "bar",
        "line",
        "donut",
        "stacked_bar",
        "area",
        "bar_horizontal",
        "pie",
        "table",
    }


def shown_as(question: str, attach: str = "") -> str:
    """How the bot shows the answer's visualization in Slack by default (SLACK_CHARTS=auto)."""
    files = ((attach, sample_csv()),) if attach else ()
    steps = SampleAnalyst(pace=0)(ask(question, files=files))
    (step,) = [s for s in steps if s.event == "visualization"]
    kind = step.data.get("chart_type") or step.data["type"]
    prepared = prepare("v1", step.data["type"], step.data, "auto")
    if isinstance(prepared, ChartJob):
        return f"{kind} as a PNG"
    (first, *_) = prepared
    if isinstance(first, NativeChart):
        return f"{kind} as Slack's {first.block['chart']['type']} chart"
    assert isinstance(first, TableMessage)
    return f"{kind} as a data_table" if first.native_blocks else f"{kind} as a preview"


def test_the_bar_line_area_and_pie_examples_are_slacks_own_charts_the_others_pngs() -> None:
    """The suggestions show bar, line, area and pie natively; stacked bars, donuts, gaps as PNGs."""
    by_label = {
        s.label: shown_as(s.question, s.attach)
        for s in SUGGESTIONS
        if s.label != "An error: try Retry"
    }
    assert by_label == {
        "Orders by region": "bar as Slack's bar chart",
        "A file: ask about a CSV": "bar as Slack's bar chart",
        "Monthly trend": "line as Slack's line chart",
        "The West by month": "area as Slack's area chart",
        "Sales channels": "pie as Slack's pie chart",
        "Category mix": "donut as a PNG",
        "Top customers": "table as a data_table",
        "Revenue by quarter": "stacked_bar as a PNG",
        "Daily data as CSV": "table as a preview",
        "A slow one: try Stop": "line as a PNG",  # the forecast line starts in December
    }
    assert shown_as("average order value") == "bar_horizontal as a PNG"


def test_the_flaky_question_fails_once_with_a_retryable_error() -> None:
    """The question to try Retry on gets a retryable error first, and its answer when asked again."""
    question = next(s.question for s in SUGGESTIONS if topic_of(s.question) == "flaky")
    first = SampleAnalyst(pace=0)(ask(question))
    assert first[-1].event == "error"
    assert first[-1].data["retryable"] is True
    assert not [s for s in first if s.event == "visualization"]
    again = SampleAnalyst(pace=0)(ask(question, again=True))
    assert again[-1].event == "message"
    assert "second try" in again[-1].data["content"]


def test_unknown_questions_get_the_list_of_what_can_be_asked() -> None:
    """A question outside the sample data is answered in words, listing questions that work."""
    steps = SampleAnalyst(pace=0)(ask("what is the weather tomorrow?"))
    assert not [s for s in steps if s.event == "visualization"]
    text = steps[-1].data["content"]
    assert "what is the weather tomorrow?" in text
    assert SUGGESTIONS[0].question in text


def test_pace_scales_every_delay() -> None:
    """`pace` 0 answers at once; pace 1 takes a few seconds, and the forecast is the slow one."""

    def total(pace: float, question: str) -> float:
        return sum(s.delay for s in SampleAnalyst(pace=pace)(ask(question)))

    assert total(0, "orders by region") == 0
    assert 2 < total(1, "orders by region") < 8
    assert total(1, "forecast next quarter") > 10
    assert total(2, "orders by region") == pytest.approx(2 * total(1, "orders by region"))
    with pytest.raises(ValueError, match="pace"):
        SampleAnalyst(pace=-1)


def test_hold_keeps_only_the_slow_question_waiting() -> None:
    """With `hold`, the forecast pauses on it before answering; other questions never wait."""
    hold = asyncio.Event()
    analyst = SampleAnalyst(pace=0, hold=hold)
    assert any(s.gate is hold for s in analyst(ask("forecast next quarter")))
    assert not any(s.gate is not None for s in analyst(ask("orders by region")))


# --------------------------------------------------------------------------- pure page helpers


def test_typed_text_is_stored_as_slack_stores_it() -> None:
    """`&<>` are escaped and `@name` becomes a mention; e-mail addresses and longer words are left alone."""
    stored = slack_text("@Trellis is a < b & c? ask @maria, not bob@trellis.example", EVERYONE)
    assert stored == "<@U0BOT> is a &lt; b &amp; c? ask <@U0MARIA>, not bob@trellis.example"
    assert slack_text("@trellisbot <@U0BOT>", EVERYONE) == "@trellisbot &lt;@U0BOT&gt;"


def test_editable_text_gives_back_what_was_typed() -> None:
    """Editing starts from the text as typed: mentions as @name, entities decoded."""
    typed = "@trellis revenue < 5 & > 2 for @sam"
    assert editable_text(slack_text(typed, EVERYONE), EVERYONE) == typed


def test_diff_puts_new_and_changed_items_and_drops_gone_ones() -> None:
    """The feed sends only what changed."""
    old = {"a": {"v": 1}, "b": {"v": 2}, "c": {"v": 3}}
    new = {"a": {"v": 1}, "b": {"v": 20}, "d": {"v": 4}}
    assert diff(old, new) == [
        {"op": "drop", "key": "c"},
        {"op": "put", "key": "b", "item": {"v": 20}},
        {"op": "put", "key": "d", "item": {"v": 4}},
    ]
    assert diff(new, new) == []


def test_a_browser_is_opened_only_where_there_is_a_display() -> None:
    """Without a display (a server, CI) the demo only prints its address."""
    assert display_available({}, "darwin")
    assert display_available({}, "win32")
    assert display_available({"DISPLAY": ":0"}, "linux")
    assert display_available({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not display_available({}, "linux")


async def test_fake_slack_counts_changes_for_a_feed() -> None:
    """`FakeSlack.changed_since` returns once something changed after the revision read."""
    async with FakeSlack() as slack:
        slack.add_user("U0A", "a")
        slack.add_channel("C0A", "a", members=["U0A"])
        seen = slack.revision
        waiting = asyncio.create_task(slack.changed_since(seen))
        await slack.post("C0A", "U0A", "hello")
        async with asyncio.timeout(5):
            assert await waiting > seen
        assert await slack.changed_since(seen - 1) == slack.revision


# --------------------------------------------------------------------------- the page over HTTP


@pytest.fixture
async def http(demo: Demo) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=demo.url) as session:
        yield session


class PageFeed:
    """What the page sees: the snapshot and every change from ``/api/feed``, applied in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.items: Items = {}
        self.workspace: dict[str, Any] = {}

    async def until(self, predicate: Callable[[Items], T | None]) -> T:
        """Read the feed until ``predicate`` holds for what the page shows (at most 10 s)."""
        async with asyncio.timeout(10):
            while True:
                if self.workspace:
                    found = predicate(self.items)
                    if found:
                        return found
                frame = await self.ws.receive_json()
                if frame["type"] == "hello":
                    self.workspace, self.items = frame["workspace"], frame["items"]
                for op in frame.get("ops", []):
                    if op["op"] == "put":
                        self.items[op["key"]] = op["item"]
                    else:
                        del self.items[op["key"]]


@pytest.fixture
async def feed(http: aiohttp.ClientSession) -> AsyncIterator[PageFeed]:
    async with http.ws_connect("/api/feed") as ws:
        yield PageFeed(ws)


def messages(items: Items, channel: str) -> list[dict[str, Any]]:
    found = [i["message"] for i in items.values() if i["channel"] == channel and "message" in i]
    return sorted(found, key=lambda m: float(m["ts"]))


def text_of(message: dict[str, Any]) -> str:
    parts = [str(message.get("text", ""))]
    for block in message.get("blocks") or []:
        parts.append(str(block.get("text", "")))
        parts += [str(e.get("text", "")) for e in block.get("elements", []) if isinstance(e, dict)]
    return "\n".join(parts)


def in_thread(items: Items, channel: str, ts: str) -> list[dict[str, Any]]:
    return [m for m in messages(items, channel) if m.get("thread_ts") == ts and m["ts"] != ts]


def buttons(message: dict[str, Any]) -> list[str]:
    return [
        e.get("action_id", "")
        for b in message.get("blocks") or []
        if b.get("type") == "actions"
        for e in b.get("elements", [])
    ]


async def post(http: aiohttp.ClientSession, path: str, **body: Any) -> dict[str, Any]:
    async with http.post(path, json=body) as response:
        data: dict[str, Any] = await response.json()
        data["status"] = response.status
        return data


async def test_a_new_page_sees_the_workspace_and_the_welcome(feed: PageFeed) -> None:
    """On connect the page gets the workspace (channel, DM, people, suggestions) and the messages."""
    welcome = await feed.until(
        lambda items: [m for m in messages(items, CHANNEL) if m.get("user") == "U0MARIA"]
    )
    assert "Ask it anything" in welcome[0]["text"]
    assert feed.workspace["me"] == YOU
    assert [r["id"] for r in feed.workspace["rooms"]] == [CHANNEL, DM]
    assert len(feed.workspace["suggestions"]) == len(SUGGESTIONS)


async def test_a_question_from_the_page_gets_a_chart_and_an_answer(
    demo: Demo, http: aiohttp.ClientSession, feed: PageFeed
) -> None:
    """A mention typed on the page reaches the real bot; one answer, its chart inside, appears live."""
    sent = await post(http, "/api/post", channel=CHANNEL, text="@trellis orders by region?")
    assert sent["ok"]
    ts = sent["ts"]
    question = next(m for m in demo.slack.messages(CHANNEL) if m["ts"] == ts)
    assert question["text"] == "<@U0BOT> orders by region?"
    assert demo.slack.events("app_mention")

    def answered(items: Items) -> list[dict[str, Any]] | None:
        replies = in_thread(items, CHANNEL, ts)
        done = any("West** led with" in text_of(m) and feedback_of(m) for m in replies)
        return replies if done else None

    replies = await feed.until(answered)
    assert len(replies) == 1
    (answer,) = replies
    assert answer["stream"]["state"] == "stopped"
    # Four steps, and the query it ran ("Show steps") as a card of its own.
    tasks = answer["stream"]["tasks"]
    assert [t["status"] for t in tasks] == ["complete"] * 5
    assert any("orders by region" in str(t).lower() for t in tasks)
    # A PNG shown through an image block, or (SLACK_CHARTS) a chart Slack draws itself.
    (chart,) = [b for b in answer["blocks"] if b["type"] in ("image", "data_visualization")]
    if chart["type"] == "data_visualization":
        assert chart["chart"]["type"] == "bar"
        return
    file = demo.slack.files[chart["slack_file"]["id"]]
    assert file.channel is None  # uploaded, not shared: shown only through the answer
    assert chart["demo_url"] == f"/files/{file.id}/{file.name}"
    async with http.get(chart["demo_url"]) as response:
        assert response.status == 200
        assert response.content_type == "image/png"
        assert await response.read() == file.content


def feedback_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for b in message.get("blocks") or []
        if b.get("type") == "context_actions"
        for e in b.get("elements", [])
        if e.get("type") == "feedback_buttons"
    ]


async def test_a_streaming_answer_shows_its_task_cards_as_they_change(
    hold: asyncio.Event, http: aiohttp.ClientSession, feed: PageFeed
) -> None:
    """While the slow answer streams, the page has its task cards: done ones, and the current one."""
    ts = (await post(http, "/api/post", channel=DM, text="forecast next quarter"))["ts"]

    def streaming(items: Items) -> dict[str, Any] | None:
        replies = in_thread(items, DM, ts)
        tasks = replies[0].get("stream", {}).get("tasks", []) if replies else []
        held = any(t["status"] == "in_progress" and "checking" in t["title"].lower() for t in tasks)
        return replies[0] if held else None

    answer = await feed.until(streaming)
    assert answer["stream"]["state"] == "streaming"
    assert {t["status"] for t in answer["stream"]["tasks"][:-1]} == {"complete"}
    hold.set()
    done = await feed.until(
        lambda items: [
            m for m in in_thread(items, DM, ts) if m.get("stream", {}).get("state") == "stopped"
        ]
    )
    assert {t["status"] for t in done[0]["stream"]["tasks"]} == {"complete"}


async def set_status(demo: Demo, channel: str, thread_ts: str, status: str, **more: Any) -> None:
    """``assistant.threads.setStatus`` as the bot calls it (the fake's Web API, the bot's token)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            demo.slack.api_url + "assistant.threads.setStatus",
            json={"channel_id": channel, "thread_ts": thread_ts, "status": status, **more},
            headers={"Authorization": f"Bearer {demo.slack.bot_token}"},
        ) as response,
    ):
        assert (await response.json())["ok"]


async def test_slacks_status_line_shows_while_it_is_set(
    demo: Demo, http: aiohttp.ClientSession, feed: PageFeed
) -> None:
    """The status the bot sets under a thread is on the page, loading messages too, until cleared."""
    ts = (await post(http, "/api/post", channel=CHANNEL, text="no question here"))["ts"]
    await set_status(
        demo, CHANNEL, ts, "is looking into it…", loading_messages=["Reading…", "Asking…"]
    )
    status = await feed.until(lambda items: items.get(f"s {CHANNEL} {ts}"))
    assert (status["kind"], status["ts"]) == ("status", ts)
    assert (status["status"], status["loading_messages"]) == (
        "is looking into it…",
        ["Reading…", "Asking…"],
    )
    await set_status(demo, CHANNEL, ts, "")
    await feed.until(lambda items: f"s {CHANNEL} {ts}" not in items)


async def test_opening_the_apps_conversation_gets_its_suggested_prompts(
    demo: Demo, http: aiohttp.ClientSession, feed: PageFeed
) -> None:
    """Opening the DM tells the app (Messages tab); the prompts it sets are what the page offers."""
    assert (await post(http, "/api/open", channel=CHANNEL))["status"] == 400
    assert (await post(http, "/api/open", channel=DM))["ok"]
    prompts = await feed.until(lambda items: items.get(f"p {DM}"))
    assert prompts["prompts"] == demo.slack.suggested_prompts[-1]["prompts"]
    assert all(p["title"] and p["message"] for p in prompts["prompts"])
    assert demo.slack.events("app_home_opened")[-1]["tab"] == "messages"


async def test_slacks_own_stop_from_the_page_stops_the_stream(
    demo: Demo, http: aiohttp.ClientSession, feed: PageFeed
) -> None:
    """The agent view's Stop is Slack's: the live stream stops and the bot hears agent_session_stopped."""
    ts = (await post(http, "/api/post", channel=DM, text="forecast next quarter"))["ts"]
    await feed.until(
        lambda items: [m for m in in_thread(items, DM, ts) if m.get("stream", {}).get("tasks")]
    )
    assert (await post(http, "/api/stop_agent", channel=DM, thread_ts=ts))["ok"]
    (event,) = demo.slack.events("agent_session_stopped")
    assert event["thread_ts"] == ts
    assert event["streaming_message_ts"]
    stopped = await feed.until(
        lambda items: [m for m in in_thread(items, DM, ts) if "Stopped by" in text_of(m)]
    )
    assert stopped[0]["stream"]["state"] == "stopped"
    assert (await post(http, "/api/stop_agent", channel=DM, thread_ts="1.000001"))["status"] == 404


async def test_a_feedback_click_from_the_page_reaches_trellis(
    demo: Demo, http: aiohttp.ClientSession, feed: PageFeed
) -> None:
    """👍 on an answer is Slack's feedback click: the bot rates the answer in Trellis, thanks you."""
    ts = (await post(http, "/api/post", channel=DM, text="orders by region"))["ts"]
    answer = await feed.until(
        lambda items: next((m for m in in_thread(items, DM, ts) if feedback_of(m)), None)
    )
    wrong = await post(http, "/api/feedback", channel=DM, ts=answer["ts"], vote="maybe")
    assert wrong["status"] == 400
    voted = await post(http, "/api/feedback", channel=DM, ts=answer["ts"], vote="positive")
    assert voted["ok"]
    thanks = await feed.until(
        lambda items: [
            i
            for i in items.values()
            if i["kind"] == "ephemeral" and "Thanks" in text_of(i["message"])
        ]
    )
    assert thanks[0]["message"]["thread_ts"] == ts
    assert [body for _, _, body in demo.trellis.feedback_requests] == [{"feedback": "positive"}]


async def test_a_dm_is_answered_in_its_thread(http: aiohttp.ClientSession, feed: PageFeed) -> None:
    """A DM needs no mention; the answer is threaded under it."""
    ts = (await post(http, "/api/post", channel=DM, text="who are our top customers?"))["ts"]
    replies = await feed.until(
        lambda items: [m for m in in_thread(items, DM, ts) if "Northwind" in text_of(m)]
    )
    assert replies


async def test_a_large_table_comes_with_a_csv_to_download(
    http: aiohttp.ClientSession, feed: PageFeed
) -> None:
    """The daily data is previewed as a table block and offered whole as a CSV download."""
    ts = (await post(http, "/api/post", channel=DM, text="export the daily orders"))["ts"]

    def csv(items: Items) -> dict[str, Any] | None:
        files = [f for m in in_thread(items, DM, ts) for f in m.get("files", [])]
        return next((f for f in files if f.get("filetype") == "csv"), None)

    file = await feed.until(csv)
    tables = [
        b
        for m in in_thread(feed.items, DM, ts)
        for b in m.get("blocks") or []
        if b["type"] == "table"
    ]
    assert tables
    async with http.get(file["demo_url"]) as response:
        assert response.status == 200
        assert response.content_type == "text/csv"
        assert "attachment" in response.headers["Content-Disposition"]
        body = await response.text()
    assert body.startswith("Date,Region,Orders,Revenue (USD)")
    assert len(body.splitlines()) == 1 + 4 * 365


async def test_stop_from_the_page_stops_the_slow_question(
    http: aiohttp.ClientSession, feed: PageFeed
) -> None:
    """Clicking Stop on the working message becomes a real button click; the answer stops."""
    ts = (await post(http, "/api/post", channel=CHANNEL, text="@trellis forecast next quarter"))[
        "ts"
    ]
    working = await feed.until(
        lambda items: next(
            (m for m in in_thread(items, CHANNEL, ts) if STOP_ACTION in buttons(m)), None
        )
    )
    clicked = await post(
        http, "/api/click", channel=CHANNEL, ts=working["ts"], action_id=STOP_ACTION, value=ts
    )
    assert clicked["ok"]
    stopped = await feed.until(
        lambda items: [m for m in in_thread(items, CHANNEL, ts) if "Stopped by" in text_of(m)]
    )
    assert f"<@{YOU}>" in text_of(stopped[0])
    assert buttons(stopped[0]) == [RETRY_ACTION]  # Stop is gone; Retry asks again


async def test_a_question_with_the_sample_file_is_answered_from_the_file(
    http: aiohttp.ClientSession, feed: PageFeed
) -> None:
    """The page's file question attaches the sample CSV; the answer is about the file's rows."""
    [suggestion] = [s for s in SUGGESTIONS if s.attach]
    text = f"@trellis {suggestion.question}"
    ts = (await post(http, "/api/post", channel=CHANNEL, text=text, attach=SAMPLE_FILE))["ts"]
    answer = await feed.until(
        lambda items: next(
            (m for m in in_thread(items, CHANNEL, ts) if "12 rows" in text_of(m)), None
        )
    )
    assert SAMPLE_FILE in text_of(answer)


async def test_show_steps_from_the_page_shows_the_sql_to_you(
    http: aiohttp.ClientSession, feed: PageFeed
) -> None:
    """An answer carries Show steps; a click shows you the query that produced it."""
    ts = (await post(http, "/api/post", channel=DM, text="How many orders did each region have?"))[
        "ts"
    ]
    answer = await feed.until(
        lambda items: next(
            (m for m in in_thread(items, DM, ts) if SHOW_STEPS_ACTION in buttons(m)), None
        )
    )
    clicked = await post(
        http, "/api/click", channel=DM, ts=answer["ts"], action_id=SHOW_STEPS_ACTION, value=ts
    )
    assert clicked["ok"]
    shown = await feed.until(
        lambda items: [
            i
            for i in items.values()
            if i["kind"] == "ephemeral" and "GROUP BY region" in text_of(i["message"])
        ]
    )
    assert "`orders`" in text_of(shown[0]["message"])


async def test_retry_after_an_error_gets_the_answer(
    http: aiohttp.ClientSession, feed: PageFeed
) -> None:
    """The error comes with Retry; clicking it asks again and the answer takes the error's place."""
    text = "orders by region from the flaky replica"
    ts = (await post(http, "/api/post", channel=DM, text=text))["ts"]
    failed = await feed.until(
        lambda items: next(
            (m for m in in_thread(items, DM, ts) if RETRY_ACTION in buttons(m)), None
        )
    )
    assert "timed out" in text_of(failed)
    clicked = await post(
        http, "/api/click", channel=DM, ts=failed["ts"], action_id=RETRY_ACTION, value=ts
    )
    assert clicked["ok"]
    replies = await feed.until(
        lambda items: (
            [m for m in in_thread(items, DM, ts) if "second try" in text_of(m)]
            and in_thread(items, DM, ts)
        )
    )
    assert not any("timed out" in text_of(m) for m in replies)


async def test_a_click_on_a_button_that_just_went_still_reaches_the_bot(
    http: aiohttp.ClientSession, feed: PageFeed
) -> None:
    """Stop clicked on a page a moment behind (the answer just finished) gets the bot's note, to you."""
    ts = (await post(http, "/api/post", channel=DM, text="hello"))["ts"]
    answer = await feed.until(
        lambda items: next(
            (m for m in in_thread(items, DM, ts) if "sample dataset" in text_of(m)), None
        )
    )
    shown = list(working("Thinking…", question_ts=ts).blocks)
    clicked = await post(
        http,
        "/api/click",
        channel=DM,
        ts=answer["ts"],
        action_id=STOP_ACTION,
        value=ts,
        blocks=shown,
    )
    assert clicked["ok"]
    note = await feed.until(
        lambda items: [
            i
            for i in items.values()
            if i["kind"] == "ephemeral" and "already finished" in text_of(i["message"])
        ]
    )
    assert note[0]["channel"] == DM


async def test_only_your_own_messages_can_be_edited_or_deleted(
    demo: Demo, http: aiohttp.ClientSession
) -> None:
    """Someone else's message cannot be changed from the page, as in Slack."""
    welcome = demo.slack.messages(CHANNEL)[0]
    edited = await post(http, "/api/edit", channel=CHANNEL, ts=welcome["ts"], text="mine now")
    deleted = await post(http, "/api/delete", channel=CHANNEL, ts=welcome["ts"])
    assert (edited["status"], deleted["status"]) == (403, 403)
    assert demo.slack.messages(CHANNEL)[0]["text"] == welcome["text"]


async def test_edits_and_deletions_from_the_page_reach_the_bot_as_events(
    demo: Demo, http: aiohttp.ClientSession
) -> None:
    """Editing and deleting your message send Slack's message_changed and message_deleted."""
    ts = (await post(http, "/api/post", channel=CHANNEL, text="a note, no question"))["ts"]
    assert (await post(http, "/api/edit", channel=CHANNEL, ts=ts, text="a <b>note</b>"))["ok"]
    assert demo.slack.messages(CHANNEL)[-1]["text"] == "a &lt;b&gt;note&lt;/b&gt;"
    assert demo.slack.events("message", subtype="message_changed")
    assert (await post(http, "/api/delete", channel=CHANNEL, ts=ts))["ok"]
    assert demo.slack.events("message", subtype="message_deleted")
    gone = await post(http, "/api/delete", channel=CHANNEL, ts=ts)
    assert gone["status"] == 404


async def test_bad_requests_are_refused_plainly(http: aiohttp.ClientSession) -> None:
    """Unknown conversations, empty or huge messages and missing fields get a 4xx and a reason."""
    assert (await post(http, "/api/post", channel="C0NOPE", text="hi"))["status"] == 404
    assert (await post(http, "/api/post", channel=CHANNEL, text="   "))["status"] == 400
    assert (await post(http, "/api/post", channel=CHANNEL, text="x" * 40_001))["status"] == 400
    assert (await post(http, "/api/click", channel=CHANNEL))["status"] == 400
    missing = await post(http, "/api/click", channel=CHANNEL, ts="1.000001", action_id=STOP_ACTION)
    assert missing["status"] == 409
    async with http.post(
        "/api/post", data="not json", headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 400


async def test_unknown_slash_commands_are_refused_like_slack(
    http: aiohttp.ClientSession, feed: PageFeed
) -> None:
    """Only the app's `/trellis` command exists; another one gets Slack's note, to you only."""
    result = await post(http, "/api/slash", channel=CHANNEL, text="/frobnicate now")
    assert result["error"] == "unknown_command"
    note = await feed.until(
        lambda items: [
            i
            for i in items.values()
            if "is not a valid command" in i.get("message", {}).get("text", "")
        ]
    )
    assert note[0]["kind"] == "ephemeral"
    assert note[0]["channel"] == CHANNEL


async def test_trellis_commands_travel_to_the_bot_and_its_reply_is_shown_to_you(
    demo: Demo, http: aiohttp.ClientSession, feed: PageFeed
) -> None:
    """`/trellis help` is a real slash_commands envelope; what comes back is only visible to you."""
    await post(http, "/api/slash", channel=DM, text="/trellis help")
    sent = [e for e in demo.slack.envelopes if e.type == "slash_commands"]
    assert [(e.payload["command"], e.payload["text"]) for e in sent] == [("/trellis", "help")]
    assert sent[0].payload["user_id"] == YOU
    # The app answers in its ack, on the response_url, or not at all (Slack then reports a timeout).
    shown = await feed.until(
        lambda items: [i for i in items.values() if i["kind"] == "ephemeral" and i["channel"] == DM]
    )
    assert shown[0]["message"].get("text") or shown[0]["message"].get("blocks")


async def test_other_sites_cannot_use_the_page(demo: Demo, http: aiohttp.ClientSession) -> None:
    """A foreign Host (DNS rebinding), a foreign Origin or a form post is refused."""
    async with http.get("/api/state", headers={"Host": "evil.example"}) as response:
        assert response.status == 403
    async with http.post(
        "/api/post",
        json={"channel": CHANNEL, "text": "hi"},
        headers={"Origin": "http://evil.example"},
    ) as response:
        assert response.status == 403
    async with http.post("/api/post", data={"channel": CHANNEL, "text": "hi"}) as response:
        assert response.status == 415
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await http.ws_connect("/api/feed", headers={"Origin": "http://evil.example"})
    assert len(demo.slack.messages(CHANNEL)) == 1
    async with http.post(
        "/api/post", json={"channel": CHANNEL, "text": "hi"}, headers={"Origin": demo.url[:-1]}
    ) as response:
        assert response.status == 200


async def test_the_page_is_served_locally_under_a_strict_policy(
    http: aiohttp.ClientSession,
) -> None:
    """The page, its script and style come from the package; no inline script, nothing from elsewhere."""
    async with http.get("/") as response:
        page = await response.text()
        policy = response.headers["Content-Security-Policy"]
    assert response.content_type == "text/html"
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert not re.search(r"<script>|https?://", page)
    scripts = ("app.js", "data_blocks.js")
    assert all(f'<script src="/static/{name}" defer>' in page for name in scripts)
    for name, kind in (*((n, "text/javascript") for n in scripts), ("style.css", "text/css")):
        async with http.get(f"/static/{name}") as response:
            assert (response.status, response.content_type) == (200, kind)
    for path in ("/static/runner.py", "/static/..%2f__init__.py", "/files/F0NOPE/x.png"):
        async with http.get(path) as response:
            assert response.status == 404


# --------------------------------------------------------------------------- the command


@pytest.fixture
def root_logger() -> Iterator[None]:
    """Put back the root logger's handlers and level that `main` configures."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_logger")
def test_a_taken_port_is_reported_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    """`trellis-slack demo --port N` on a busy port says so and how to choose another, exit 1."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["demo", "--no-browser", "--port", str(port)], {}) == 1
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err
    assert "--port 0" in err
    assert "Traceback" not in err


def test_a_port_out_of_range_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--port` must be a TCP port number; anything else is a usage error (exit 2)."""
    for wrong in ("70000", "-1", "eighty"):
        with pytest.raises(SystemExit) as exited:
            main(["demo", "--no-browser", "--port", wrong], {})
        assert exited.value.code == 2
        assert "is not a port number" in capsys.readouterr().err


async def test_demo_command_serves_the_page_and_stops_cleanly_on_sigterm() -> None:
    """`trellis-slack demo` needs no configuration: it prints the address, answers, exits 0 on SIGTERM."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TRELLIS_"))}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "trellis_slack",
        "demo",
        "--no-browser",
        "--port",
        "0",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(30):
            url = ""
            while not url:
                line = (await process.stdout.readline()).decode()
                assert line, "the demo ended before printing its address"
                found = re.search(r"http://127\.0\.0\.1:\d+/", line)
                url = found.group(0) if found else ""
            async with aiohttp.ClientSession(base_url=url) as http:
                async with http.get("/") as response:
                    assert response.status == 200
                sent = await post(http, "/api/post", channel=DM, text="orders by region")
                assert sent["ok"]
                async with http.ws_connect("/api/feed") as ws:
                    feed = PageFeed(ws)
                    await feed.until(lambda items: in_thread(items, DM, sent["ts"]))
            process.send_signal(signal.SIGTERM)
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    assert "Traceback" not in err.decode()
    assert "Stopping" in out.decode()


async def test_trellis_status_describes_the_sample_database(
    demo: Demo, http: aiohttp.ClientSession, feed: PageFeed
) -> None:
    """`/trellis status` in the demo names its sample database and says Trellis is reachable."""
    await post(http, "/api/slash", channel=CHANNEL, text="/trellis status")
    shown = await feed.until(
        lambda items: [
            i for i in items.values() if i["kind"] == "ephemeral" and i["channel"] == CHANNEL
        ]
    )
    text = json.dumps(shown[0]["message"], ensure_ascii=False)
    assert "Sample orders 2025" in text
    assert "Database: none chosen" not in text
    assert "may fail" not in text
    assert "Trellis is reachable" in text
