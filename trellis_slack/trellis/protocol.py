"""Trellis chat frames both ways: JSON text to typed events, typed actions to JSON text."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trellis_slack.errors import TrellisProtocolError

__all__ = [
    "Authenticated",
    "ChatMetadata",
    "Deleted",
    "ErrorEvent",
    "Heartbeat",
    "Interrupted",
    "MalformedFinal",
    "Message",
    "Pong",
    "Processing",
    "TextDelta",
    "ToolEvent",
    "TrellisEvent",
    "Unknown",
    "Visualization",
    "authenticate",
    "delete_message",
    "edit_message",
    "interrupt",
    "parse_frame",
    "ping",
    "send_message",
]

#: Events that only arrive when ``include_tool_events`` was asked for.
TOOL_EVENTS = frozenset({"tool_call", "tool_result", "tool_message"})
#: Events that end a turn whatever else they hold: one of them is never dropped as a bad frame.
FINAL_EVENTS = frozenset({"message", "error"})


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The socket is authenticated; actions may follow."""


@dataclass(frozen=True, slots=True)
class ChatMetadata:
    """Starts every response: the chat it belongs to and the persisted id of the user message."""

    chat_id: str
    user_message_id: str | None


@dataclass(frozen=True, slots=True)
class Processing:
    """Trellis is working (``starting``, ``thinking``, ``analyzing``, or any other status word)."""

    status: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    """The next piece of the final answer (v-current only); not the whole text so far."""

    content: str


@dataclass(frozen=True, slots=True)
class Visualization:
    """A chart or table; ``payload`` is the whole event data, left for the renderers to validate."""

    viz_id: str
    kind: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    """The final answer in Markdown; authoritative over any deltas."""

    content: str
    message_id: str | None


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The streaming answer was cancelled by an ``interrupt`` action."""


@dataclass(frozen=True, slots=True)
class Deleted:
    """A ``delete_message`` succeeded."""

    message_id: str


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """Trellis reported an error; v-current adds a stable ``code`` and more."""

    message: str
    code: str | None = None
    retryable: bool | None = None
    debug_id: str | None = None
    error_type: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class MalformedFinal:
    """A ``message`` or ``error`` too malformed to read (no text ``content``, say): it still ends the turn.

    ``problem`` says what was wrong, in words that never quote the frame.
    """

    name: str
    problem: str


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to a ``ping`` action."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A keep-alive sent while a turn streams (v-current, opt-in)."""


@dataclass(frozen=True, slots=True)
class ToolEvent:
    """An internal tool event (``tool_call``, ``tool_result``, ``tool_message``)."""

    name: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Unknown:
    """An event this client does not know; ignored by design."""

    name: str


TrellisEvent = (
    Authenticated
    | ChatMetadata
    | Processing
    | TextDelta
    | Visualization
    | Message
    | Interrupted
    | Deleted
    | ErrorEvent
    | MalformedFinal
    | Pong
    | Heartbeat
    | ToolEvent
    | Unknown
)


_BARE_EVENTS: Mapping[str, TrellisEvent] = {
    "authenticated": Authenticated(),
    "interrupted": Interrupted(),
    "pong": Pong(),
    "heartbeat": Heartbeat(),
}


def parse_frame(raw: str | bytes) -> TrellisEvent:
    """Parse one frame from Trellis.

    Raises :class:`TrellisProtocolError` when the frame is not JSON, is not an object with an
    ``event`` name, or lacks a field its event requires; but a ``message`` or ``error`` that is
    malformed becomes :class:`MalformedFinal`, because it ends the turn all the same. The message
    never quotes the frame.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise TrellisProtocolError("frame is not UTF-8 text") from None
    try:
        frame = json.loads(raw)
    except ValueError:
        raise TrellisProtocolError("frame is not JSON") from None
    if not isinstance(frame, dict):
        raise TrellisProtocolError("frame is not a JSON object")
    name = frame.get("event")
    if not isinstance(name, str) or not name:
        raise TrellisProtocolError("frame has no event name")
    data = frame.get("data")
    if data is None:
        data = {}
    try:
        if not isinstance(data, dict):
            raise TrellisProtocolError(f"{name} event data is not an object")
        return _parse_event(name, data)
    except TrellisProtocolError as exc:
        if name in FINAL_EVENTS:
            return MalformedFinal(name, str(exc))
        raise


def _parse_event(name: str, data: dict[str, Any]) -> TrellisEvent:
    if (bare := _BARE_EVENTS.get(name)) is not None:
        return bare
    match name:
        case "chat_metadata":
            return ChatMetadata(
                chat_id=_required_id(name, data, "id"),
                user_message_id=_optional_id(data, "user_message_id"),
            )
        case "processing":
            status = data.get("status")
            return Processing(status if isinstance(status, str) and status else "processing")
        case "text_delta":
            return TextDelta(_required_str(name, data, "content"))
        case "visualization":
            kind = data.get("type")
            return Visualization(
                viz_id=_required_id(name, data, "id"),
                kind=kind if isinstance(kind, str) and kind else "unknown",
                payload=data,
            )
        case "message":
            return Message(
                content=_required_str(name, data, "content"),
                message_id=_optional_id(data, "id"),
            )
        case "deleted":
            return Deleted(_required_id(name, data, "message_id"))
        case "error":
            return _parse_error(data)
        case _ if name in TOOL_EVENTS:
            return ToolEvent(name, data)
        case _:
            return Unknown(name)


def _parse_error(data: dict[str, Any]) -> ErrorEvent:
    # An error always ends a turn, so it is never rejected: a turn must not hang on a bad one.
    fields: dict[str, Any] = dict(data)
    nested = data.get("error")
    if isinstance(nested, dict):  # tolerate {"error": {"message": ..., "code": ...}}
        fields = {**data, **nested}
    message = next(
        (
            value
            for key in ("error", "message", "detail")
            if isinstance(value := fields.get(key), str) and value
        ),
        "Trellis reported an error",
    )
    retryable = fields.get("retryable")
    return ErrorEvent(
        message=message,
        code=_optional_str(fields, "code"),
        retryable=retryable if isinstance(retryable, bool) else None,
        debug_id=_optional_str(fields, "debug_id"),
        error_type=_optional_str(fields, "error_type"),
        retry_after=_seconds(fields.get("retry_after_seconds", fields.get("retry_after"))),
    )


def _required_str(event: str, data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise TrellisProtocolError(f"{event} event lacks a text {key!r}")
    return value


def _required_id(event: str, data: Mapping[str, Any], key: str) -> str:
    value = _optional_id(data, key)
    if value is None:
        raise TrellisProtocolError(f"{event} event lacks {key!r}")
    return value


def _optional_id(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _action(action: str, **fields: object) -> str:
    return json.dumps(
        {"action": action, **{key: value for key, value in fields.items() if value is not None}}
    )


def authenticate(token: str) -> str:
    """The first frame on a new socket."""
    return _action("authenticate", token=token)


def send_message(
    text: str,
    *,
    chat_id: str | None = None,
    integration_id: str | None = None,
    model: str | None = None,
    title: str | None = None,
    include_tool_events: bool = False,
    upload_ids: Sequence[str] = (),
) -> str:
    """Ask a question (in a new chat when ``chat_id`` is None, which v-current refuses).

    ``upload_ids`` name files uploaded into the chat; they need ``chat_id`` (left out without).

    ``include_tool_events`` asks for the steps Trellis takes; a Trellis that does not know the
    field ignores it (the seed does), so the answer simply comes without steps.
    """
    return _action(
        "send_message",
        message=text,
        chat_id=chat_id,
        integration_id=integration_id,
        model=model,
        title=title,
        include_tool_events=include_tool_events or None,
        upload_ids=list(upload_ids) if upload_ids and chat_id is not None else None,
    )


def edit_message(
    message_id: str,
    text: str,
    *,
    integration_id: str | None = None,
    model: str | None = None,
    include_tool_events: bool = False,
) -> str:
    """Replace a user message; Trellis deletes what followed it and answers afresh."""
    return _action(
        "edit_message",
        message_id=message_id,
        content=text,
        integration_id=integration_id,
        model=model,
        include_tool_events=include_tool_events or None,
    )


def delete_message(message_id: str) -> str:
    """Delete a message and every message after it in its chat."""
    return _action("delete_message", message_id=message_id)


def interrupt() -> str:
    """Cancel the answer streaming on this socket."""
    return _action("interrupt")


def ping() -> str:
    """Keep the socket alive; answered by ``pong``."""
    return _action("ping")
