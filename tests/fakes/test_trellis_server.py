"""Tests of the fake Trellis server, driven by a raw websockets client and aiohttp."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from trellis_slack.fakes.trellis_server import (
    FakeTrellis,
    Question,
    Step,
    Version,
    answer,
    split_pieces,
)

TIMEOUT = 5.0


@pytest.fixture
async def current() -> AsyncIterator[FakeTrellis]:
    async with FakeTrellis(version="current") as trellis:
        yield trellis


@pytest.fixture
async def seed() -> AsyncIterator[FakeTrellis]:
    async with FakeTrellis(version="seed") as trellis:
        yield trellis


async def recv(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        frame = json.loads(await ws.recv())
    assert isinstance(frame, dict)
    return frame


async def until(ws: ClientConnection, event: str) -> list[dict[str, Any]]:
    """Every event up to and including the first ``event``."""
    events = [await recv(ws)]
    while events[-1]["event"] != event:
        events.append(await recv(ws))
    return events


async def close_code(ws: ClientConnection) -> int | None:
    """The close code the server sent (None when the connection just dropped)."""
    async with asyncio.timeout(TIMEOUT):
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.recv()
    received = ws.protocol.close_rcvd
    return None if received is None else received.code


async def login(trellis: FakeTrellis, sub: str = "user-1", query: str = "") -> ClientConnection:
    ws = await connect(trellis.ws_url + query)
    await ws.send(json.dumps({"action": "authenticate", "token": trellis.make_token(sub)}))
    assert await recv(ws) == {"event": "authenticated", "data": {"status": "ok"}}
    return ws


async def new_chat(trellis: FakeTrellis, sub: str = "user-1", **body: Any) -> str:
    headers = {"Authorization": f"Bearer {trellis.make_token(sub)}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{trellis.api_url}/v1/chats/create", json=body, headers=headers) as resp,
    ):
        assert resp.status == 200
        chat_id = (await resp.json())["id"]
    assert isinstance(chat_id, str)
    return chat_id


async def ask(ws: ClientConnection, message: str, **fields: Any) -> list[dict[str, Any]]:
    await ws.send(json.dumps({"action": "send_message", "message": message, **fields}))
    return await until(ws, "message")


# ------------------------------------------------------------------ scripts (pure)


def test_split_pieces_rejoins_exactly() -> None:
    """An answer's text_delta pieces join back into the exact final text."""
    text = "There were 1,232 orders placed last month, East leading."
    pieces = split_pieces(text)
    assert len(pieces) == 3
    assert "".join(pieces) == text
    assert split_pieces("ok") == ["ok"]
    assert "".join(split_pieces("a b")) == "a b"
    assert split_pieces("") == []


def test_answer_script_shape() -> None:
    """answer() scripts statuses, visualizations, deltas, then the final message."""
    steps = answer("a b c d e f", visualizations=[{"type": "table", "headers": [], "rows": []}])
    events = [s.event for s in steps]
    assert events[:3] == ["processing", "processing", "visualization"]
    assert events[-1] == "message"
    assert "text_delta" in events
    assert len(str(steps[2].data["id"])) == 10
    assert "text_delta" not in [s.event for s in answer("x", deltas=False)]


# ------------------------------------------------------------------ authentication


@pytest.mark.parametrize("version", ["seed", "current"])
async def test_first_frame_authentication(version: Version) -> None:
    """Both versions accept an authenticate first frame and answer authenticated."""
    async with FakeTrellis(version=version) as trellis:
        ws = await login(trellis)
        await ws.close()
        assert trellis.authenticated_connections == 1


async def test_bearer_header_authenticates_at_once(current: FakeTrellis) -> None:
    """v-current accepts an Authorization: Bearer header and says authenticated unasked."""
    headers = {"Authorization": f"Bearer {current.make_token()}"}
    async with connect(current.ws_url, additional_headers=headers) as ws:
        assert (await recv(ws))["event"] == "authenticated"


async def test_query_token_forbidden_in_current(current: FakeTrellis) -> None:
    """v-current answers a ?token= upgrade with HTTP 403."""
    with pytest.raises(InvalidStatus) as info:
        await connect(f"{current.ws_url}?token={current.make_token()}")
    assert info.value.response.status_code == 403
    assert current.accepted_connections == 0


async def test_query_token_accepted_in_seed(seed: FakeTrellis) -> None:
    """The seed server authenticates a ?token= connection on connect."""
    async with connect(f"{seed.ws_url}?token={seed.make_token()}") as ws:
        assert (await recv(ws))["event"] == "authenticated"


@pytest.mark.parametrize(
    "frame",
    [
        {"action": "authenticate", "token": "not-a-jwt"},
        {"action": "authenticate", "token": "EXPIRED"},
        {"action": "ping"},
    ],
    ids=["garbage-token", "expired-token", "action-before-auth"],
)
async def test_bad_authentication_closes_4001(current: FakeTrellis, frame: dict[str, Any]) -> None:
    """A bad or expired token, or any action before authenticating, closes with 4001."""
    if frame.get("token") == "EXPIRED":
        frame = {**frame, "token": current.make_token(exp=time.time() - 60)}
    async with connect(current.ws_url) as ws:
        await ws.send(json.dumps(frame))
        assert await close_code(ws) == 4001
    assert current.auth_failures == 1


async def test_bad_bearer_header_closes_4001(current: FakeTrellis) -> None:
    """An invalid Authorization header closes the socket with 4001."""
    async with connect(current.ws_url, additional_headers={"Authorization": "Bearer x"}) as ws:
        assert await close_code(ws) == 4001


async def test_garbage_frame_closes_4002(seed: FakeTrellis) -> None:
    """A frame that is not a JSON object closes the socket with 4002, and is recorded raw."""
    ws = await login(seed)
    await ws.send("this is not json")
    assert await close_code(ws) == 4002
    assert seed.received[-1].frame == "this is not json"


async def test_unknown_action_is_an_error_event(current: FakeTrellis) -> None:
    """An unknown action gets an error event with code, retryable and debug_id; no close."""
    ws = await login(current)
    await ws.send(json.dumps({"action": "dance"}))
    error = await recv(ws)
    assert error["event"] == "error"
    assert error["data"]["code"] == "UNKNOWN_ACTION"
    assert error["data"]["retryable"] is False
    assert error["data"]["debug_id"]
    await ws.send(json.dumps({"action": "ping"}))
    assert await recv(ws) == {"event": "pong", "data": {}}
    await ws.close()


# ------------------------------------------------------------------ turns


async def test_full_turn_current(current: FakeTrellis) -> None:
    """v-current streams metadata, statuses, deltas summing to the text, then the message."""
    questions: list[Question] = []

    def responder(question: Question) -> list[Step]:
        questions.append(question)
        return answer("There were 1,232 orders last month.", visualizations=[])

    current.responder = responder
    chat_id = await new_chat(current, integration_id="int-1")
    ws = await login(current)
    events = await ask(ws, "How many orders?", chat_id=chat_id, model="claude-opus-4-6")
    await ws.close()
    names = [e["event"] for e in events]
    assert names[:3] == ["chat_metadata", "processing", "processing"]
    deltas = [e["data"]["content"] for e in events if e["event"] == "text_delta"]
    assert len(deltas) == 3
    assert "".join(deltas) == events[-1]["data"]["content"]
    user_id = events[0]["data"]["user_message_id"]
    assert events[0]["data"]["id"] == chat_id
    assert questions == [
        Question(
            text="How many orders?",
            chat_id=chat_id,
            integration_id="int-1",
            model="claude-opus-4-6",
            is_edit=False,
            token_sub="user-1",
            user_message_id=user_id,
        )
    ]
    messages = current.chats[chat_id].messages
    assert [(m.id, m.role) for m in messages] == [
        (user_id, "user"),
        (events[-1]["data"]["id"], "assistant"),
    ]


async def test_full_turn_seed_sends_no_text_delta(seed: FakeTrellis) -> None:
    """The seed server creates a chat without chat_id and never sends text_delta."""
    seed.responder = lambda q: [*answer("Here you go."), Step.delta("late"), Step.chart("bar")]
    ws = await login(seed)
    events = await ask(ws, "Sales by region", title="Sales")
    chat_id = events[0]["data"]["id"]
    assert [e["event"] for e in events] == [
        "chat_metadata",
        "processing",
        "processing",
        "message",
    ]
    assert seed.chats[chat_id].title == "Sales"
    assert (await recv(ws))["event"] == "visualization"  # steps after the message still play
    follow_up = await ask(ws, "As a chart", chat_id=chat_id)
    assert follow_up[0]["data"]["id"] == chat_id
    await ws.close()
    assert len(seed.chats[chat_id].messages) == 4


async def test_seed_errors_carry_only_error(seed: FakeTrellis) -> None:
    """Seed error events (server or scripted) carry nothing but the error text."""
    seed.responder = lambda q: [Step.error("No datasource connected", code="NO_DATASOURCE")]
    ws = await login(seed)
    await ws.send(json.dumps({"action": "interrupt"}))
    assert (await recv(ws))["data"].keys() == {"error"}
    events = await ask_error(ws, "q")
    assert events[-1]["data"] == {"error": "No datasource connected"}
    await ws.close()


async def ask_error(ws: ClientConnection, message: str, **fields: Any) -> list[dict[str, Any]]:
    await ws.send(json.dumps({"action": "send_message", "message": message, **fields}))
    return await until(ws, "error")


async def test_current_requires_an_existing_chat(current: FakeTrellis) -> None:
    """v-current refuses send_message without chat_id, or with another member's chat."""
    ws = await login(current)
    error = (await ask_error(ws, "hello"))[-1]["data"]
    assert error["code"] == "CHAT_ID_REQUIRED"
    assert "chat_id" in error["error"]
    other = await new_chat(current, sub="someone-else")
    assert (await ask_error(ws, "hi", chat_id=other))[-1]["data"]["code"] == "CHAT_NOT_FOUND"
    await ws.close()
    assert current.chats[other].messages == []


async def test_require_integration(current: FakeTrellis) -> None:
    """With require_integration, a turn without a datasource fails; the chat's own one counts."""
    current.require_integration = True
    ws = await login(current)
    bare = await new_chat(current)
    error = (await ask_error(ws, "q", chat_id=bare))[-1]["data"]
    assert (error["error"], error["code"]) == ("No datasource connected", "NO_DATASOURCE")
    assert (await ask(ws, "q", chat_id=bare, integration_id="int-1"))[-1]["event"] == "message"
    bound = await new_chat(current, integration_id="int-2")
    assert (await ask(ws, "q", chat_id=bound))[-1]["event"] == "message"
    await ws.close()


async def test_scripted_error_filled_in_current(current: FakeTrellis) -> None:
    """A scripted v-current error gets code, retryable and debug_id, and ends the turn."""
    current.responder = lambda q: [Step.processing(), Step.error("boom", retryable=True)]
    ws = await login(current)
    events = await ask_error(ws, "q", chat_id=await new_chat(current))
    data = events[-1]["data"]
    assert (data["error"], data["code"], data["retryable"]) == ("boom", "AGENT_ERROR", True)
    assert data["debug_id"]
    assert (await ask_error(ws, "again"))[-1]["data"]["code"] == "CHAT_ID_REQUIRED"  # not BUSY
    await ws.close()


async def test_busy_while_streaming(current: FakeTrellis) -> None:
    """A second send_message while a response streams gets error BUSY; the first completes."""
    gate = asyncio.Event()
    current.responder = lambda q: [Step.pause(gate), Step.message("done")]
    chat_id = await new_chat(current)
    ws = await login(current)
    await ws.send(json.dumps({"action": "send_message", "message": "1", "chat_id": chat_id}))
    assert (await recv(ws))["event"] == "chat_metadata"
    error = (await ask_error(ws, "2", chat_id=chat_id))[-1]["data"]
    assert (error["code"], error["retryable"]) == ("BUSY", True)
    gate.set()
    assert (await recv(ws))["data"]["content"] == "done"
    await ws.close()


async def test_edit_gives_new_id_and_drops_later_messages(current: FakeTrellis) -> None:
    """Editing a user message gives it a new id, drops what followed and re-answers."""
    questions: list[Question] = []

    def responder(question: Question) -> list[Step]:
        questions.append(question)
        return [Step.message(f"answer to {question.text}")]

    current.responder = responder
    chat_id = await new_chat(current)
    ws = await login(current)
    first = await ask(ws, "one", chat_id=chat_id)
    await ask(ws, "two", chat_id=chat_id)
    old_id = first[0]["data"]["user_message_id"]
    await ws.send(json.dumps({"action": "edit_message", "message_id": old_id, "content": "uno"}))
    events = await until(ws, "message")
    new_id = events[0]["data"]["user_message_id"]
    assert events[0] == {
        "event": "chat_metadata",
        "data": {"id": chat_id, "user_message_id": new_id},
    }
    assert new_id != old_id
    assert questions[-1].is_edit
    assert questions[-1].text == "uno"
    assert [(m.role, m.content) for m in current.chats[chat_id].messages] == [
        ("user", "uno"),
        ("assistant", "answer to uno"),
    ]
    for message_id, code in [
        (old_id, "MESSAGE_NOT_FOUND"),
        (events[-1]["data"]["id"], "NOT_USER_MESSAGE"),
    ]:
        await ws.send(
            json.dumps({"action": "edit_message", "message_id": message_id, "content": "x"})
        )
        assert (await recv(ws))["data"]["code"] == code
    await ws.close()


async def test_delete_removes_message_and_later(seed: FakeTrellis) -> None:
    """delete_message removes the message and all after it and answers deleted."""
    ws = await login(seed)
    first = await ask(ws, "one")
    chat_id = first[0]["data"]["id"]
    second = await ask(ws, "two", chat_id=chat_id)
    target = second[0]["data"]["user_message_id"]
    await ws.send(json.dumps({"action": "delete_message", "message_id": target}))
    assert await recv(ws) == {"event": "deleted", "data": {"message_id": target}}
    assert [m.content for m in seed.chats[chat_id].messages] == ["one", "You asked: one"]
    await ws.send(json.dumps({"action": "delete_message", "message_id": target}))
    assert (await recv(ws))["event"] == "error"
    await ws.close()


async def test_interrupt_mid_stream_and_idle(current: FakeTrellis) -> None:
    """interrupt cancels a streaming turn (interrupted, nothing after); idle gives an error."""
    gate = asyncio.Event()
    current.responder = lambda q: [Step.processing(), Step.pause(gate), Step.message("never")]
    chat_id = await new_chat(current)
    ws = await login(current)
    await ws.send(json.dumps({"action": "send_message", "message": "q", "chat_id": chat_id}))
    assert [e["event"] for e in await until(ws, "processing")] == ["chat_metadata", "processing"]
    await ws.send(json.dumps({"action": "ping"}))
    assert (await recv(ws))["event"] == "pong"  # ping works mid-turn
    await ws.send(json.dumps({"action": "interrupt"}))
    assert await recv(ws) == {"event": "interrupted", "data": {"status": "interrupted"}}
    gate.set()
    await ws.send(json.dumps({"action": "interrupt"}))
    assert (await recv(ws))["data"]["code"] == "NOT_STREAMING"
    await ws.close()
    assert [m.role for m in current.chats[chat_id].messages] == ["user"]


async def test_heartbeat_while_streaming() -> None:
    """v-current with ?heartbeat=1 sends heartbeat events while a turn streams."""
    gate = asyncio.Event()
    async with FakeTrellis(heartbeat_interval=0.01) as trellis:
        trellis.responder = lambda q: [Step.pause(gate), Step.message("ok")]
        ws = await login(trellis, query="?heartbeat=1")
        await ws.send(
            json.dumps(
                {"action": "send_message", "message": "q", "chat_id": await new_chat(trellis)}
            )
        )
        assert [e["event"] for e in await until(ws, "heartbeat")] == ["chat_metadata", "heartbeat"]
        gate.set()
        await until(ws, "message")
        await ws.close()


async def test_tool_events_only_when_asked(current: FakeTrellis) -> None:
    """tool_* events are sent only when the action set include_tool_events."""
    current.responder = lambda q: [Step("tool_call", {"name": "sql"}), Step.message("ok")]
    chat_id = await new_chat(current)
    ws = await login(current)
    assert [e["event"] for e in await ask(ws, "q", chat_id=chat_id)] == ["chat_metadata", "message"]
    events = await ask(ws, "q", chat_id=chat_id, include_tool_events=True)
    assert [e["event"] for e in events] == ["chat_metadata", "tool_call", "message"]
    await ws.close()


# ------------------------------------------------------------------ limits and faults


async def test_fourth_socket_per_token_closed_4429(current: FakeTrellis) -> None:
    """A 4th socket for one token gets an error WS_CONNECTION_CAP, then close 4429."""
    token = current.make_token()
    headers = {"Authorization": f"Bearer {token}"}
    sockets = [await connect(current.ws_url, additional_headers=headers) for _ in range(3)]
    for ws in sockets:
        assert (await recv(ws))["event"] == "authenticated"
    async with connect(current.ws_url, additional_headers=headers) as fourth:
        assert (await recv(fourth))["data"]["code"] == "WS_CONNECTION_CAP"
        assert await close_code(fourth) == 4429
    await sockets[0].close()
    await current.wait_until(lambda: current.open_connections == 2)
    async with connect(current.ws_url, additional_headers=headers) as again:
        assert (await recv(again))["event"] == "authenticated"
    for ws in sockets[1:]:
        await ws.close()
    assert current.peak_connections == 4


async def test_enforced_rate_limit(current: FakeTrellis) -> None:
    """With limits enforced, a 4th send_message within 10 s gets RATE_LIMIT with retry_after."""
    current.enforce_rate_limits = True
    chat_id = await new_chat(current)
    ws = await login(current)
    for _ in range(3):
        await ask(ws, "q", chat_id=chat_id)
    error = (await ask_error(ws, "q", chat_id=chat_id))[-1]["data"]
    assert (error["code"], error["retryable"]) == ("RATE_LIMIT", True)
    assert 0 < error["retry_after_seconds"] <= 10
    await ws.close()


async def test_rate_limit_next(current: FakeTrellis) -> None:
    """rate_limit_next refuses exactly the next n send_message with the given retry_after."""
    current.rate_limit_next(1, retry_after=2.5)
    chat_id = await new_chat(current)
    ws = await login(current)
    error = (await ask_error(ws, "q", chat_id=chat_id))[-1]["data"]
    assert (error["code"], error["retry_after_seconds"]) == ("RATE_LIMIT", 2.5)
    assert (await ask(ws, "q", chat_id=chat_id))[-1]["event"] == "message"
    await ws.close()


async def test_reject_next_connections(seed: FakeTrellis) -> None:
    """reject_next_connections accepts the upgrade and closes with the code, n times only."""
    seed.reject_next_connections(2, code=1011, reason="overloaded")
    for _ in range(2):
        async with connect(seed.ws_url) as ws:
            assert await close_code(ws) == 1011
    ws = await login(seed)
    await ws.close()
    assert seed.accepted_connections == 3


async def test_rejected_with_4429_gets_the_cap_error_first(current: FakeTrellis) -> None:
    """A v-current connection rejected with 4429 first gets its WS_CONNECTION_CAP error frame."""
    current.reject_next_connections(1, code=4429)
    async with connect(current.ws_url) as ws:
        assert (await recv(ws))["data"]["code"] == "WS_CONNECTION_CAP"
        assert await close_code(ws) == 4429


async def test_drop_mid_turn(current: FakeTrellis) -> None:
    """Step.drop() cuts the TCP connection mid-turn without a close frame."""
    current.responder = lambda q: [Step.processing(), Step.drop()]
    ws = await login(current)
    await ws.send(json.dumps({"action": "send_message", "message": "q", "chat_id": "x"}))
    await recv(ws)  # CHAT_NOT_FOUND: no turn
    await ws.send(
        json.dumps({"action": "send_message", "message": "q", "chat_id": await new_chat(current)})
    )
    await until(ws, "processing")
    assert await close_code(ws) is None
    await current.wait_until(lambda: current.open_connections == 0)


async def test_garbage_before_metadata_and_raw_steps(current: FakeTrellis) -> None:
    """Injected frames precede chat_metadata; Step.raw sends its text as it is."""
    current.inject_before_next_turn(["{not json", '{"event": "mystery", "data": {}}'])
    current.responder = lambda q: [Step.raw("garbage"), Step.message("ok")]
    ws = await login(current)
    await ws.send(
        json.dumps({"action": "send_message", "message": "q", "chat_id": await new_chat(current)})
    )
    async with asyncio.timeout(TIMEOUT):
        frames = [await ws.recv() for _ in range(5)]
    assert frames[0] == "{not json"
    assert json.loads(frames[1])["event"] == "mystery"
    assert json.loads(frames[2])["event"] == "chat_metadata"
    assert frames[3] == "garbage"
    assert json.loads(frames[4])["event"] == "message"
    await ws.close()


async def test_responder_failure_closes_1011(current: FakeTrellis) -> None:
    """A responder that raises makes the server close the socket with 1011."""

    def broken(question: Question) -> list[Step]:
        raise ValueError(question.text)

    current.responder = broken
    ws = await login(current)
    await ws.send(
        json.dumps({"action": "send_message", "message": "q", "chat_id": await new_chat(current)})
    )
    assert await close_code(ws) == 1011


async def test_wait_for_action_returns_the_nth(seed: FakeTrellis) -> None:
    """wait_for_action waits for the count-th frame with that action and returns it."""
    ws = await login(seed)
    waiter = asyncio.create_task(seed.wait_for_action("ping", count=2))
    for n in range(2):
        await ws.send(json.dumps({"action": "ping", "n": n}))
    async with asyncio.timeout(TIMEOUT):
        received = await waiter
    assert received.frame == {"action": "ping", "n": 1}
    assert received.token_sub == "user-1"
    await ws.close()


async def test_stop_closes_sockets_and_cancels_turns() -> None:
    """stop() closes open sockets with 1001 and cancels a held turn cleanly."""
    trellis = FakeTrellis()
    await trellis.start()
    trellis.responder = lambda q: [Step.pause(asyncio.Event())]
    ws = await login(trellis)
    await ws.send(
        json.dumps({"action": "send_message", "message": "q", "chat_id": await new_chat(trellis)})
    )
    await recv(ws)
    await trellis.stop()
    assert await close_code(ws) == 1001
    assert trellis.open_connections == 0


# ------------------------------------------------------------------ REST


async def test_rest_endpoints(current: FakeTrellis) -> None:
    """REST: API-key login mints a working JWT; chats, models and integrations answer."""
    url = current.api_url
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{url}/v1/authenticate", json={"email": "a@b.co"}, headers={"X-API-Key": "nope"}
        ) as resp:
            assert resp.status == 401
            assert "detail" in await resp.json()
        async with http.post(
            f"{url}/v1/authenticate",
            json={"email": "a@b.co"},
            headers={"X-API-Key": "test-api-key"},
        ) as resp:
            login_body = await resp.json()
        assert login_body.keys() == {"token", "member_id", "organization_id", "expires_at"}
        assert login_body["member_id"].startswith("mem_")
        auth = {"Authorization": f"Bearer {login_body['token']}"}
        async with http.get(f"{url}/v1/models", headers=auth) as resp:
            models = await resp.json()
        assert models["default"] == models["models"][0]["model_id"]
        async with http.get(f"{url}/v1/integrations", headers=auth) as resp:
            integration = (await resp.json())["integrations"][0]
        assert integration.keys() == {"id", "display_name", "type"}
        async with http.post(f"{url}/v1/chats/create", json={"title": "T"}, headers=auth) as resp:
            chat = await resp.json()
        assert chat["id"].startswith("chat_")
        assert chat["title"] == "T"
        async with http.get(f"{url}/v1/chats/{chat['id']}", headers=auth) as resp:
            assert (await resp.json())["messages"] == []
        for path in ("/v1/models", "/v1/integrations", f"/v1/chats/{chat['id']}"):
            async with http.get(f"{url}{path}", headers={"Authorization": "Bearer x"}) as resp:
                assert resp.status == 401
                assert "detail" in await resp.json()
    ws = await connect(current.ws_url)
    await ws.send(json.dumps({"action": "authenticate", "token": login_body["token"]}))
    assert (await recv(ws))["event"] == "authenticated"
    events = await ask(ws, "hi", chat_id=chat["id"])
    assert events[-1]["data"]["content"] == "You asked: hi"
    await ws.close()


async def test_rest_fault_injection(current: FakeTrellis) -> None:
    """fail_next_rest answers the next request 429 with Retry-After, then serves normally."""
    current.fail_next_rest(1, retry_after=3)
    auth = {"Authorization": f"Bearer {current.make_token()}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{current.api_url}/v1/models", headers=auth) as resp:
            assert (resp.status, resp.headers["Retry-After"]) == (429, "3")
        async with http.get(f"{current.api_url}/v1/models", headers=auth) as resp:
            assert resp.status == 200


async def test_seed_has_no_rest(seed: FakeTrellis) -> None:
    """In seed mode every REST path answers 404 with a detail."""
    async with aiohttp.ClientSession() as http:
        for method, path in [("POST", "/v1/authenticate"), ("GET", "/v1/models")]:
            async with http.request(method, f"{seed.api_url}{path}") as resp:
                assert resp.status == 404
                assert "detail" in await resp.json()


@pytest.mark.parametrize("version", ["seed", "current"])
@pytest.mark.parametrize("content", ["missing", "null"])
async def test_malformed_final_message_ends_the_turn(version: Version, content: str) -> None:
    """Step.malformed_message sends a final message without content (or null), and the turn is over."""
    async with FakeTrellis(version=version) as trellis:
        trellis.responder = lambda q: [
            Step.processing(),
            Step.malformed_message(content="null" if content == "null" else "missing"),
        ]
        ws = await login(trellis)
        chat = {"chat_id": await new_chat(trellis)} if version == "current" else {}
        events = await ask(ws, "first", **chat)
        final = events[-1]["data"]
        assert isinstance(final.get("id"), str)
        assert final.get("content", "absent") == (None if content == "null" else "absent")
        chat_id = events[0]["data"]["id"]
        # The socket takes the next question at once (the turn ended; no BUSY).
        trellis.responder = lambda q: answer("second answer")
        again = await ask(ws, "second", chat_id=chat_id)
        assert again[-1]["data"]["content"] == "second answer"
        await ws.close()
        assert [m.content for m in trellis.chats[chat_id].messages] == [
            "first",
            "",
            "second",
            "second answer",
        ]


# ------------------------------------------------------------------ REST feedback


async def rate(
    trellis: FakeTrellis, message_id: str, body: Any, *, sub: str = "user-1"
) -> tuple[int, dict[str, Any]]:
    """PATCH the feedback of ``message_id`` as ``sub``; the status and the JSON answer."""
    headers = {"Authorization": f"Bearer {trellis.make_token(sub)}"}
    url = f"{trellis.api_url}/v1/chats/messages/{message_id}/feedback"
    async with aiohttp.ClientSession() as http, http.patch(url, json=body, headers=headers) as resp:
        answer_body = await resp.json()
        assert isinstance(answer_body, dict)
        return resp.status, answer_body


async def answered_chat(trellis: FakeTrellis) -> tuple[str, str, str]:
    """A chat of ``user-1`` with one question and its answer: (chat, user message, answer) ids."""
    chat_id = await new_chat(trellis)
    ws = await login(trellis)
    events = await ask(ws, "how many orders?", chat_id=chat_id)
    await ws.close()
    return chat_id, events[0]["data"]["user_message_id"], events[-1]["data"]["id"]


async def test_feedback_rates_an_assistant_message(current: FakeTrellis) -> None:
    """Feedback on the caller's answer is kept, answered with its metadata and shown by GET."""
    chat_id, _, answer_id = await answered_chat(current)
    assert await rate(current, answer_id, {"feedback": "negative", "note": "wrong month"}) == (
        200,
        {"id": answer_id, "metadata": {"feedback": "negative", "note": "wrong month"}},
    )
    assert current.feedback_on(answer_id) == {"feedback": "negative", "note": "wrong month"}
    status, _ = await rate(current, answer_id, {"feedback": "positive"})
    assert status == 200
    assert current.feedback_on(answer_id) == {"feedback": "positive"}
    auth = {"Authorization": f"Bearer {current.make_token()}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{current.api_url}/v1/chats/{chat_id}", headers=auth) as resp,
    ):
        messages = (await resp.json())["messages"]
    assert messages[1]["metadata"] == {"feedback": "positive"}
    assert "metadata" not in messages[0]
    assert [r[1] for r in current.feedback_requests] == [answer_id, answer_id]


@pytest.mark.parametrize(
    "body", [{"feedback": "meh"}, {}, {"feedback": "positive", "note": 3}, {"feedback": None}]
)
async def test_feedback_refuses_a_bad_rating(current: FakeTrellis, body: dict[str, Any]) -> None:
    """A rating other than positive/negative, or a note that is not text, is a 400."""
    _, _, answer_id = await answered_chat(current)
    status, answer_body = await rate(current, answer_id, body)
    assert (status, answer_body.get("code")) == (400, "INVALID_FEEDBACK")
    assert current.feedback_on(answer_id) is None


async def test_feedback_only_on_own_assistant_messages(current: FakeTrellis) -> None:
    """Unknown or another member's message is a 404; a user message is a 400; no token a 401."""
    _, question_id, answer_id = await answered_chat(current)
    good = {"feedback": "positive"}
    status, answer_body = await rate(current, "msg_nope", good)
    assert (status, answer_body["code"]) == (404, "MESSAGE_NOT_FOUND")
    status, answer_body = await rate(current, answer_id, good, sub="someone-else")
    assert (status, answer_body["code"]) == (404, "MESSAGE_NOT_FOUND")
    status, answer_body = await rate(current, question_id, good)
    assert (status, answer_body["code"]) == (400, "NOT_ASSISTANT_MESSAGE")
    url = f"{current.api_url}/v1/chats/messages/{answer_id}/feedback"
    async with aiohttp.ClientSession() as http, http.patch(url, json=good) as resp:
        assert resp.status == 401
    assert current.feedback_on(answer_id) is None


async def test_seed_has_no_feedback_endpoint(seed: FakeTrellis) -> None:
    """The seed protocol has no feedback: the PATCH answers 404 even for a real answer."""
    ws = await login(seed)
    events = await ask(ws, "hi")
    await ws.close()
    status, answer_body = await rate(seed, events[-1]["data"]["id"], {"feedback": "positive"})
    assert status == 404
    assert "detail" in answer_body
    assert seed.feedback_requests == []


async def test_send_message_refuses_upload_ids_that_are_not_in_its_chat(
    current: FakeTrellis,
) -> None:
    """upload_ids must name uploads made into that very chat."""
    ws = await login(current)
    chat_id = await new_chat(current)
    error = (await ask_error(ws, "q", chat_id=chat_id, upload_ids=["upl_nope"]))[-1]["data"]
    assert error["code"] == "UPLOAD_NOT_FOUND"
