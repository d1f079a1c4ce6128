"""Tests for the fake Slack's Socket Mode with several connections: spreading and redelivery."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from trellis_slack.fakes.slack_records import Connection
from trellis_slack.fakes.slack_server import Envelope, FakeSlack

ALICE, CHANNEL = "U0ALICE", "C0GENERAL"
REACTION = {"type": "reaction_added", "user": ALICE, "reaction": "eyes"}


def world(fake: FakeSlack) -> FakeSlack:
    fake.add_user(ALICE, "alice")
    fake.add_channel(CHANNEL, "general", members=[ALICE])
    return fake


Heard = asyncio.Queue[tuple[str, dict[str, Any]]]


def listening_app(fake: FakeSlack, heard: Heard) -> AsyncApp:
    """A bolt app that reports each message's ts (with headers) and each click's action_ts."""
    app = AsyncApp(client=AsyncWebClient(token=fake.bot_token, base_url=fake.api_url))

    async def on_message(event: dict[str, Any], request: AsyncBoltRequest) -> None:
        await heard.put((str(event["ts"]), dict(request.headers)))

    async def on_click(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await heard.put((str(body["actions"][0]["action_ts"]), {}))

    app.event("message")(on_message)
    app.action("go")(on_click)
    return app


@contextlib.asynccontextmanager
async def bolt_apps(fake: FakeSlack, n: int) -> AsyncIterator[list[Heard]]:
    """``n`` bolt apps, one Socket Mode connection each (app i is connection i + 1)."""
    heard: list[Heard] = []
    handlers: list[AsyncSocketModeHandler] = []
    try:
        for index in range(n):
            heard.append(asyncio.Queue())
            handler = AsyncSocketModeHandler(listening_app(fake, heard[-1]), fake.app_token)
            await handler.connect_async()
            handlers.append(handler)
            await fake.wait_for(sockets_open(fake, index + 1))
        yield heard
    finally:
        for handler in handlers:
            await handler.close_async()


@contextlib.asynccontextmanager
async def raw_sockets(
    fake: FakeSlack, n: int
) -> AsyncIterator[list[aiohttp.ClientWebSocketResponse]]:
    """``n`` bare Socket Mode clients that ack nothing by themselves (socket i is connection i+1)."""
    opener = AsyncWebClient(base_url=fake.api_url)
    async with aiohttp.ClientSession() as session:
        sockets: list[aiohttp.ClientWebSocketResponse] = []
        try:
            for index in range(n):
                url = (await opener.apps_connections_open(app_token=fake.app_token))["url"]
                ws = await session.ws_connect(url)
                assert (await ws.receive_json(timeout=5))["type"] == "hello"
                sockets.append(ws)
                await fake.wait_for(sockets_open(fake, index + 1))
            yield sockets
        finally:
            for ws in sockets:
                await ws.close()


async def next_envelope(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next envelope written to a bare socket."""
    frame: dict[str, Any] = await ws.receive_json(timeout=5)
    assert "envelope_id" in frame, frame
    return frame


def sockets_open(fake: FakeSlack, n: int) -> Callable[[], bool]:
    """Whether ``n`` Socket Mode connections are open."""
    return lambda: fake.socket_connections == n


def heard_as(envelope: Envelope) -> str | None:
    """What the listening app reports for an envelope; ``None``: bolt drops it (the bot's own)."""
    if envelope.type == "interactive":
        return str(envelope.payload["actions"][0]["action_ts"])
    return str(envelope.event["ts"]) if envelope.event.get("user") == ALICE else None


def numbers(fake: FakeSlack, envelopes: Sequence[Envelope]) -> list[int | None]:
    return [fake.delivered_to(e.envelope_id) for e in envelopes]


async def test_envelopes_and_clicks_spread_over_three_connections() -> None:
    """Events and clicks go to each of three connections, and each app hears exactly its own."""
    async with FakeSlack() as fake, bolt_apps(world(fake), 3) as heard:
        for i in range(30):
            await fake.post(CHANNEL, ALICE, f"message {i}")
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
        button = {"type": "button", "text": {"type": "plain_text", "text": "Go"}, "value": "v"}
        blocks = [{"type": "actions", "elements": [button | {"action_id": "go"}]}]
        message = await client.chat_postMessage(channel=CHANNEL, text="click", blocks=blocks)
        for _ in range(12):
            await fake.click(CHANNEL, message["ts"], "go", user=ALICE)
        await fake.wait_for(lambda: len(fake.acks) == len(fake.envelopes))
        deliveries = fake.deliveries()
        assert sorted(deliveries) == [1, 2, 3]
        assert sum(len(envelopes) for envelopes in deliveries.values()) == len(fake.envelopes)
        for index, queue in enumerate(heard):
            mine = deliveries[index + 1]
            assert {e.type for e in mine} == {"events_api", "interactive"}
            expected = {heard_as(e) for e in mine} - {None}
            async with asyncio.timeout(5):
                seen = {(await queue.get())[0] for _ in range(len(expected))}
            assert seen == expected
            assert queue.empty()


async def test_the_spread_repeats_for_a_seed() -> None:
    """The same seeded random.Random spreads the same envelopes over the same connections."""
    spreads: list[list[int | None]] = []
    for _ in range(2):
        async with FakeSlack(rng=random.Random(7)) as fake, raw_sockets(fake, 3):
            for _ in range(20):
                await fake.send_event(REACTION)
            await fake.wait_for(lambda: len(fake.envelopes_sent) == 20)
            spreads.append(numbers(fake, fake.envelopes_sent))
    assert spreads[0] == spreads[1]
    assert set(spreads[0]) == {1, 2, 3}


async def test_deliver_to_and_route_to_pin_the_connection() -> None:
    """deliver_to picks among the open connections; route_to(n) pins n; None is random again."""
    offered: list[list[int]] = []

    def newest(live: Sequence[Connection]) -> Connection:
        offered.append([c.number for c in live])
        return live[-1]

    async with FakeSlack(deliver_to=newest) as fake, raw_sockets(fake, 3):
        for _ in range(3):
            await fake.send_event(REACTION)
        await fake.wait_for(lambda: len(fake.envelopes_sent) == 3)
        assert offered == [[1, 2, 3]] * 3
        fake.route_to(2)
        for _ in range(3):
            await fake.send_event(REACTION)
        await fake.wait_for(lambda: len(fake.envelopes_sent) == 6)
        fake.route_to(None)
        for _ in range(20):
            await fake.send_event(REACTION)
        await fake.wait_for(lambda: len(fake.envelopes_sent) == 26)
        sent = numbers(fake, fake.envelopes_sent)
        assert sent[:6] == [3, 3, 3, 2, 2, 2]
        assert set(sent[6:]) == {1, 2, 3}
        assert [c.number for c in fake.connections] == [1, 2, 3]


async def test_a_redelivery_lands_on_another_connection() -> None:
    """Each redelivery of an unacked event goes to another connection than the one that missed it."""
    async with FakeSlack(redeliver_after=0.05) as fake, raw_sockets(fake, 3) as sockets:
        fake.route_to(1)
        await fake.send_event(REACTION)
        await fake.wait_for(lambda: len(fake.envelopes_sent) == 4)
        sent = fake.envelopes_sent
        assert [(e.retry_attempt, e.retry_reason) for e in sent] == [
            (0, None),
            (1, "timeout"),
            (2, "timeout"),
            (3, "timeout"),
        ]
        where = numbers(fake, sent)
        assert all(a != b for a, b in itertools.pairwise(where)), where
        assert where[0] == 1
        assert {e.payload["event_id"] for e in sent} == {sent[0].payload["event_id"]}
        frame = await next_envelope(sockets[0])
        assert frame["envelope_id"] == sent[0].envelope_id


async def test_an_event_in_flight_on_a_closing_connection_is_redelivered_elsewhere() -> None:
    """A connection that closes before its acks: its events come again elsewhere, its commands not."""
    async with FakeSlack() as fake, raw_sockets(world(fake), 2) as (first, second):
        fake.route_to(1)
        command = asyncio.create_task(fake.slash("/trellis", "help", channel=CHANNEL, user=ALICE))
        event_id = await fake.send_event(REACTION)
        written = [await next_envelope(first), await next_envelope(first)]
        assert {f["type"]: f["envelope_id"] for f in written}["events_api"] == event_id
        await first.close()
        frame = await next_envelope(second)
        assert frame["envelope_id"] != event_id
        assert (frame["type"], frame["retry_attempt"], frame["retry_reason"]) == (
            "events_api",
            1,
            "timeout",
        )
        original = next(e for e in fake.envelopes if e.envelope_id == event_id)
        assert frame["payload"] == original.payload
        await second.send_json({"envelope_id": frame["envelope_id"]})
        await fake.wait_for_ack(frame["envelope_id"])
        assert sorted(e.type for e in fake.envelopes) == ["events_api"] * 2 + ["slash_commands"]
        assert [len(e) for e in fake.deliveries().values()] == [2, 1]
        assert not command.done()  # the person sees Slack's error; nothing comes again
        command.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await command


async def test_one_connection_behaves_as_before() -> None:
    """With one connection every delivery and redelivery uses it, with the same retry headers."""
    async with (
        FakeSlack(redeliver_after=0.05) as fake,
        bolt_apps(world(fake), 1) as (heard,),
    ):
        await fake.send_event(REACTION)  # no listener: never acked
        ts = await fake.post(CHANNEL, ALICE, "hello")
        await fake.wait_for(lambda: len(fake.envelopes_sent) == 5)
        assert (await asyncio.wait_for(heard.get(), 5))[0] == ts
        sent = fake.envelopes_sent
        retries = [(e.retry_attempt, e.retry_reason) for e in sent if e.event["type"] != "message"]
        assert retries == [(0, None), (1, "timeout"), (2, "timeout"), (3, "timeout")]
        assert set(numbers(fake, sent)) == {1}
        assert list(fake.deliveries()) == [1]
        assert [e.envelope_id for e in fake.deliveries()[1]] == [e.envelope_id for e in sent]


async def test_an_event_lost_with_the_only_connection_waits_for_the_next() -> None:
    """An event in flight when the only connection closes is redelivered to the next one opened."""
    async with FakeSlack() as fake:
        async with raw_sockets(fake, 1) as (only,):
            event_id = await fake.send_event(REACTION)
            assert (await next_envelope(only))["envelope_id"] == event_id
        await fake.wait_for(lambda: fake.socket_connections == 0)
        assert len(fake.envelopes) == 2
        assert fake.envelopes[1].retry_attempt == 1
        assert fake.envelopes_sent == fake.envelopes[:1]
        async with raw_sockets(fake, 1) as (next_one,):
            frame = await next_envelope(next_one)
            assert (frame["retry_attempt"], frame["retry_reason"]) == (1, "timeout")
            assert fake.delivered_to(frame["envelope_id"]) == 2
