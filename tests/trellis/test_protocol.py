"""Tests for trellis_slack.trellis.protocol: frames to events and actions to frames, with no I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trellis_slack.errors import TrellisProtocolError
from trellis_slack.trellis.protocol import (
    Authenticated,
    ChatMetadata,
    Deleted,
    ErrorEvent,
    Heartbeat,
    Interrupted,
    MalformedFinal,
    Message,
    Pong,
    Processing,
    TextDelta,
    ToolEvent,
    Unknown,
    Visualization,
    authenticate,
    delete_message,
    edit_message,
    interrupt,
    parse_frame,
    ping,
    send_message,
)


def frame(event: str, data: Any = None) -> str:
    body: dict[str, Any] = {"event": event}
    if data is not None:
        body["data"] = data
    return json.dumps(body)


def test_contract_stream_parses_to_typed_events() -> None:
    """The example response stream from the contract becomes the expected typed events."""
    chart = {
        "id": "ab12xy3456",
        "type": "chart",
        "chart_type": "bar",
        "title": "Orders by Region",
        "data": {"values": [{"label": "North", "value": 412}], "x_axis_label": "Region"},
    }
    frames = [
        frame("authenticated", {"status": "ok"}),
        frame("chat_metadata", {"id": "chat_abc123", "user_message_id": "msg_001"}),
        frame("processing", {"status": "thinking"}),
        frame("visualization", chart),
        frame("message", {"content": "There were 1,232 orders.", "id": "msg_xyz"}),
    ]
    assert [parse_frame(f) for f in frames] == [
        Authenticated(),
        ChatMetadata("chat_abc123", "msg_001"),
        Processing("thinking"),
        Visualization("ab12xy3456", "chart", chart),
        Message("There were 1,232 orders.", "msg_xyz"),
    ]


def test_current_only_events_parse() -> None:
    """v-current's text_delta, heartbeat and tool events are understood."""
    assert parse_frame(frame("text_delta", {"content": "Hel"})) == TextDelta("Hel")
    assert parse_frame(frame("heartbeat", {})) == Heartbeat()
    assert parse_frame(frame("tool_call", {"name": "sql"})) == ToolEvent(
        "tool_call", {"name": "sql"}
    )


def test_small_events_parse() -> None:
    """Interrupted, deleted and pong (with or without data) parse."""
    assert parse_frame(frame("interrupted", {"status": "interrupted"})) == Interrupted()
    assert parse_frame(frame("deleted", {"message_id": "msg_9"})) == Deleted("msg_9")
    assert parse_frame(frame("pong")) == Pong()
    assert parse_frame(b'{"event": "pong", "data": {}}') == Pong()


def test_unknown_event_is_not_an_error() -> None:
    """An event name the client does not know is returned as Unknown, not rejected."""
    assert parse_frame(frame("future_thing", {"x": 1})) == Unknown("future_thing")


def test_seed_error_has_only_a_message() -> None:
    """A v-seed error carries just its human text."""
    assert parse_frame(frame("error", {"error": "No datasource connected"})) == ErrorEvent(
        "No datasource connected"
    )


def test_current_error_carries_code_and_retry_after() -> None:
    """A v-current error keeps code, retryable, debug id, type and retry_after_seconds."""
    event = parse_frame(
        frame(
            "error",
            {
                "error": "Slow down",
                "code": "RATE_LIMIT",
                "retryable": True,
                "debug_id": "dbg_1",
                "error_type": "rate_limit",
                "retry_after_seconds": 2.5,
            },
        )
    )
    assert event == ErrorEvent("Slow down", "RATE_LIMIT", True, "dbg_1", "rate_limit", 2.5)


def test_odd_error_still_becomes_an_error_event() -> None:
    """An error without text or with a nested object still ends the turn as an ErrorEvent."""
    assert parse_frame(frame("error", {})) == ErrorEvent("Trellis reported an error")
    nested = parse_frame(frame("error", {"error": {"message": "boom", "code": "X"}}))
    assert nested == ErrorEvent("boom", code="X")
    bad_retry = parse_frame(frame("error", {"error": "e", "retry_after_seconds": "soon"}))
    assert isinstance(bad_retry, ErrorEvent)
    assert bad_retry.retry_after is None


def test_processing_accepts_any_status_word() -> None:
    """Any processing status string is kept; a missing one reads as 'processing'."""
    assert parse_frame(frame("processing", {"status": "pondering"})) == Processing("pondering")
    assert parse_frame(frame("processing", {})) == Processing("processing")


def test_visualization_without_type_is_kept_as_unknown_kind() -> None:
    """A visualization lacking its type is still passed on for the renderer to judge."""
    event = parse_frame(frame("visualization", {"id": "kl78mn9012", "rows": []}))
    assert event == Visualization("kl78mn9012", "unknown", {"id": "kl78mn9012", "rows": []})


def test_message_without_id_is_accepted() -> None:
    """A final message without an id still carries its content."""
    assert parse_frame(frame("message", {"content": "hi"})) == Message("hi", None)


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        b"\xff\xfe",
        "[1, 2]",
        '{"data": {}}',
        '{"event": 3}',
        '{"event": "processing", "data": "text"}',
        frame("chat_metadata", {"user_message_id": "m"}),
        frame("text_delta", {"content": 5}),
        frame("deleted", {}),
        frame("visualization", {"type": "chart"}),
    ],
)
def test_bad_frames_raise_protocol_error(raw: str | bytes) -> None:
    """Garbage or a frame missing required fields raises TrellisProtocolError."""
    with pytest.raises(TrellisProtocolError):
        parse_frame(raw)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (frame("message", {"id": "m"}), "message"),
        (frame("message", {"id": "m", "content": None}), "message"),
        (frame("message", {"content": ["a", "list"]}), "message"),
        ('{"event": "message", "data": "text"}', "message"),
        ('{"event": "message"}', "message"),
        ('{"event": "error", "data": ["boom"]}', "error"),
    ],
)
def test_malformed_final_frames_become_malformed_final(raw: str, name: str) -> None:
    """A `message` without text content, or a final frame whose data is no object, still ends the turn."""
    event = parse_frame(raw)
    assert isinstance(event, MalformedFinal)
    assert event.name == name
    assert event.problem


def test_malformed_final_does_not_quote_the_frame() -> None:
    """What a malformed final says is wrong never repeats the frame's content."""
    event = parse_frame(frame("message", {"id": "secret-looking-id", "content": None}))
    assert isinstance(event, MalformedFinal)
    assert "secret" not in event.problem


def test_protocol_error_does_not_quote_the_frame() -> None:
    """The error message about a bad frame never repeats its content."""
    with pytest.raises(TrellisProtocolError) as info:
        parse_frame("secret-looking garbage")
    assert "secret" not in str(info.value)


def test_actions_are_json_with_none_fields_omitted() -> None:
    """Action builders produce the documented JSON and leave out fields that are None."""
    assert json.loads(authenticate("tok")) == {"action": "authenticate", "token": "tok"}
    assert json.loads(send_message("How many?")) == {
        "action": "send_message",
        "message": "How many?",
    }
    assert json.loads(send_message("Q", chat_id="c", integration_id="i", model="m", title="t")) == {
        "action": "send_message",
        "message": "Q",
        "chat_id": "c",
        "integration_id": "i",
        "model": "m",
        "title": "t",
    }
    assert json.loads(edit_message("msg_1", "new", integration_id="i")) == {
        "action": "edit_message",
        "message_id": "msg_1",
        "content": "new",
        "integration_id": "i",
    }
    assert json.loads(delete_message("msg_2")) == {
        "action": "delete_message",
        "message_id": "msg_2",
    }
    assert json.loads(interrupt()) == {"action": "interrupt"}
    assert json.loads(ping()) == {"action": "ping"}
