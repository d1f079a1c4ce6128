"""Tests for the fake Slack's AI surface: streams, status, suggested prompts, Stop, as Slack rules them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from trellis_slack.fakes.slack_server import FakeSlack

ALICE = "U0ALICE"
CHANNEL, DM = "C0GENERAL", "D0ALICE"
TEAM = "T0TEAM"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        server.add_user(ALICE, "alice")
        server.add_channel(CHANNEL, "general", members=[ALICE])
        server.add_channel(DM, "alice-dm", kind="im", members=[ALICE])
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)


def error_of(info: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(info.value.response["error"])


def task(task_id: str, status: str, title: str = "Querying", **extra: Any) -> dict[str, Any]:
    return {"type": "task_update", "id": task_id, "title": title, "status": status, **extra}


async def start(client: AsyncWebClient, thread_ts: str, **args: Any) -> str:
    """Start a stream in the channel with the recipient fields; its ts."""
    answer = await client.chat_startStream(
        channel=CHANNEL,
        thread_ts=thread_ts,
        recipient_user_id=ALICE,
        recipient_team_id=TEAM,
        **args,
    )
    return str(answer["ts"])


async def refused(call: Any) -> str:
    with pytest.raises(SlackApiError) as info:
        await call
    return error_of(info)


# ---------------------------------------------------------------------------- starting


async def test_a_stream_needs_a_thread(fake: FakeSlack, client: AsyncWebClient) -> None:
    """startStream without thread_ts is refused: streamed messages are replies."""
    args = {"channel": DM, "markdown_text": "hi"}
    error = await refused(client.api_call("chat.startStream", json=args))
    assert error == "invalid_arguments"
    assert fake.bot_messages(DM) == []


async def test_a_stream_in_a_channel_names_its_recipient(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """Outside DMs startStream needs recipient_user_id and recipient_team_id; a DM does not."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    only_user = client.chat_startStream(
        channel=CHANNEL, thread_ts=parent, recipient_user_id=ALICE, markdown_text="x"
    )
    assert await refused(only_user) == "invalid_arguments"
    question = await fake.post(DM, ALICE, "q")
    answer = await client.chat_startStream(channel=DM, thread_ts=question, markdown_text="ok")
    assert fake.stream_of(answer["ts"]).markdown == "ok"


async def test_a_stream_is_a_reply_the_thread_shows(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """The streamed message is a bot reply in the thread whose text grows with each append."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    ts = await start(client, parent, markdown_text="Revenue ")
    await client.chat_appendStream(channel=CHANNEL, ts=ts, markdown_text="grew ")
    await client.chat_appendStream(
        channel=CHANNEL, ts=ts, chunks=[{"type": "markdown_text", "text": "12%"}]
    )
    (message,) = fake.bot_messages(CHANNEL, parent)
    assert (message["ts"], message["thread_ts"], message["text"]) == (
        ts,
        parent,
        "Revenue grew 12%",
    )
    assert fake.stream_of(ts).streaming
    assert message["streaming_state"] == "in_progress"


async def test_an_old_workspace_refuses_to_stream(fake: FakeSlack, client: AsyncWebClient) -> None:
    """refuse_streams makes startStream answer channel_type_not_supported (or a chosen error)."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    fake.refuse_streams(CHANNEL)
    assert await refused(start(client, parent)) == "channel_type_not_supported"
    fake.refuse_streams(CHANNEL, "feature_not_enabled")
    assert await refused(start(client, parent)) == "feature_not_enabled"
    assert fake.bot_messages(CHANNEL, parent) == []
    await client.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="fallback")


@pytest.mark.parametrize("mode", ["timeline", "plan"])
async def test_task_display_modes(fake: FakeSlack, client: AsyncWebClient, mode: str) -> None:
    """task_display_mode is timeline or plan, and nothing else."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    ts = await start(client, parent, task_display_mode=mode)
    assert fake.stream_of(ts).task_display_mode == mode
    assert await refused(start(client, parent, task_display_mode="list")) == "invalid_arguments"


# ---------------------------------------------------------------------------- limits and chunks


async def test_12000_characters_a_call(fake: FakeSlack, client: AsyncWebClient) -> None:
    """Each call carries at most 12,000 characters of Markdown, in markdown_text and chunks."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    ts = await start(client, parent, markdown_text="x" * 12_000)
    await client.chat_appendStream(channel=CHANNEL, ts=ts, markdown_text="y" * 12_000)
    two_chunks = [{"type": "markdown_text", "text": "z" * 6_001}] * 2
    assert await refused(client.chat_appendStream(channel=CHANNEL, ts=ts, chunks=two_chunks)) == (
        "msg_too_long"
    )
    assert await refused(start(client, parent, markdown_text="x" * 12_001)) == "msg_too_long"
    assert len(fake.stream_of(ts).markdown) == 24_000


async def test_task_cards_keep_their_latest_status(fake: FakeSlack, client: AsyncWebClient) -> None:
    """task_update chunks are cards by id: each keeps its latest status, details and output."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    ts = await start(client, parent, chunks=[task("t1", "in_progress")])
    source = {"type": "url", "text": "Docs", "url": "https://example.com/"}
    await client.chat_appendStream(
        channel=CHANNEL,
        ts=ts,
        chunks=[task("t1", "complete", output="3 rows"), task("t2", "pending", title="Charting")],
    )
    await client.chat_stopStream(
        channel=CHANNEL, ts=ts, chunks=[task("t2", "error", details="no data", sources=[source])]
    )
    stream = fake.stream_of(ts)
    assert stream.task_statuses() == {"t1": "complete", "t2": "error"}
    assert stream.tasks["t1"]["output"] == "3 rows"
    assert stream.tasks["t2"] | {} == {
        "id": "t2",
        "title": "Querying",
        "status": "error",
        "details": "no data",
        "sources": [source],
    }
    (message,) = fake.bot_messages(CHANNEL, parent)
    assert [c["type"] for c in message["chunks"]] == ["task_update"] * 4


@pytest.mark.parametrize(
    ("chunk", "why"),
    [
        (task("t1", "done"), "a status outside pending/in_progress/complete/error"),
        ({"type": "task_update", "title": "x", "status": "pending"}, "a task without id"),
        ({"type": "task_update", "id": "t", "status": "pending"}, "a task without title"),
        (task("t1", "pending", sources=[{"type": "url"}]), "a source without url"),
        ({"type": "plan_update"}, "a plan without title"),
        ({"type": "markdown_text"}, "markdown without text"),
        ({"type": "reasoning", "text": "hm"}, "an unknown chunk type"),
    ],
)
async def test_chunks_slack_refuses(
    fake: FakeSlack, client: AsyncWebClient, chunk: dict[str, Any], why: str
) -> None:
    """A malformed chunk is refused with invalid_arguments, and nothing is added."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    ts = await start(client, parent)
    assert await refused(client.chat_appendStream(channel=CHANNEL, ts=ts, chunks=[chunk])) == (
        "invalid_arguments"
    ), why
    assert fake.stream_of(ts).chunks == []


async def test_plan_title_and_blocks_chunks(fake: FakeSlack, client: AsyncWebClient) -> None:
    """plan_update sets the plan's title; blocks chunks are checked and shown in the message."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    ts = await start(client, parent, task_display_mode="plan")
    divider = {"type": "divider"}
    await client.chat_appendStream(
        channel=CHANNEL,
        ts=ts,
        chunks=[{"type": "plan_update", "title": "Plan"}, {"type": "blocks", "blocks": [divider]}],
    )
    bad = [{"type": "blocks", "blocks": [{"type": "section"}]}]
    assert await refused(client.chat_appendStream(channel=CHANNEL, ts=ts, chunks=bad)) == (
        "invalid_blocks"
    )
    many = [{"type": "blocks", "blocks": [divider] * 50}]
    assert await refused(client.chat_appendStream(channel=CHANNEL, ts=ts, chunks=many)) == (
        "invalid_arguments"
    )
    stream = fake.stream_of(ts)
    assert stream.plan_title == "Plan"
    assert [b["type"] for b in fake.bot_messages(CHANNEL, parent)[0]["blocks"]] == ["divider"]


# ---------------------------------------------------------------------------- stopping and expiry


async def test_stop_takes_50_checked_blocks_and_final_text(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """stopStream checks its blocks like chat.postMessage (at most 50) and adds final Markdown."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    ts = await start(client, parent, markdown_text="Revenue")
    divider = {"type": "divider"}
    too_many = client.chat_stopStream(channel=CHANNEL, ts=ts, blocks=[divider] * 51)
    assert await refused(too_many) == "invalid_blocks"
    invalid = client.chat_stopStream(channel=CHANNEL, ts=ts, blocks=[{"type": "carousel"}])
    assert await refused(invalid) == "invalid_blocks"
    assert fake.stream_of(ts).streaming
    await client.chat_stopStream(channel=CHANNEL, ts=ts, markdown_text=" grew", blocks=[divider])
    stream = fake.stream_of(ts)
    assert (stream.state, stream.markdown, len(stream.final_blocks)) == (
        "stopped",
        "Revenue grew",
        1,
    )
    (message,) = fake.bot_messages(CHANNEL, parent)
    assert (message["text"], message["streaming_state"]) == ("Revenue grew", "completed")
    assert fake.events("message", subtype="message_changed")[-1]["message"]["ts"] == ts


async def test_a_stopped_stream_takes_no_more(fake: FakeSlack, client: AsyncWebClient) -> None:
    """After stopStream, appending and stopping again answer message_not_in_streaming_state."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    ts = await start(client, parent, markdown_text="done")
    await client.chat_stopStream(channel=CHANNEL, ts=ts)
    late = client.chat_appendStream(channel=CHANNEL, ts=ts, markdown_text="late")
    assert await refused(late) == "message_not_in_streaming_state"
    assert await refused(client.chat_stopStream(channel=CHANNEL, ts=ts)) == (
        "message_not_in_streaming_state"
    )
    posted = await client.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="plain")
    not_a_stream = client.chat_appendStream(channel=CHANNEL, ts=posted["ts"], markdown_text="x")
    assert await refused(not_a_stream) == "message_not_in_streaming_state"


async def test_a_stream_expires_after_its_lifetime(fake: FakeSlack, client: AsyncWebClient) -> None:
    """Once stream_lifetime has passed, append and stop fail; chat.update still edits the message."""
    now = [1_000.0]
    fake.clock = lambda: now[0]
    assert fake.stream_lifetime == 300.0
    parent = await fake.post(CHANNEL, ALICE, "q")
    ts = await start(client, parent, markdown_text="Reve")
    now[0] += 299.0
    await client.chat_appendStream(channel=CHANNEL, ts=ts, markdown_text="nue")
    now[0] += 1.0
    late = client.chat_appendStream(channel=CHANNEL, ts=ts, markdown_text=" grew")
    assert await refused(late) == "message_not_in_streaming_state"
    assert await refused(client.chat_stopStream(channel=CHANNEL, ts=ts)) == (
        "message_not_in_streaming_state"
    )
    assert fake.stream_of(ts).state == "expired"
    await client.chat_update(channel=CHANNEL, ts=ts, text="Revenue grew 12%")
    (message,) = fake.bot_messages(CHANNEL, parent)
    assert message["text"] == "Revenue grew 12%"


async def test_expire_stream_by_hand(fake: FakeSlack, client: AsyncWebClient) -> None:
    """expire_stream ends a stream at once; a small stream_lifetime ends new ones at once."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    ts = await start(client, parent)
    fake.expire_stream(CHANNEL, ts)
    late = client.chat_appendStream(channel=CHANNEL, ts=ts, markdown_text="x")
    assert await refused(late) == "message_not_in_streaming_state"
    fake.stream_lifetime = 0.0
    other = await start(client, parent)
    assert await refused(client.chat_stopStream(channel=CHANNEL, ts=other)) == (
        "message_not_in_streaming_state"
    )
    await client.chat_delete(channel=CHANNEL, ts=other)
    assert [m["ts"] for m in fake.bot_messages(CHANNEL, parent)] == [ts]


async def test_rate_limits_and_failures_reach_the_stream_methods(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """rate_limit and fail work for chat.startStream, appendStream and stopStream like any method."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    fake.rate_limit("chat.startStream")
    with pytest.raises(SlackApiError) as info:
        await start(client, parent)
    assert info.value.response.status_code == 429
    ts = await start(client, parent)
    fake.rate_limit("chat.appendStream", retry_after=2)
    with pytest.raises(SlackApiError) as info:
        await client.chat_appendStream(channel=CHANNEL, ts=ts, markdown_text="x")
    assert info.value.response.headers["Retry-After"] == "2"
    fake.fail("chat.stopStream", "internal_error")
    assert await refused(client.chat_stopStream(channel=CHANNEL, ts=ts)) == "internal_error"
    assert fake.stream_of(ts).streaming


async def test_the_sdks_chat_stream_helper_works(fake: FakeSlack, client: AsyncWebClient) -> None:
    """slack-sdk's chat_stream (buffered appends, stop with task chunks) builds one message."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    stream = await client.chat_stream(
        channel=CHANNEL,
        thread_ts=parent,
        recipient_user_id=ALICE,
        recipient_team_id=TEAM,
        buffer_size=4,
    )
    await stream.append(markdown_text="ab")
    await stream.append(markdown_text="cd", chunks=[task("t1", "in_progress")])
    await stream.stop(markdown_text="ef", chunks=[task("t1", "complete")])
    assert stream.ts is not None
    view = fake.stream_of(stream.ts)
    assert (view.markdown, view.task_statuses(), view.state) == (
        "abcdef",
        {"t1": "complete"},
        "stopped",
    )


# ---------------------------------------------------------------------------- status and prompts


async def test_status_shows_its_loading_messages_until_the_bot_posts(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """setStatus records up to 10 loading_messages; a reply (or a stream) in the thread clears it."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    too_many = client.assistant_threads_setStatus(
        channel_id=CHANNEL, thread_ts=parent, status="…", loading_messages=["m"] * 11
    )
    assert await refused(too_many) == "invalid_arguments"
    await client.assistant_threads_setStatus(
        channel_id=CHANNEL, thread_ts=parent, status="is thinking…", loading_messages=["m"] * 10
    )
    assert fake.status(CHANNEL, parent) == "is thinking…"
    assert fake.loading_messages(CHANNEL, parent) == ["m"] * 10
    await start(client, parent)
    assert (fake.status(CHANNEL, parent), fake.loading_messages(CHANNEL, parent)) == ("", [])


async def test_status_expires_clears_and_needs_a_thread(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """A status lasts two minutes without a message; "" clears it; an unknown thread is refused."""
    now = [0.0]
    fake.clock = lambda: now[0]
    parent = await fake.post(CHANNEL, ALICE, "q")
    await client.assistant_threads_setStatus(channel_id=CHANNEL, thread_ts=parent, status="a")
    now[0] = 119.0
    assert fake.status(CHANNEL, parent) == "a"
    now[0] = 120.0
    assert fake.status(CHANNEL, parent) == ""
    await client.assistant_threads_setStatus(channel_id=CHANNEL, thread_ts=parent, status="b")
    await client.assistant_threads_setStatus(channel_id=CHANNEL, thread_ts=parent, status="")
    assert fake.status(CHANNEL, parent) == ""
    unknown = client.assistant_threads_setStatus(
        channel_id=CHANNEL, thread_ts="1.000001", status="a"
    )
    assert await refused(unknown) == "invalid_thread_ts"


async def test_suggested_prompts_are_recorded(fake: FakeSlack, client: AsyncWebClient) -> None:
    """setSuggestedPrompts takes one to four {title, message} prompts, thread_ts optional, and records them."""
    prompts = [{"title": f"T{i}", "message": f"M{i}"} for i in range(4)]
    await client.assistant_threads_setSuggestedPrompts(channel_id=DM, prompts=prompts, title="Try")
    assert fake.suggested_prompts == [{"channel_id": DM, "prompts": prompts, "title": "Try"}]
    five = client.assistant_threads_setSuggestedPrompts(
        channel_id=DM, prompts=[*prompts, prompts[0]]
    )
    assert await refused(five) == "invalid_arguments"
    untitled = client.assistant_threads_setSuggestedPrompts(
        channel_id=DM, prompts=[{"message": "M"}]
    )
    assert await refused(untitled) == "invalid_arguments"
    unknown = client.assistant_threads_setSuggestedPrompts(channel_id="D0NOBODY", prompts=prompts)
    assert await refused(unknown) == "channel_not_found"


async def test_an_agent_apps_prompts_with_a_thread_silently_do_nothing(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """For an agent app a thread_ts makes the call succeed without effect, as Slack's docs warn."""
    question = await fake.post(DM, ALICE, "q")
    prompts = [{"title": "T", "message": "M"}]
    answer = await client.assistant_threads_setSuggestedPrompts(
        channel_id=DM, thread_ts=question, prompts=prompts
    )
    assert answer["ok"] is True
    assert fake.suggested_prompts == []
    fake.agent_app = False
    await client.assistant_threads_setSuggestedPrompts(
        channel_id=DM, thread_ts=question, prompts=prompts
    )
    assert fake.suggested_prompts[0]["thread_ts"] == question
