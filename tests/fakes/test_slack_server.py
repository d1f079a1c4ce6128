"""Tests for the fake Slack, driven by the real bolt AsyncApp, Socket Mode handler and web client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.context.say.async_say import AsyncSay
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from trellis_slack.fakes.slack_server import FakeSlack

ALICE, BOB, OUTSIDER = "U0ALICE", "U0BOB", "U0EXT"
CHANNEL, DM, ELSEWHERE = "C0GENERAL", "D0ALICE", "C0NOBOT"
MENTION = "<@U0BOT>"
Seen = tuple[str, dict[str, Any], dict[str, Any]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        server.add_user(ALICE, "alice", email="alice@example.com", is_admin=True)
        server.add_user(BOB, "bob")
        server.add_user(OUTSIDER, "mallory", team_id="T0OTHER")
        server.add_channel(CHANNEL, "general", members=[ALICE, BOB])
        server.add_channel(DM, "alice-dm", kind="im", members=[ALICE])
        server.add_channel(ELSEWHERE, "random", members=[ALICE], bot_is_member=False)
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)


@dataclass
class RunningApp:
    """A tiny bolt app connected to the fake; listeners report what they saw on ``seen``."""

    app: AsyncApp
    seen: asyncio.Queue[Seen]

    async def next(self, kind: str) -> Seen:
        async with asyncio.timeout(5):
            while True:
                item = await self.seen.get()
                if item[0] == kind:
                    return item


@pytest.fixture
async def bolt(fake: FakeSlack) -> AsyncIterator[RunningApp]:
    app = AsyncApp(client=AsyncWebClient(token=fake.bot_token, base_url=fake.api_url))
    seen: asyncio.Queue[Seen] = asyncio.Queue()

    async def on_mention(event: dict[str, Any], say: AsyncSay, request: AsyncBoltRequest) -> None:
        await seen.put(("app_mention", event, dict(request.headers)))
        await say(text=f"you said: {event['text']}", thread_ts=event.get("thread_ts", event["ts"]))

    async def on_message(event: dict[str, Any]) -> None:
        await seen.put(("message", event, {}))

    async def on_approve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await seen.put(("approve", body, {}))
        await respond(replace_original=True, text="approved")

    async def on_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack(text=f"working on {command['text']}")

    async def on_home(event: dict[str, Any], client: AsyncWebClient) -> None:
        view = {
            "type": "home",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
        }
        await client.views_publish(user_id=event["user"], view=view)

    app.event("app_mention")(on_mention)
    app.event("message")(on_message)
    app.action("approve")(on_approve)
    app.command("/trellis")(on_command)
    app.event("app_home_opened")(on_home)
    handler = AsyncSocketModeHandler(app, fake.app_token)
    await handler.connect_async()
    await fake.wait_for(lambda: fake.socket_connections == 1)
    yield RunningApp(app, seen)
    await handler.close_async()
    await fake.wait_for(lambda: fake.socket_connections == 0)


def api_error(info: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(info.value.response["error"])


# ---------------------------------------------------------------------------- Web API basics


async def test_auth_test_answers_the_bot_identity(fake: FakeSlack, client: AsyncWebClient) -> None:
    """auth.test tells the app its bot user, bot id and team, as bolt needs at start-up."""
    answer = await client.auth_test()
    assert (answer["user_id"], answer["bot_id"], answer["team_id"]) == ("U0BOT", "B0BOT", "T0TEAM")
    assert fake.calls_to("auth.test")[0].ok


async def test_tokens_are_checked_and_unknown_methods_refused(fake: FakeSlack) -> None:
    """A wrong token is invalid_auth, the app token only opens sockets, unknown methods fail."""
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=fake.api_url)
    with pytest.raises(SlackApiError) as info:
        await wrong.auth_test()
    assert api_error(info) == "invalid_auth"
    with pytest.raises(SlackApiError) as info:
        await AsyncWebClient(token=fake.app_token, base_url=fake.api_url).auth_test()
    assert api_error(info) == "invalid_auth"
    with pytest.raises(SlackApiError) as info:
        await AsyncWebClient(base_url=fake.api_url).apps_connections_open(app_token=fake.bot_token)
    assert api_error(info) == "invalid_auth"
    with pytest.raises(SlackApiError) as info:
        await AsyncWebClient(token=fake.bot_token, base_url=fake.api_url).api_call("no.such")
    assert api_error(info) == "unknown_method"
    assert "xoxb-wrong" not in repr(fake.calls)


async def test_users_and_conversations_look_like_slack(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """users.info and conversations.info carry email, team, admin flag, channel kind, IM user."""
    alice = (await client.users_info(user=ALICE))["user"]
    assert alice["profile"]["email"] == "alice@example.com"
    assert (alice["team_id"], alice["is_admin"], alice["is_bot"]) == ("T0TEAM", True, False)
    assert (await client.users_info(user=OUTSIDER))["user"]["team_id"] == "T0OTHER"
    general = (await client.conversations_info(channel=CHANNEL))["channel"]
    assert (general["is_channel"], general["is_private"], general["is_member"]) == (
        True,
        False,
        True,
    )
    dm = (await client.conversations_info(channel=DM))["channel"]
    assert (dm["is_im"], dm["user"]) == (True, ALICE)
    assert (await client.bots_info(bot="B0BOT"))["bot"]["user_id"] == "U0BOT"
    with pytest.raises(SlackApiError) as info:
        await client.users_info(user="U0NOBODY")
    assert api_error(info) == "user_not_found"


async def test_history_and_replies_paginate(fake: FakeSlack, client: AsyncWebClient) -> None:
    """conversations.history is newest first without replies, and both pages with cursors."""
    first = await fake.post(CHANNEL, ALICE, "one")
    await fake.post(CHANNEL, BOB, "reply", thread_ts=first)
    second = await fake.post(CHANNEL, ALICE, "two")
    third = await fake.post(CHANNEL, ALICE, "three")
    page = await client.conversations_history(channel=CHANNEL, limit=2)
    assert [m["ts"] for m in page["messages"]] == [third, second]
    assert page["has_more"] is True
    cursor = page["response_metadata"]["next_cursor"]
    rest = await client.conversations_history(channel=CHANNEL, limit=2, cursor=cursor)
    assert [m["ts"] for m in rest["messages"]] == [first]
    assert (rest["has_more"], rest["messages"][0]["reply_count"]) == (False, 1)
    replies = await client.conversations_replies(channel=CHANNEL, ts=first, limit=1)
    assert [m["text"] for m in replies["messages"]] == ["one"]
    assert replies["has_more"] is True


async def test_channel_and_message_errors_match_slack(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """Posting where the bot is not, to nowhere, or into a missing thread fails as in Slack."""
    cases: list[tuple[dict[str, Any], str]] = [
        ({"channel": ELSEWHERE, "text": "hi"}, "not_in_channel"),
        ({"channel": "C0MISSING", "text": "hi"}, "channel_not_found"),
        ({"channel": CHANNEL, "text": "hi", "thread_ts": "1600000000.000100"}, "thread_not_found"),
        ({"channel": CHANNEL, "text": "x" * 40_001}, "msg_too_long"),
    ]
    for kwargs, error in cases:
        with pytest.raises(SlackApiError) as info:
            await client.chat_postMessage(**kwargs)
        assert api_error(info) == error
    with pytest.raises(SlackApiError) as info:
        await client.api_call("chat.postMessage", json={"channel": CHANNEL})
    assert api_error(info) == "no_text"
    ts = await fake.post(CHANNEL, ALICE, "mine")
    with pytest.raises(SlackApiError) as info:
        await client.chat_update(channel=CHANNEL, ts=ts, text="hijacked")
    assert api_error(info) == "cant_update_message"
    with pytest.raises(SlackApiError) as info:
        await client.chat_delete(channel=CHANNEL, ts=ts)
    assert api_error(info) == "cant_delete_message"
    assert fake.messages(CHANNEL)[0]["text"] == "mine"


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(text: str = "Go", value: str = "v", action_id: str = "go") -> dict[str, Any]:
    kind = {"type": "plain_text", "text": text}
    return {"type": "button", "text": kind, "value": value, "action_id": action_id}


TABLE = {"type": "table", "rows": [[{"type": "raw_text", "text": "a"}]]}
OVER_LIMIT: dict[str, tuple[list[dict[str, Any]], str]] = {
    "51 blocks": ([{"type": "divider"}] * 51, "/blocks]"),
    "long section": ([section("x" * 3001)], "/blocks/0/text/text"),
    "long header": ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/0/"),
    "markdown total": ([{"type": "markdown", "text": "m" * 6001}] * 2, "markdown"),
    "two tables": ([TABLE, TABLE], "one table"),
    "101 rows": ([{"type": "table", "rows": [[]] * 101}], "/blocks/0/rows"),
    "21 cells": (
        [{"type": "table", "rows": [[{"type": "raw_text", "text": "c"}] * 21]}],
        "/rows/0",
    ),
    "11 context": (
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
        "/0/el",
    ),
    "26 actions": ([{"type": "actions", "elements": [button()] * 26}], "/blocks/0/elements"),
    "block_id twice": ([section("a", block_id="b"), section("b", block_id="b")], "duplicate"),
    "button text": ([{"type": "actions", "elements": [button(text="t" * 76)]}], "/text/text"),
    "button value": ([{"type": "actions", "elements": [button(value="v" * 2001)]}], "/value"),
    "no alt_text": ([{"type": "image", "image_url": "https://example.com/a.png"}], "alt_text"),
    "unknown type": ([{"type": "carousel"}], "/blocks/0/type"),
}


@pytest.mark.parametrize("case", sorted(OVER_LIMIT))
async def test_block_limits_are_enforced(case: str, client: AsyncWebClient) -> None:
    """Blocks over Slack's limits are invalid_blocks, with the reason in response_metadata."""
    blocks, where = OVER_LIMIT[case]
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel=CHANNEL, text="t", blocks=blocks)
    assert api_error(info) == "invalid_blocks"
    reasons = info.value.response["response_metadata"]["messages"]
    assert any(where in reason for reason in reasons), reasons


async def test_blocks_at_the_limits_are_accepted(fake: FakeSlack, client: AsyncWebClient) -> None:
    """Exactly 50 blocks, 3,000-character sections and 12,000 characters of markdown pass."""
    blocks = [section("x" * 3000), {"type": "markdown", "text": "m" * 12_000}, TABLE]
    blocks += [{"type": "divider"}] * 47
    answer = await client.chat_postMessage(channel=CHANNEL, text="t", blocks=blocks)
    stored = fake.messages(CHANNEL)[-1]
    assert stored["ts"] == answer["ts"]
    assert len(stored["blocks"]) == 50
    assert all(b["block_id"] for b in stored["blocks"])


async def test_rate_limit_answers_429_with_retry_after(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """A rate-limited call gets HTTP 429 and Retry-After; the next call goes through."""
    fake.rate_limit("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as info:
        await client.chat_postMessage(channel=CHANNEL, text="too fast")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "7"
    await client.chat_postMessage(channel=CHANNEL, text="later")
    assert [c.error for c in fake.calls_to("chat.postMessage")] == ["ratelimited", None]


async def test_rate_limit_retry_handler_retries_after_the_429(fake: FakeSlack) -> None:
    """slack_sdk's AsyncRateLimitErrorRetryHandler waits and retries a 429 to success."""
    retrying = AsyncWebClient(
        token=fake.bot_token,
        base_url=fake.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    fake.rate_limit("reactions.add", retry_after=0)
    ts = await fake.post(CHANNEL, ALICE, "react to me")
    await retrying.reactions_add(channel=CHANNEL, timestamp=ts, name="eyes")
    assert [c.ok for c in fake.calls_to("reactions.add")] == [False, True]
    assert fake.messages(CHANNEL)[0]["reactions"] == [
        {"name": "eyes", "users": ["U0BOT"], "count": 1}
    ]


async def test_fail_injects_an_error_answer(fake: FakeSlack, client: AsyncWebClient) -> None:
    """fail() makes the next calls of a method answer ok=false with the given error."""
    fake.fail("chat.update", "ratelimited", times=2)
    posted = await client.chat_postMessage(channel=CHANNEL, text="v1")
    for _ in range(2):
        with pytest.raises(SlackApiError) as info:
            await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="v2")
        assert api_error(info) == "ratelimited"
    await client.chat_update(channel=CHANNEL, ts=posted["ts"], text="v3")
    assert fake.messages(CHANNEL)[0]["text"] == "v3"


# ---------------------------------------------------------------------------- Socket Mode


async def test_mention_sends_app_mention_and_message_and_both_are_acked(
    fake: FakeSlack, bolt: RunningApp
) -> None:
    """One channel mention arrives twice (app_mention, then message, same ts); both get acked."""
    ts = await fake.post(CHANNEL, ALICE, f"{MENTION} how many users?")
    first, second = fake.envelopes_for(ts)[:2]
    assert (first.event["type"], second.event["type"]) == ("app_mention", "message")
    assert first.event["ts"] == second.event["ts"] == ts
    assert second.event["channel_type"] == "channel"
    assert first.payload["type"] == "event_callback"
    assert first.payload["authorizations"][0]["user_id"] == "U0BOT"
    assert first.frame()["retry_attempt"] == 0
    for envelope in (first, second):
        ack = await fake.wait_for_ack(envelope.envelope_id)
        assert ack.type == "events_api"
        assert ack.latency >= 0
    _, event, headers = await bolt.next("app_mention")
    assert event["blocks"][0]["elements"][0]["elements"][0] == {"type": "user", "user_id": "U0BOT"}
    assert headers["x-slack-retry-num"] == ["0"]


async def test_message_first_order_and_no_app_mention_in_dms(fake: FakeSlack) -> None:
    """mention_order flips the two envelopes; a mention in a DM is only a message event."""
    ts = await fake.post(CHANNEL, ALICE, f"{MENTION} hi", mention_order="message_first")
    assert [e.event["type"] for e in fake.envelopes_for(ts)] == ["message", "app_mention"]
    dm_ts = await fake.post(DM, ALICE, f"{MENTION} hi")
    (only,) = fake.envelopes_for(dm_ts)
    assert (only.event["type"], only.event["channel_type"]) == ("message", "im")


async def test_bot_reply_lands_in_the_thread_with_its_echoes(
    fake: FakeSlack, bolt: RunningApp, client: AsyncWebClient
) -> None:
    """The app's say() reply is threaded; Slack echoes it and updates the parent's reply count."""
    ts = await fake.post(CHANNEL, ALICE, f"{MENTION} hello")
    (reply,) = await fake.wait_for(lambda: fake.bot_messages(CHANNEL, ts))
    assert (reply["thread_ts"], reply["user"], reply["bot_id"]) == (ts, "U0BOT", "B0BOT")
    assert reply["text"] == f"you said: {MENTION} hello"
    echo = next(e for e in fake.events("message") if e["ts"] == reply["ts"])
    assert (echo["bot_id"], echo["thread_ts"], echo["parent_user_id"]) == ("B0BOT", ts, ALICE)
    parent_change = fake.events("message", subtype="message_changed")[-1]
    assert parent_change["message"]["ts"] == ts
    assert parent_change["message"]["reply_count"] == 1
    assert parent_change["message"]["latest_reply"] == reply["ts"]
    assert "reply_count" not in parent_change["previous_message"]
    thread = (await client.conversations_replies(channel=CHANNEL, ts=ts))["messages"]
    assert [m["ts"] for m in thread] == [ts, reply["ts"]]
    assert [m["ts"] for m in (await client.conversations_history(channel=CHANNEL))["messages"]] == [
        ts
    ]
    _, changed, _ = await bolt.next("message")  # the app hears about the parent's change
    assert changed.get("subtype") in (None, "message_changed")


async def test_edit_sends_message_changed_and_a_new_app_mention(fake: FakeSlack) -> None:
    """An edit is message_changed with edited and previous_message, plus app_mention again."""
    ts = await fake.post(CHANNEL, ALICE, f"{MENTION} typo")
    await fake.edit(CHANNEL, ts, f"{MENTION} fixed")
    changed = fake.events("message", subtype="message_changed")[-1]
    assert changed["hidden"] is True
    assert changed["ts"] != ts
    assert changed["message"]["ts"] == ts
    assert changed["message"]["text"] == f"{MENTION} fixed"
    assert changed["message"]["edited"]["user"] == ALICE
    assert changed["previous_message"]["text"] == f"{MENTION} typo"
    mention = fake.events("app_mention")[-1]
    assert (mention["ts"], mention["text"]) == (ts, f"{MENTION} fixed")
    assert mention["edited"] == changed["message"]["edited"]


async def test_unfurl_is_a_change_without_an_edit(fake: FakeSlack) -> None:
    """An unfurl is message_changed with the same text, attachments added and no edited."""
    ts = await fake.post(CHANNEL, ALICE, "see <https://example.com/report>")
    await fake.unfurl(CHANNEL, ts)
    changed = fake.events("message", subtype="message_changed")[-1]
    assert changed["message"]["text"] == changed["previous_message"]["text"]
    assert changed["message"]["attachments"][0]["from_url"] == "https://example.com/report"
    assert "edited" not in changed["message"]
    assert "attachments" not in changed["previous_message"]


async def test_delete_and_tombstone(fake: FakeSlack) -> None:
    """A reply's deletion is message_deleted; a parent with replies becomes a tombstone."""
    parent = await fake.post(CHANNEL, ALICE, "parent")
    first = await fake.post(CHANNEL, BOB, "first reply", thread_ts=parent)
    second = await fake.post(CHANNEL, BOB, "second reply", thread_ts=parent)
    await fake.delete(CHANNEL, second)
    deleted = fake.events("message", subtype="message_deleted")[-1]
    assert (deleted["deleted_ts"], deleted["hidden"]) == (second, True)
    assert deleted["previous_message"]["thread_ts"] == parent
    assert fake.events("message", subtype="message_changed")[-1]["message"]["reply_count"] == 1
    await fake.delete(CHANNEL, parent)
    tomb = fake.events("message", subtype="message_changed")[-1]
    assert (tomb["message"]["subtype"], tomb["message"]["ts"]) == ("tombstone", parent)
    assert tomb["message"]["reply_count"] == 1
    assert tomb["previous_message"]["text"] == "parent"
    assert [m["ts"] for m in fake.thread(CHANNEL, parent)] == [parent, first]
    await fake.delete(CHANNEL, first)
    assert [e["deleted_ts"] for e in fake.events("message", subtype="message_deleted")][-2:] == [
        first,
        parent,
    ]
    assert fake.messages(CHANNEL) == []


async def test_unacked_events_are_redelivered_with_retry_attempt() -> None:
    """An event nobody handles is never acked and comes back with retry_attempt 1, 2, 3."""
    async with FakeSlack(redeliver_after=0.05) as fake:
        app = AsyncApp(client=AsyncWebClient(token=fake.bot_token, base_url=fake.api_url))

        async def on_mention(event: dict[str, Any]) -> None:
            """Handles mentions only: reaction_added matches no listener."""

        app.event("app_mention")(on_mention)
        handler = AsyncSocketModeHandler(app, fake.app_token)
        await handler.connect_async()
        try:
            first = await fake.send_event(
                {"type": "reaction_added", "user": ALICE, "reaction": "x"}
            )

            def retries() -> list[tuple[int, str | None]]:
                sent = [e for e in fake.envelopes_sent if e.type == "events_api"]
                return [(e.retry_attempt, e.retry_reason) for e in sent]

            await fake.wait_for(lambda: len(retries()) == 4)
            assert retries() == [(0, None), (1, "timeout"), (2, "timeout"), (3, "timeout")]
            assert fake.envelopes[1].payload == fake.envelopes[0].payload
            assert fake.envelopes[1].envelope_id != first
            assert fake.envelopes[1].frame()["retry_reason"] == "timeout"
            assert fake.acks == []
        finally:
            await handler.close_async()


async def test_redeliver_sets_the_retry_headers_bolt_sees(
    fake: FakeSlack, bolt: RunningApp
) -> None:
    """redeliver() resends the same payload; bolt exposes the retry number and reason."""
    ts = await fake.post(CHANNEL, ALICE, f"{MENTION} once")
    mention = fake.envelopes_for(ts)[0]
    await bolt.next("app_mention")
    again = await fake.redeliver(mention.envelope_id, retry_attempt=2, retry_reason="http_timeout")
    await fake.wait_for_ack(again)
    _, event, headers = await bolt.next("app_mention")
    assert event["ts"] == ts
    assert headers["x-slack-retry-num"] == ["2"]
    assert headers["x-slack-retry-reason"] == ["http_timeout"]
    resent = next(e for e in fake.envelopes if e.envelope_id == again)
    assert resent.payload["event_id"] == mention.payload["event_id"]


async def test_click_reaches_the_action_listener(
    fake: FakeSlack, bolt: RunningApp, client: AsyncWebClient
) -> None:
    """A click is a block_actions envelope bolt routes to app.action; respond() replaces."""
    parent = await fake.post(CHANNEL, ALICE, "question")
    actions = {"type": "actions", "block_id": "controls", "elements": [button(action_id="approve")]}
    posted = await client.chat_postMessage(
        channel=CHANNEL, thread_ts=parent, text="Stop?", blocks=[actions]
    )
    ack = await fake.click(CHANNEL, posted["ts"], "approve", user=BOB, value="turn-1")
    assert ack.type == "interactive"
    _, body, _ = await bolt.next("approve")
    assert body["type"] == "block_actions"
    assert body["user"]["id"] == BOB
    assert body["actions"][0] | {"action_ts": ""} == {
        "action_id": "approve",
        "block_id": "controls",
        "type": "button",
        "value": "turn-1",
        "text": {"type": "plain_text", "text": "Go"},
        "action_ts": "",
    }
    assert body["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": CHANNEL,
        "is_ephemeral": False,
        "thread_ts": parent,
    }
    assert body["message"]["ts"] == posted["ts"]
    await fake.wait_for(lambda: fake.responses)
    assert fake.responses[0]["replace_original"] is True
    await fake.wait_for(lambda: fake.messages(CHANNEL)[-1]["text"] == "approved")


async def test_slash_command_ack_carries_the_response_payload(
    fake: FakeSlack, bolt: RunningApp
) -> None:
    """A slash command envelope accepts a response payload; ack(text) comes back in the ack."""
    ack = await fake.slash("/trellis", "revenue by month", channel=CHANNEL, user=ALICE)
    assert ack.type == "slash_commands"
    assert ack.payload == {"text": "working on revenue by month"}
    envelope = fake.envelopes[-1]
    assert envelope.accepts_response_payload is True
    assert envelope.payload["response_url"].startswith(fake.base_url)


async def test_home_tab_opened_and_published(fake: FakeSlack, bolt: RunningApp) -> None:
    """app_home_opened reaches the app, and its views.publish is stored per user."""
    ack = await fake.open_home(ALICE)
    assert ack.type == "events_api"
    home = await fake.wait_for(lambda: fake.home_views.get(ALICE))
    assert home["type"] == "home"
    event = fake.events("app_home_opened")[0]
    assert (event["channel"], event["tab"]) == (DM, "home")


async def test_disconnect_makes_the_sdk_reconnect(fake: FakeSlack, bolt: RunningApp) -> None:
    """After a disconnect message the SDK opens a new socket and events flow again."""
    await fake.disconnect_sockets()
    await fake.wait_for(
        lambda: len(fake.calls_to("apps.connections.open")) == 2 and fake.socket_connections == 1
    )
    ts = await fake.post(CHANNEL, ALICE, f"{MENTION} still there?")
    await fake.wait_for_ack(fake.envelopes_for(ts)[0].envelope_id)


async def test_events_wait_in_a_queue_until_a_socket_opens(fake: FakeSlack) -> None:
    """Events queued while no app is connected are delivered after hello, in order."""
    ts = await fake.post(CHANNEL, ALICE, f"{MENTION} early")
    assert fake.envelopes_sent == []
    app = AsyncApp(client=AsyncWebClient(token=fake.bot_token, base_url=fake.api_url))
    heard: asyncio.Queue[str] = asyncio.Queue()

    async def on_event(event: dict[str, Any]) -> None:
        await heard.put(str(event["type"]))

    app.event("app_mention")(on_event)
    app.event("message")(on_event)
    handler = AsyncSocketModeHandler(app, fake.app_token)
    await handler.connect_async()
    try:
        async with asyncio.timeout(5):
            assert {await heard.get(), await heard.get()} == {"app_mention", "message"}
        assert [e.event["ts"] for e in fake.envelopes_sent] == [ts, ts]
    finally:
        await handler.close_async()


async def test_socket_hello_pings_and_single_use_tickets(fake: FakeSlack) -> None:
    """A raw client gets hello, a pong for its ping, envelopes to ack, and no ticket reuse."""
    opener = AsyncWebClient(base_url=fake.api_url)
    url = (await opener.apps_connections_open(app_token=fake.app_token))["url"]
    assert url.startswith("ws://127.0.0.1:")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, autoping=False) as ws:
            hello = await ws.receive_json(timeout=5)
            assert (hello["type"], hello["connection_info"]["app_id"]) == ("hello", "A0APP")
            await ws.ping(b"sdk-ping-pong:1")
            pong = await ws.receive(timeout=5)
            assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"sdk-ping-pong:1")
            envelope_id = await fake.send_event({"type": "team_join", "user": {"id": BOB}})
            frame = await ws.receive_json(timeout=5)
            assert frame["envelope_id"] == envelope_id
            assert frame["payload"]["event"]["type"] == "team_join"
            await ws.send_json({"envelope_id": envelope_id})
            assert (await fake.wait_for_ack(envelope_id)).payload is None
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(url)


# ---------------------------------------------------------------------------- files, streams


async def test_files_upload_v2_end_to_end(fake: FakeSlack, client: AsyncWebClient) -> None:
    """files_upload_v2 stores the bytes and shares them in the thread as a file_share message."""
    parent = await fake.post(CHANNEL, ALICE, "chart please")
    answer = await client.files_upload_v2(
        content=b"\x89PNG fake",
        filename="chart.png",
        title="Revenue",
        alt_txt="Revenue by month",
        channel=CHANNEL,
        thread_ts=parent,
        initial_comment="Here it is",
    )
    file_id = answer["file"]["id"]
    stored = fake.files[file_id]
    assert (stored.content, stored.title, stored.alt_txt) == (
        b"\x89PNG fake",
        "Revenue",
        "Revenue by month",
    )
    assert (stored.filetype, stored.channel, stored.thread_ts) == ("png", CHANNEL, parent)
    (message,) = fake.bot_messages(CHANNEL, parent)
    assert (message["subtype"], message["text"], message["ts"]) == (
        "file_share",
        "Here it is",
        stored.message_ts,
    )
    assert message["files"][0]["id"] == file_id
    info = (await client.files_info(file=file_id))["file"]
    assert info["shares"]["public"][CHANNEL][0]["thread_ts"] == parent
    await client.files_delete(file=file_id)
    assert fake.files[file_id].deleted
    with pytest.raises(SlackApiError) as error:
        await client.files_info(file=file_id)
    assert api_error(error) == "file_deleted"


async def test_streaming_message_and_its_end(fake: FakeSlack, client: AsyncWebClient) -> None:
    """chat_stream builds one threaded message; after stopStream appends are refused."""
    parent = await fake.post(CHANNEL, ALICE, "stream it")
    with pytest.raises(SlackApiError) as info:
        await client.chat_startStream(channel=CHANNEL, thread_ts=parent, markdown_text="x")
    assert api_error(info) == "invalid_arguments"
    stream = await client.chat_stream(
        channel=CHANNEL,
        thread_ts=parent,
        recipient_user_id=ALICE,
        recipient_team_id="T0TEAM",
        buffer_size=5,
    )
    await stream.append(markdown_text="**Revenue** ")
    await stream.append(markdown_text="grew 12%")
    await stream.stop(blocks=[{"type": "actions", "elements": [button(action_id="retry")]}])
    (message,) = fake.bot_messages(CHANNEL, parent)
    assert message["text"] == "**Revenue** grew 12%"
    assert message["blocks"][0]["elements"][0]["action_id"] == "retry"
    assert [c.method for c in fake.calls if c.method.endswith("Stream")][-3:] == [
        "chat.startStream",
        "chat.appendStream",
        "chat.stopStream",
    ]
    with pytest.raises(SlackApiError) as info:
        await client.chat_appendStream(channel=CHANNEL, ts=message["ts"], markdown_text="late")
    assert api_error(info) == "message_not_in_streaming_state"


async def test_status_ephemeral_and_permalink(fake: FakeSlack, client: AsyncWebClient) -> None:
    """setStatus is recorded and cleared by a post; ephemerals and permalinks are served."""
    parent = await fake.post(CHANNEL, ALICE, "q")
    await client.assistant_threads_setStatus(
        channel_id=CHANNEL, thread_ts=parent, status="is thinking…", loading_messages=["a", "b"]
    )
    assert fake.status(CHANNEL, parent) == "is thinking…"
    assert fake.statuses[0]["loading_messages"] == ["a", "b"]
    await client.chat_postMessage(channel=CHANNEL, thread_ts=parent, text="answer")
    assert fake.status(CHANNEL, parent) == ""
    await client.chat_postEphemeral(channel=CHANNEL, user=BOB, text="only you", thread_ts=parent)
    assert fake.ephemerals[0] | {"message_ts": ""} == {
        "channel": CHANNEL,
        "user": BOB,
        "text": "only you",
        "thread_ts": parent,
        "message_ts": "",
    }
    with pytest.raises(SlackApiError) as info:
        await client.chat_postEphemeral(channel=CHANNEL, user=OUTSIDER, text="not a member")
    assert api_error(info) == "user_not_in_channel"
    link = (await client.chat_getPermalink(channel=CHANNEL, message_ts=parent))["permalink"]
    assert link.endswith(f"/archives/{CHANNEL}/p{parent.replace('.', '')}")


async def test_wait_for_timeout_names_the_last_calls(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    """A wait that times out says which Web API calls happened last."""
    await client.auth_test()
    with pytest.raises(TimeoutError, match=r"auth\.test ok"):
        await fake.wait_for(lambda: fake.bot_messages(CHANNEL), timeout=0.05)
