"""Tests for trellis_slack.trellis.client against the fake Trellis over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from trellis_slack.errors import (
    TrellisAPIError,
    TrellisAuthError,
    TrellisConnectionLost,
    TrellisMalformedAnswer,
    TrellisTimeout,
    TrellisUnavailable,
)
from trellis_slack.fakes.trellis_server import FakeTrellis, Step, answer
from trellis_slack.trellis.client import (
    Backoff,
    EditMessage,
    SendMessage,
    TrellisClient,
    Turn,
)
from trellis_slack.trellis.protocol import (
    ChatMetadata,
    ErrorEvent,
    Interrupted,
    Message,
    Processing,
    TextDelta,
    TrellisEvent,
    Visualization,
)
from trellis_slack.trellis.rest import TrellisRest
from trellis_slack.trellis.tokens import ApiKeyTokens, StaticToken, TokenProvider

#: Upper bound for any one test's waiting; the tests normally finish in milliseconds.
LIMIT = 10.0
NO_DELAY = Backoff(base=0.0, cap=0.0)


class Sleeps:
    """The injected sleep: records each requested delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class SwappingTokens:
    """A refreshable provider handing out ``tokens`` in order, one more after each invalidate."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)
        self.index = 0
        self.invalidated: list[str] = []

    async def token_for(self, identity: str | None) -> str:
        return self.tokens[self.index]

    def invalidate(self, identity: str | None, token: str) -> None:
        self.invalidated.append(token)
        self.index = min(self.index + 1, len(self.tokens) - 1)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def client_for(
    trellis: FakeTrellis,
    *,
    tokens: TokenProvider | None = None,
    rest: bool = True,
    **options: Any,
) -> AsyncIterator[TrellisClient]:
    api = TrellisRest(trellis.api_url) if rest else None
    options.setdefault("pace", False)
    options.setdefault("backoff", NO_DELAY)
    options.setdefault("sleep", Sleeps())
    client = TrellisClient(
        ws_url=trellis.ws_url,
        tokens=tokens if tokens is not None else StaticToken(trellis.make_token()),
        rest=api,
        **options,
    )
    try:
        yield client
    finally:
        await client.aclose()
        if api is not None:
            await api.aclose()


async def collect(turn: Turn) -> list[TrellisEvent]:
    async with asyncio.timeout(LIMIT), turn:
        return [event async for event in turn]


def sent_frames(trellis: FakeTrellis, action: str) -> list[dict[str, Any]]:
    return [r.frame for r in trellis.actions(action) if isinstance(r.frame, dict)]


@pytest.fixture(params=["seed", "current"])
async def trellis(request: pytest.FixtureRequest) -> AsyncIterator[FakeTrellis]:
    async with FakeTrellis(version=request.param) as fake:
        yield fake


@pytest.fixture
async def current() -> AsyncIterator[FakeTrellis]:
    async with FakeTrellis(version="current") as fake:
        yield fake


@pytest.fixture
async def seed() -> AsyncIterator[FakeTrellis]:
    async with FakeTrellis(version="seed") as fake:
        yield fake


# ---------------------------------------------------------------------- both versions end to end


async def test_seed_turn_takes_chat_from_metadata(seed: FakeTrellis) -> None:
    """On v-seed the question is sent without a chat id and the chat comes from chat_metadata."""
    async with client_for(seed) as client:
        turn = client.turn(SendMessage("How many orders?", title="Orders"))
        events = await collect(turn)
        assert isinstance(events[0], ChatMetadata)
        assert not any(isinstance(e, TextDelta) for e in events)
        assert isinstance(events[-1], Message)
        assert events[-1].content == "You asked: How many orders?"
        assert turn.chat_id == events[0].chat_id
        assert turn.chat_id in seed.chats
        assert turn.user_message_id == events[0].user_message_id
        first = sent_frames(seed, "authenticate")
        assert len(first) == 1
        assert "chat_id" not in sent_frames(seed, "send_message")[0]
        # The missing chat-create endpoint is remembered: a REST failure now would show if called.
        seed.fail_next_rest(1, status=500)
        again = await collect(client.turn(SendMessage("And now?")))
        assert isinstance(again[-1], Message)


async def test_current_turn_creates_chat_over_rest_and_streams_deltas(current: FakeTrellis) -> None:
    """On v-current the chat is created over REST first, then the answer streams in deltas."""
    chart = {"type": "chart", "chart_type": "bar", "data": {"values": [{"label": "N", "value": 1}]}}
    current.responder = lambda q: answer("The answer is 42.", visualizations=[chart])
    async with client_for(current) as client:
        turn = client.turn(
            SendMessage("Q?", integration_id="550e8400-e29b-41d4-a716-446655440000", title="T")
        )
        events = await collect(turn)
    chat_id = turn.chat_id
    assert chat_id is not None
    assert current.chats[chat_id].title == "T"
    assert current.chats[chat_id].integration_id == "550e8400-e29b-41d4-a716-446655440000"
    assert sent_frames(current, "send_message")[0]["chat_id"] == chat_id
    kinds = [type(e) for e in events]
    assert kinds[:4] == [ChatMetadata, Processing, Processing, Visualization]
    assert set(kinds[4:-1]) == {TextDelta}
    assert kinds[-1] is Message
    deltas = "".join(e.content for e in events if isinstance(e, TextDelta))
    assert deltas == "The answer is 42."
    viz = events[3]
    assert isinstance(viz, Visualization)
    assert (viz.kind, viz.payload["chart_type"]) == ("chart", "bar")


async def test_follow_up_continues_the_chat(trellis: FakeTrellis) -> None:
    """A follow-up with the chat id lands in the same chat, on the same socket."""
    async with client_for(trellis) as client:
        first = client.turn(SendMessage("one"))
        await collect(first)
        second = client.turn(SendMessage("two", chat_id=first.chat_id))
        await collect(second)
    assert second.chat_id == first.chat_id
    assert first.chat_id is not None
    assert [m.content for m in trellis.chats[first.chat_id].messages] == [
        "one",
        "You asked: one",
        "two",
        "You asked: two",
    ]
    assert trellis.accepted_connections == 1


async def test_current_without_rest_reports_the_error(current: FakeTrellis) -> None:
    """Without REST, v-current refuses a chat-less question and the turn ends with that error."""
    async with client_for(current, rest=False) as client:
        events = await collect(client.turn(SendMessage("Q")))
    assert len(events) == 1
    assert isinstance(events[0], ErrorEvent)
    assert events[0].code == "CHAT_ID_REQUIRED"


async def test_edit_gives_a_new_user_message_id(trellis: FakeTrellis) -> None:
    """Editing a question streams a fresh answer whose user message has a new id."""
    async with client_for(trellis) as client:
        first = client.turn(SendMessage("old question"))
        await collect(first)
        assert first.user_message_id is not None
        edit = client.turn(EditMessage(first.user_message_id, "new question"))
        events = await collect(edit)
    assert isinstance(events[-1], Message)
    assert events[-1].content == "You asked: new question"
    assert edit.chat_id == first.chat_id
    assert edit.user_message_id not in (None, first.user_message_id)
    assert sent_frames(trellis, "edit_message")[0]["content"] == "new question"


async def test_delete_message_waits_for_deleted(trellis: FakeTrellis) -> None:
    """delete_message returns once Trellis confirms, and an unknown id raises TrellisAPIError."""
    async with client_for(trellis) as client:
        turn = client.turn(SendMessage("to be removed"))
        await collect(turn)
        assert turn.chat_id is not None
        assert turn.user_message_id is not None
        async with asyncio.timeout(LIMIT):
            await client.delete_message(turn.user_message_id)
        assert trellis.chats[turn.chat_id].messages == []
        with pytest.raises(TrellisAPIError):
            async with asyncio.timeout(LIMIT):
                await client.delete_message("msg_nope")
        # The socket stays usable after the error.
        assert isinstance((await collect(client.turn(SendMessage("next"))))[-1], Message)
    assert trellis.accepted_connections == 1


async def test_check_pings_an_authenticated_socket(trellis: FakeTrellis) -> None:
    """check() opens and authenticates a socket and gets a pong."""
    async with client_for(trellis) as client:
        async with asyncio.timeout(LIMIT):
            await client.check()
        assert client.open_connections == 1
    assert len(trellis.actions("ping")) == 1
    assert sent_frames(trellis, "authenticate")


# ---------------------------------------------------------------------- pool


async def test_three_socket_cap_under_ten_turns(trellis: FakeTrellis) -> None:
    """Ten concurrent turns share at most three sockets; the rest queue and all complete."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [Step.pause(gate), Step.message(f"re: {q.text}")]
    queued: asyncio.Queue[int] = asyncio.Queue()

    async def run(client: TrellisClient, n: int) -> tuple[Turn, list[TrellisEvent]]:
        async def on_queued() -> None:
            queued.put_nowait(n)

        turn = client.turn(SendMessage(f"q{n}"), on_queued=on_queued)
        return turn, await collect(turn)

    async with client_for(trellis) as client, asyncio.timeout(LIMIT):
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(run(client, n)) for n in range(10)]
            for _ in range(7):
                await queued.get()
            await trellis.wait_for_action("send_message", count=3)
            assert client.queued_turns == 7
            assert client.open_connections == 3
            gate.set()
        results = [task.result() for task in tasks]
        assert client.queued_turns == 0
    assert trellis.peak_connections == 3
    assert trellis.accepted_connections == 3
    finals = [events[-1] for _, events in results]
    assert sorted(e.content for e in finals if isinstance(e, Message)) == sorted(
        f"re: q{n}" for n in range(10)
    )
    assert sum(turn.queued for turn, _ in results) == 7


async def test_queued_turns_are_served_in_order(current: FakeTrellis) -> None:
    """With one socket, waiting turns are sent to Trellis in the order they queued."""
    gate = asyncio.Event()
    current.responder = lambda q: [Step.pause(gate), Step.message("ok")]
    queued: asyncio.Queue[int] = asyncio.Queue()

    async def run(client: TrellisClient, n: int) -> None:
        async def on_queued() -> None:
            queued.put_nowait(n)

        await collect(client.turn(SendMessage(f"q{n}"), on_queued=on_queued))

    async with client_for(current, max_connections=1) as client:
        first = asyncio.create_task(run(client, 0))
        async with asyncio.timeout(LIMIT):
            await current.wait_for_action("send_message")
            rest = []
            for n in range(1, 4):
                rest.append(asyncio.create_task(run(client, n)))
                assert await queued.get() == n
            gate.set()
            await asyncio.gather(first, *rest)
    assert [f["message"] for f in sent_frames(current, "send_message")] == ["q0", "q1", "q2", "q3"]


async def test_idle_socket_is_pinged_then_closed(trellis: FakeTrellis) -> None:
    """An idle socket is pinged every ping_interval and closed after idle_timeout."""
    async with client_for(trellis, ping_interval=0.05, idle_timeout=0.4) as client:
        await collect(client.turn(SendMessage("hi")))
        async with asyncio.timeout(LIMIT):
            await trellis.wait_for_action("ping")
            await trellis.wait_until(lambda: trellis.open_connections == 0)
        assert client.open_connections == 0
        # A new turn simply opens a new socket.
        assert isinstance((await collect(client.turn(SendMessage("again"))))[-1], Message)
    assert trellis.accepted_connections == 2


async def test_socket_closed_while_idle_is_replaced(trellis: FakeTrellis) -> None:
    """When Trellis closes an idle socket (a restart), the next turn quietly opens a new one."""
    async with client_for(trellis) as client:
        await collect(client.turn(SendMessage("before")))
        async with asyncio.timeout(LIMIT):
            await trellis.disconnect_all(1012)
            await trellis.wait_until(lambda: trellis.open_connections == 0)
        events = await collect(client.turn(SendMessage("after")))
    assert isinstance(events[-1], Message)
    assert trellis.accepted_connections == 2


# ---------------------------------------------------------------------- failures mid-turn


async def test_turn_timeout_interrupts_and_raises(trellis: FakeTrellis) -> None:
    """No event for turn_timeout sends interrupt and raises TrellisTimeout."""
    never = asyncio.Event()
    trellis.responder = lambda q: [Step.processing(), Step.pause(never)]
    async with client_for(trellis, turn_timeout=0.3) as client:
        seen: list[TrellisEvent] = []
        with pytest.raises(TrellisTimeout):
            await collect_into(client.turn(SendMessage("slow")), seen)
        assert [type(e) for e in seen] == [ChatMetadata, Processing]
        async with asyncio.timeout(LIMIT):
            await trellis.wait_for_action("interrupt")
            await trellis.wait_until(lambda: trellis.open_connections == 0)
        assert client.open_connections == 0


async def collect_into(turn: Turn, seen: list[TrellisEvent]) -> None:
    async with asyncio.timeout(LIMIT), turn:
        async for event in turn:
            seen.append(event)


async def test_interrupt_mid_stream(trellis: FakeTrellis) -> None:
    """interrupt() stops a streaming answer: the turn ends with Interrupted and the socket is reused."""
    held = asyncio.Event()
    trellis.responder = lambda q: [Step.processing(), Step.pause(held), Step.message("late")]
    async with client_for(trellis) as client:
        turn = client.turn(SendMessage("long one"))
        await turn.interrupt()  # before the start: a harmless no-op
        events: list[TrellisEvent] = []
        async with asyncio.timeout(LIMIT), turn:
            async for event in turn:
                events.append(event)
                if isinstance(event, Processing):
                    await turn.interrupt()
        assert isinstance(events[-1], Interrupted)
        await turn.interrupt()  # after the end: a harmless no-op
        assert len(trellis.actions("interrupt")) == 1
        held.set()
        follow = await collect(client.turn(SendMessage("next", chat_id=turn.chat_id)))
        assert isinstance(follow[-1], Message)
    assert trellis.accepted_connections == 1


async def test_late_interrupt_does_not_leak_into_the_next_turn(trellis: FakeTrellis) -> None:
    """An interrupt that crosses the final answer cannot hand its stray error to the next turn."""
    trellis.responder = lambda q: [Step.message(f"re: {q.text}")]
    async with client_for(trellis) as client:
        turn = client.turn(SendMessage("quick"))
        events: list[TrellisEvent] = []
        async with asyncio.timeout(LIMIT), turn:
            async for event in turn:
                events.append(event)
                if isinstance(event, ChatMetadata):
                    await turn.interrupt()  # the answer is already on its way
        assert isinstance(events[-1], Message)
        async with asyncio.timeout(LIMIT):
            await trellis.wait_for_action("interrupt")
        follow = await collect(client.turn(SendMessage("next", chat_id=turn.chat_id)))
    assert isinstance(follow[-1], Message)
    assert follow[-1].content == "re: next"
    assert trellis.accepted_connections == 2  # the socket with the stray error was dropped


async def test_leaving_a_turn_early_interrupts_and_drops_its_socket(trellis: FakeTrellis) -> None:
    """Breaking out of a streaming turn interrupts it; the next turn gets a clean socket."""
    held = asyncio.Event()
    trellis.responder = lambda q: [Step.processing(), Step.pause(held), Step.message("x")]
    async with client_for(trellis) as client:
        async with asyncio.timeout(LIMIT), client.turn(SendMessage("a")) as turn:
            async for event in turn:
                if isinstance(event, Processing):
                    break
        async with asyncio.timeout(LIMIT):
            await trellis.wait_for_action("interrupt")
        trellis.responder = lambda q: answer("fresh")
        final = (await collect(client.turn(SendMessage("b"))))[-1]
        assert isinstance(final, Message)
        assert final.content == "fresh"


async def test_dropped_connection_raises_connection_lost(trellis: FakeTrellis) -> None:
    """A socket that drops mid-answer makes the turn raise TrellisConnectionLost, not hang."""
    trellis.responder = lambda q: [Step.processing(), Step.drop()]
    async with client_for(trellis) as client:
        with pytest.raises(TrellisConnectionLost):
            await collect(client.turn(SendMessage("x")))
        assert client.open_connections == 0
        trellis.responder = lambda q: answer("fine")
        assert isinstance((await collect(client.turn(SendMessage("y"))))[-1], Message)
    assert trellis.accepted_connections == 2


async def test_server_closing_mid_turn_raises_connection_lost(current: FakeTrellis) -> None:
    """A clean close (1011) mid-answer also raises TrellisConnectionLost."""
    current.responder = lambda q: [Step.processing(), Step.close(1011)]
    async with client_for(current) as client:
        with pytest.raises(TrellisConnectionLost):
            await collect(client.turn(SendMessage("x")))


async def test_unknown_and_garbage_frames_are_skipped(
    trellis: FakeTrellis, caplog: pytest.LogCaptureFixture
) -> None:
    """Unknown events and bad frames are logged and skipped; the turn carries on."""
    caplog.set_level(logging.DEBUG, logger="trellis_slack")
    trellis.inject_before_next_turn(
        [
            "not json at all",
            json.dumps({"event": "brand_new_event", "data": {"x": 1}}),
            json.dumps({"event": "chat_metadata", "data": {"user_message_id": "no chat id"}}),
            json.dumps(["a", "list"]),
        ]
    )
    trellis.responder = lambda q: [
        Step.processing(),
        Step.raw('{"event": "visualization", "data": {"type": "chart"}}'),
        Step.raw("}{"),
        Step.message("done"),
    ]
    async with client_for(trellis) as client:
        events = await collect(client.turn(SendMessage("q")))
    assert [type(e) for e in events] == [ChatMetadata, Processing, Message]
    ours = [r for r in caplog.records if r.name.startswith("trellis_slack.trellis.")]
    assert len([r for r in ours if r.levelno == logging.WARNING]) == 5
    assert any("brand_new_event" in r.getMessage() for r in ours)
    assert not any("not json at all" in r.getMessage() for r in ours if r.levelno >= logging.INFO)


@pytest.mark.parametrize(
    "final",
    [
        Step.malformed_message(content="missing"),
        Step.malformed_message(content="null"),
        Step.raw('{"event": "message", "data": "just text"}'),
        Step.raw('{"event": "error", "data": ["boom"]}'),
    ],
    ids=["content-missing", "content-null", "message-data-not-object", "error-data-not-object"],
)
async def test_malformed_final_frame_ends_the_turn_at_once(
    trellis: FakeTrellis, final: Step, caplog: pytest.LogCaptureFixture
) -> None:
    """A final message or error that cannot be read raises a retryable TrellisMalformedAnswer now."""
    caplog.set_level(logging.WARNING, logger="trellis_slack")
    trellis.responder = lambda q: [Step.processing(), final]
    seen: list[TrellisEvent] = []

    async def run(turn: Turn) -> None:
        async with asyncio.timeout(LIMIT), turn:
            async for event in turn:
                seen.append(event)

    # The turn time-out is far beyond the test's limit: only ending at once can pass.
    async with client_for(trellis, turn_timeout=LIMIT * 10) as client:
        turn = client.turn(SendMessage("q"))
        with pytest.raises(TrellisMalformedAnswer) as info:
            await run(turn)
        assert [type(e) for e in seen] == [ChatMetadata, Processing]
        assert info.value.retryable
        assert str(info.value) == "Trellis sent an answer I could not read."
        assert not sent_frames(trellis, "interrupt")  # the answer was over: nothing to stop
        assert client.open_connections == 0  # the socket is dropped, its state unknown
        trellis.responder = lambda q: answer("readable")
        again = await collect(client.turn(SendMessage("again", chat_id=turn.chat_id)))
        assert isinstance(again[-1], Message)
        assert again[-1].content == "readable"
    assert any("could not be read" in r.getMessage() for r in caplog.records)


async def test_malformed_error_answering_an_action_raises_at_once() -> None:
    """An unreadable error frame answering delete_message raises at once instead of waiting it out."""

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()  # the authenticate frame
        await ws.send(json.dumps({"event": "authenticated", "data": {"status": "ok"}}))
        await ws.recv()  # delete_message
        await ws.send(json.dumps({"event": "error", "data": "Message not found"}))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = TrellisClient(
            ws_url=f"ws://127.0.0.1:{port}/v1/chats/ws",
            tokens=StaticToken("t"),
            backoff=NO_DELAY,
            turn_timeout=LIMIT * 10,
        )
        try:
            async with asyncio.timeout(LIMIT):
                with pytest.raises(TrellisMalformedAnswer):
                    await client.delete_message("msg_1")
            assert client.open_connections == 0
        finally:
            await client.aclose()


# ---------------------------------------------------------------------- connecting and backoff


async def test_backoff_after_accept_then_close(trellis: FakeTrellis) -> None:
    """Sockets accepted then closed (1011) are retried with growing delays through `sleep`."""
    sleeps = Sleeps()
    trellis.reject_next_connections(3, code=1011)
    backoff = Backoff(base=1.0, factor=2.0, cap=30.0, jitter=0.0)
    async with client_for(trellis, backoff=backoff, sleep=sleeps) as client:
        events = await collect(client.turn(SendMessage("q")))
    assert isinstance(events[-1], Message)
    assert sleeps.delays == [1.0, 2.0, 4.0]
    assert trellis.accepted_connections == 4


async def test_backoff_gives_up_after_max_attempts(trellis: FakeTrellis) -> None:
    """After max_attempts failed opens the turn raises TrellisUnavailable."""
    sleeps = Sleeps()
    trellis.reject_next_connections(100, code=1011)
    backoff = Backoff(base=0.5, factor=2.0, cap=1.0, jitter=0.5, max_attempts=3)
    async with client_for(trellis, backoff=backoff, sleep=sleeps) as client:
        with pytest.raises(TrellisUnavailable):
            await collect(client.turn(SendMessage("q")))
    assert trellis.accepted_connections == 3
    assert len(sleeps.delays) == 2
    assert 0.25 <= sleeps.delays[0] <= 0.75
    assert 0.5 <= sleeps.delays[1] <= 1.0


async def test_4429_is_retried_after_a_pause(current: FakeTrellis) -> None:
    """A socket refused for too many connections (4429) is retried after backing off."""
    sleeps = Sleeps()
    current.reject_next_connections(1, code=4429)
    async with client_for(current, sleep=sleeps) as client:
        events = await collect(client.turn(SendMessage("q")))
    assert isinstance(events[-1], Message)
    assert sleeps.delays == [0.0]
    assert current.accepted_connections == 2


async def test_4429_honours_retry_after() -> None:
    """A 4429 refusal whose error frame says retry_after_seconds waits at least that long."""
    sleeps = Sleeps()
    attempts: list[int] = []

    async def handler(ws: ServerConnection) -> None:
        attempts.append(1)
        await ws.recv()  # the authenticate frame
        if len(attempts) == 1:
            error = {"error": "too many", "code": "WS_CONNECTION_CAP", "retry_after_seconds": 2.5}
            await ws.send(json.dumps({"event": "error", "data": error}))
            await ws.close(4429, "Too many connections")
            return
        await ws.send(json.dumps({"event": "authenticated", "data": {"status": "ok"}}))
        await ws.send(json.dumps({"event": "pong", "data": {}}))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = TrellisClient(
            ws_url=f"ws://127.0.0.1:{port}/v1/chats/ws",
            tokens=StaticToken("t"),
            backoff=NO_DELAY,
            sleep=sleeps,
        )
        try:
            async with asyncio.timeout(LIMIT):
                await client.check()
        finally:
            await client.aclose()
    assert sleeps.delays == [2.5]
    assert len(attempts) == 2


async def test_unreachable_trellis_is_unavailable(current: FakeTrellis) -> None:
    """When nothing listens, opening backs off and ends in TrellisUnavailable."""
    sleeps = Sleeps()
    url = current.ws_url
    await current.stop()
    client = TrellisClient(
        ws_url=url,
        tokens=StaticToken("t"),
        backoff=Backoff(base=0, cap=0, max_attempts=2),
        sleep=sleeps,
    )
    try:
        with pytest.raises(TrellisUnavailable):
            await collect(client.turn(SendMessage("q")))
    finally:
        await client.aclose()
    assert sleeps.delays == [0.0]


async def test_bad_static_token_fails_once_without_reconnecting(trellis: FakeTrellis) -> None:
    """Close 4001 with a static token raises TrellisAuthError after a single connection."""
    async with client_for(trellis, tokens=StaticToken("not-a-token"), rest=False) as client:
        with pytest.raises(TrellisAuthError):
            await collect(client.turn(SendMessage("q")))
    assert trellis.accepted_connections == 1
    assert sent_frames(trellis, "authenticate") == [
        {"action": "authenticate", "token": "not-a-token"}
    ]


async def test_rejected_token_is_refreshed_once(seed: FakeTrellis) -> None:
    """With a refreshable provider a 4001 is retried once with a fresh token, which works."""
    good = seed.make_token()
    tokens = SwappingTokens(["expired-token", good])
    async with client_for(seed, tokens=tokens) as client:
        events = await collect(client.turn(SendMessage("q")))
    assert isinstance(events[-1], Message)
    assert tokens.invalidated == ["expired-token"]
    assert [f["token"] for f in sent_frames(seed, "authenticate")] == ["expired-token", good]
    assert seed.accepted_connections == 2


async def test_token_refused_over_rest_is_refreshed_once(current: FakeTrellis) -> None:
    """A token refused by the chat-create call (401) is also replaced once, then the turn runs."""
    good = current.make_token()
    tokens = SwappingTokens(["expired-token", good])
    async with client_for(current, tokens=tokens) as client:
        events = await collect(client.turn(SendMessage("q")))
    assert isinstance(events[-1], Message)
    assert tokens.invalidated == ["expired-token"]
    assert [f["token"] for f in sent_frames(current, "authenticate")] == [good]


async def test_refresh_is_tried_only_once(trellis: FakeTrellis) -> None:
    """If the fresh token is refused too, the turn fails: no reconnect loop."""
    tokens = SwappingTokens(["bad-1", "bad-2", "bad-3"])
    async with client_for(trellis, tokens=tokens, rest=False) as client:
        with pytest.raises(TrellisAuthError):
            await collect(client.turn(SendMessage("q")))
    assert trellis.accepted_connections == 2
    assert tokens.invalidated == ["bad-1"]


async def test_new_sockets_use_the_refreshed_token(current: FakeTrellis) -> None:
    """After a per-user token is refreshed, sockets opened later authenticate with the new one."""
    clock = Clock(time.time())
    rest = TrellisRest(current.api_url)
    tokens = ApiKeyTokens(rest, "test-api-key", clock=clock)
    try:
        async with client_for(current, tokens=tokens) as client:
            await collect(client.turn(SendMessage("one"), identity="ada@example.com"))
            clock.now += 6 * 3600
            await collect(client.turn(SendMessage("two"), identity="ada@example.com"))
    finally:
        await rest.aclose()
    used = [f["token"] for f in sent_frames(current, "authenticate")]
    assert len(used) == 2
    assert used[0] != used[1]
    assert len(current.members) == 1


async def test_identities_get_their_own_tokens_and_sockets(current: FakeTrellis) -> None:
    """In per-user mode each e-mail gets its own token and socket, hence its own chats."""
    rest = TrellisRest(current.api_url)
    tokens = ApiKeyTokens(rest, "test-api-key")
    try:
        async with client_for(current, tokens=tokens) as client:
            ada = client.turn(SendMessage("a"), identity="ada@example.com")
            bob = client.turn(SendMessage("b"), identity="bob@example.com")
            await collect(ada)
            await collect(bob)
            assert client.open_connections == 2
    finally:
        await rest.aclose()
    assert ada.chat_id is not None
    assert bob.chat_id is not None
    assert current.chats[ada.chat_id].owner != current.chats[bob.chat_id].owner


# ---------------------------------------------------------------------- rate limits and pacing


async def test_rate_limit_is_waited_out_and_resent(current: FakeTrellis) -> None:
    """A RATE_LIMIT error on send_message is waited out (retry_after) and the question resent."""
    sleeps = Sleeps()
    current.rate_limit_next(2, retry_after=1.5)
    async with client_for(current, sleep=sleeps) as client:
        events = await collect(client.turn(SendMessage("q")))
    assert not any(isinstance(e, ErrorEvent) for e in events)
    assert isinstance(events[-1], Message)
    assert sleeps.delays == [1.5, 1.5]
    assert len(current.actions("send_message")) == 3


async def test_rate_limit_resends_are_bounded(current: FakeTrellis) -> None:
    """When Trellis keeps saying RATE_LIMIT, the turn ends with that error after a few resends."""
    current.rate_limit_next(50, retry_after=0.0)
    async with client_for(current, backoff=Backoff(base=0, cap=0, max_attempts=3)) as client:
        events = await collect(client.turn(SendMessage("q")))
    assert len(events) == 1
    assert isinstance(events[0], ErrorEvent)
    assert events[0].code == "RATE_LIMIT"
    assert len(current.actions("send_message")) == 4


async def test_sends_are_paced_per_socket(current: FakeTrellis) -> None:
    """With pacing on, a fourth question on one socket within 10 s waits for its slot."""
    sleeps = Sleeps()
    async with client_for(current, pace=True, sleep=sleeps, max_connections=1) as client:
        first = client.turn(SendMessage("q0"))
        await collect(first)
        for n in range(1, 3):
            await collect(client.turn(SendMessage(f"q{n}", chat_id=first.chat_id)))
        assert sleeps.delays == []
        await collect(client.turn(SendMessage("q3", chat_id=first.chat_id)))
    assert len(sleeps.delays) == 1
    assert 9.0 < sleeps.delays[0] <= 10.0


# ---------------------------------------------------------------------- shutdown and secrecy


async def test_aclose_ends_streaming_and_queued_turns(current: FakeTrellis) -> None:
    """Closing the client makes a streaming turn raise ConnectionLost and a queued one fail."""
    held = asyncio.Event()
    current.responder = lambda q: [Step.processing(), Step.pause(held)]
    queued = asyncio.Event()

    async def on_queued() -> None:
        queued.set()

    async with client_for(current, max_connections=1) as client:
        streaming = asyncio.create_task(collect(client.turn(SendMessage("a"))))
        waiting = asyncio.create_task(collect(client.turn(SendMessage("b"), on_queued=on_queued)))
        async with asyncio.timeout(LIMIT):
            await queued.wait()
            await current.wait_for_action("send_message")
            await client.aclose()
            results = await asyncio.gather(streaming, waiting, return_exceptions=True)
    assert isinstance(results[0], TrellisConnectionLost)
    assert isinstance(results[1], TrellisUnavailable)


async def test_no_token_in_logs_reprs_or_errors(
    current: FakeTrellis, caplog: pytest.LogCaptureFixture
) -> None:
    """No token shows in any log line (DEBUG included), repr or error, across failures."""
    caplog.set_level(logging.DEBUG)
    good = current.make_token("secret-member")
    bad = "bad-token-" + "x" * 40
    errors: list[BaseException] = []
    async with client_for(current, tokens=StaticToken(bad)) as client:
        try:
            await collect(client.turn(SendMessage("q")))
        except TrellisAuthError as exc:
            errors.append(exc)
    current.reject_next_connections(2, code=1011)
    current.inject_before_next_turn(["garbage frame"])
    current.responder = lambda q: [Step.processing(), Step.error("kaput")]
    async with client_for(current, tokens=StaticToken(good)) as client:
        events = await collect(client.turn(SendMessage("q")))
        current.responder = lambda q: [Step.drop()]
        try:
            await collect(client.turn(SendMessage("q2")))
        except TrellisConnectionLost as exc:
            errors.append(exc)
        texts = [repr(client), repr(client.turn(SendMessage("x")))]
    assert isinstance(events[-1], ErrorEvent)
    assert len(errors) == 2
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    # Everything but the fake server's side (its websockets logger dumps the frames it receives).
    formatter = logging.Formatter("%(name)s %(message)s")
    texts += [
        formatter.format(r)
        for r in caplog.records
        if not r.name.startswith(("websockets.server", "trellis_slack.fakes"))
    ]
    assert any("socket" in text for text in texts)
    for text in texts:
        for secret in (good, bad, good[-20:], bad[-20:]):
            assert secret not in text


async def test_on_queued_failure_does_not_break_the_turn(current: FakeTrellis) -> None:
    """A failing on_queued callback is logged and the queued turn still runs."""
    gate = asyncio.Event()
    current.responder = lambda q: [Step.pause(gate), Step.message("ok")]
    called = asyncio.Event()

    async def broken() -> None:
        called.set()
        raise RuntimeError("boom")

    async with client_for(current, max_connections=1) as client:
        first = asyncio.create_task(collect(client.turn(SendMessage("a"))))
        second = asyncio.create_task(collect(client.turn(SendMessage("b"), on_queued=broken)))
        async with asyncio.timeout(LIMIT):
            await called.wait()
            gate.set()
            results = await asyncio.gather(first, second)
    assert all(isinstance(events[-1], Message) for events in results)
