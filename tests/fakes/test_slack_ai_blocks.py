"""Tests for the fake Slack's feedback buttons, images from Slack files, and Slack's own Stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from trellis_slack.fakes.slack_content import block_problems
from trellis_slack.fakes.slack_server import FakeSlack

ALICE = "U0ALICE"
CHANNEL = "C0GENERAL"


def feedback_block(**extra: Any) -> dict[str, Any]:
    """Slack's documented context_actions example with feedback buttons."""
    return {
        "type": "context_actions",
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": "feedback",
                "positive_button": {
                    "text": {"type": "plain_text", "text": "👍"},
                    "value": "positive_feedback",
                    "accessibility_label": "Good answer",
                },
                "negative_button": {
                    "text": {"type": "plain_text", "text": "👎"},
                    "value": "negative_feedback",
                },
                **extra,
            }
        ],
    }


def image(slack_file: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "image", "slack_file": slack_file, "alt_text": "Revenue", **extra}


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        server.add_user(ALICE, "alice")
        server.add_channel(CHANNEL, "general", members=[ALICE])
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)


@pytest.fixture
async def seen(fake: FakeSlack) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """A bolt app on the fake that puts each feedback click's body and each Stop event here."""
    app = AsyncApp(client=AsyncWebClient(token=fake.bot_token, base_url=fake.api_url))
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def on_feedback(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await queue.put(body)

    async def on_stop(event: dict[str, Any]) -> None:
        await queue.put(event)

    app.action("feedback")(on_feedback)
    app.event("agent_session_stopped")(on_stop)
    handler = AsyncSocketModeHandler(app, fake.app_token)
    await handler.connect_async()
    await fake.wait_for(lambda: fake.socket_connections == 1)
    yield queue
    await handler.close_async()
    await fake.wait_for(lambda: fake.socket_connections == 0)


async def upload(client: AsyncWebClient, name: str = "chart.png") -> dict[str, Any]:
    """Upload a file without sharing it; Slack's file object."""
    answer = await client.files_upload_v2(content=b"\x89PNG fake", filename=name)
    info = await client.files_info(file=answer["file"]["id"])
    file: dict[str, Any] = info["file"]
    return file


# ---------------------------------------------------------------------------- feedback buttons


def test_feedback_buttons_in_context_actions_are_valid() -> None:
    """Slack's documented feedback_buttons example passes."""
    assert block_problems([feedback_block()]) == []


@pytest.mark.parametrize(
    ("blocks", "why"),
    [
        ([{"type": "context_actions", "elements": []}], "no elements"),
        (
            [{"type": "context_actions", "elements": feedback_block()["elements"] * 6}],
            "six elements",
        ),
        (
            [{"type": "actions", "elements": feedback_block()["elements"]}],
            "outside context_actions",
        ),
        (
            [{"type": "context_actions", "elements": [{"type": "button", "text": "x"}]}],
            "a plain button",
        ),
        ([feedback_block(negative_button=None)], "no negative button"),
        (
            [
                feedback_block(
                    positive_button={"text": {"type": "mrkdwn", "text": "y"}, "value": "p"}
                )
            ],
            "mrkdwn text",
        ),
        (
            [feedback_block(positive_button={"text": {"type": "plain_text", "text": "y"}})],
            "no value",
        ),
        (
            [
                feedback_block(
                    positive_button={
                        "text": {"type": "plain_text", "text": "y" * 76},
                        "value": "p",
                    }
                )
            ],
            "text over 75 characters",
        ),
        (
            [
                feedback_block(
                    positive_button={
                        "text": {"type": "plain_text", "text": "y"},
                        "value": "p",
                        "accessibility_label": "z" * 76,
                    }
                )
            ],
            "label over 75 characters",
        ),
    ],
)
def test_feedback_blocks_slack_refuses(blocks: list[dict[str, Any]], why: str) -> None:
    """Each way Slack refuses a context_actions / feedback_buttons block is reported."""
    assert block_problems(blocks) != [], why


async def test_a_feedback_click_sends_slacks_envelope(
    fake: FakeSlack, client: AsyncWebClient, seen: asyncio.Queue[dict[str, Any]]
) -> None:
    """A vote is a block_actions with type feedback_buttons, the action_id and the button's value."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    posted = await client.chat_postMessage(
        channel=CHANNEL, thread_ts=parent, text="answer", blocks=[feedback_block()]
    )
    await fake.feedback(CHANNEL, posted["ts"], "negative", user=ALICE)
    async with asyncio.timeout(5):
        body = await seen.get()
    (action,) = body["actions"]
    assert action | {"block_id": "", "action_ts": ""} == {
        "type": "feedback_buttons",
        "action_id": "feedback",
        "block_id": "",
        "value": "negative_feedback",
        "text": {"type": "plain_text", "text": "👎"},
        "action_ts": "",
    }
    assert action["block_id"] == fake.bot_messages(CHANNEL, parent)[0]["blocks"][0]["block_id"]
    assert body["container"]["message_ts"] == posted["ts"]
    assert body["container"]["thread_ts"] == parent
    assert body["user"]["id"] == ALICE
    await fake.feedback(CHANNEL, posted["ts"], "positive", user=ALICE, action_id="feedback")
    async with asyncio.timeout(5):
        assert (await seen.get())["actions"][0]["value"] == "positive_feedback"


async def test_feedback_needs_feedback_buttons(fake: FakeSlack, client: AsyncWebClient) -> None:
    """Voting on a message without feedback buttons is a test mistake, reported at once."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    posted = await client.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="answer")
    with pytest.raises(KeyError, match="0 feedback elements"):
        await fake.feedback(CHANNEL, posted["ts"], "positive", user=ALICE)


# ---------------------------------------------------------------------------- images from files


async def test_an_image_shows_an_unshared_upload(fake: FakeSlack, client: AsyncWebClient) -> None:
    """An image block may show an uploaded PNG by slack_file id or by its url_private."""
    file = await upload(client)
    blocks = [image({"id": file["id"]}), image({"url": file["url_private"]})]
    posted = await client.chat_postMessage(channel=CHANNEL, text="chart", blocks=blocks)
    assert posted["message"]["blocks"][0]["slack_file"] == {"id": file["id"]}


@pytest.mark.parametrize(
    "case", ["unknown", "deleted", "csv", "both", "neither", "bad id", "no alt", "url and file"]
)
async def test_images_slack_refuses(fake: FakeSlack, client: AsyncWebClient, case: str) -> None:
    """An image of a missing, deleted or non-image file, or a malformed slack_file, is refused."""
    png, csv = await upload(client), await upload(client, "table.csv")
    if case == "deleted":
        await client.files_delete(file=png["id"])
    block = {
        "unknown": image({"id": "F0NOSUCHFILE"}),
        "deleted": image({"id": png["id"]}),
        "csv": image({"id": csv["id"]}),
        "both": image({"id": png["id"], "url": png["url_private"]}),
        "neither": image({}),
        "bad id": image({"id": "chart.png"}),
        "no alt": {"type": "image", "slack_file": {"id": png["id"]}},
        "url and file": image({"id": png["id"]}, image_url="https://example.com/x.png"),
    }[case]
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel=CHANNEL, text="chart", blocks=[block])
    assert info.value.response["error"] == "invalid_blocks"
    parent = await fake.post(CHANNEL, ALICE, "q")
    stream = await client.chat_startStream(
        channel=CHANNEL, thread_ts=parent, recipient_user_id=ALICE, recipient_team_id="T0TEAM"
    )
    with pytest.raises(SlackApiError) as info:
        await client.chat_stopStream(channel=CHANNEL, ts=stream["ts"], blocks=[block])
    assert info.value.response["error"] == "invalid_blocks"


# ---------------------------------------------------------------------------- Slack's own Stop


async def test_slacks_stop_ends_the_threads_streams_and_tells_the_app(
    fake: FakeSlack, client: AsyncWebClient, seen: asyncio.Queue[dict[str, Any]]
) -> None:
    """stop_agent stops the thread's live streams and sends agent_session_stopped listing them."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    done = await client.chat_startStream(
        channel=CHANNEL, thread_ts=parent, recipient_user_id=ALICE, recipient_team_id="T0TEAM"
    )
    await client.chat_stopStream(channel=CHANNEL, ts=done["ts"])
    live = await client.chat_startStream(
        channel=CHANNEL, thread_ts=parent, recipient_user_id=ALICE, recipient_team_id="T0TEAM"
    )
    await fake.stop_agent(CHANNEL, parent, user=ALICE)
    async with asyncio.timeout(5):
        event = await seen.get()
    assert event | {"event_ts": ""} == {
        "type": "agent_session_stopped",
        "channel": CHANNEL,
        "thread_ts": parent,
        "streaming_message_ts": [live["ts"]],
        "user": ALICE,
        "event_ts": "",
    }
    assert fake.stream_of(live["ts"]).state == "stopped"
    with pytest.raises(SlackApiError) as info:
        await client.chat_appendStream(channel=CHANNEL, ts=live["ts"], markdown_text="x")
    assert info.value.response["error"] == "message_not_in_streaming_state"
    await fake.stop_agent(CHANNEL, parent, user=ALICE)
    async with asyncio.timeout(5):
        assert (await seen.get())["streaming_message_ts"] == []


async def test_opening_the_messages_tab_is_app_home_opened(fake: FakeSlack) -> None:
    """Opening the agent's conversation sends app_home_opened with tab messages."""
    fake.add_channel("D0ALICE", "alice-dm", kind="im", members=[ALICE])
    app = AsyncApp(client=AsyncWebClient(token=fake.bot_token, base_url=fake.api_url))
    opened: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def on_open(event: dict[str, Any]) -> None:
        await opened.put(event)

    app.event("app_home_opened")(on_open)
    handler = AsyncSocketModeHandler(app, fake.app_token)
    await handler.connect_async()
    try:
        await fake.open_home(ALICE, "messages")
        async with asyncio.timeout(5):
            event = await opened.get()
        assert (event["tab"], event["channel"], event["user"]) == ("messages", "D0ALICE", ALICE)
    finally:
        await handler.close_async()
