"""The fake Slack's values: users, channels, files, envelopes, acks, recorded calls, error answers."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "CHANNEL_TYPES",
    "DOMAIN",
    "Ack",
    "ApiCall",
    "Channel",
    "ChannelKind",
    "Envelope",
    "Failure",
    "FakeFile",
    "JsonDict",
    "TsClock",
    "User",
    "new_id",
]

JsonDict = dict[str, Any]
ChannelKind = Literal["public", "private", "im", "mpim"]

#: ``channel_type`` of message events, by kind of conversation.
CHANNEL_TYPES: Final[dict[str, str]] = {
    "public": "channel",
    "private": "group",
    "im": "im",
    "mpim": "mpim",
}

#: Where permalinks point.
DOMAIN: Final = "https://fake-workspace.slack.com"
_ID_ALPHABET: Final = string.ascii_uppercase + string.digits


def new_id(prefix: str, length: int = 10) -> str:
    """A fresh Slack-style id such as ``F0ABC123XY`` or ``Ev0ABC123XY``."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


@dataclass(frozen=True, slots=True)
class FakeFile:
    """A file the bot uploaded with ``files_upload_v2``; ``channel`` is set once it is shared."""

    id: str
    name: str
    title: str
    filetype: str
    content: bytes
    alt_txt: str | None
    channel: str | None = None
    thread_ts: str | None = None
    deleted: bool = False
    #: ``ts`` of the message that shares the file (Slack's answer does not tell the bot).
    message_ts: str | None = None


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One Web API request the bot made (the token is never recorded)."""

    method: str
    args: dict[str, Any]
    at: float
    ok: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class Ack:
    """The app's acknowledgement of one Socket Mode envelope."""

    envelope_id: str
    type: str
    #: Seconds from writing the envelope to the socket to reading the ack.
    latency: float
    payload: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Envelope:
    """One Socket Mode envelope, as queued for delivery."""

    envelope_id: str
    type: Literal["events_api", "interactive", "slash_commands"]
    payload: JsonDict
    accepts_response_payload: bool = False
    retry_attempt: int = 0
    retry_reason: str | None = None

    def frame(self) -> JsonDict:
        """The JSON object written to the WebSocket."""
        frame: JsonDict = {
            "envelope_id": self.envelope_id,
            "payload": self.payload,
            "type": self.type,
            "accepts_response_payload": self.accepts_response_payload,
        }
        if self.type == "events_api":
            frame["retry_attempt"] = self.retry_attempt
            frame["retry_reason"] = self.retry_reason or ""
        return frame

    @property
    def event(self) -> JsonDict:
        """The ``event`` of an ``events_api`` envelope (empty for other types)."""
        event = self.payload.get("event")
        return event if isinstance(event, dict) else {}


@dataclass(frozen=True, slots=True)
class User:
    """A member of the fake workspace (or of a Slack Connect partner's)."""

    id: str
    name: str
    team_id: str
    email: str | None = None
    is_bot: bool = False
    is_admin: bool = False
    bot_id: str | None = None


@dataclass(frozen=True, slots=True)
class Channel:
    """A conversation: public or private channel, IM with the bot, or group DM."""

    id: str
    name: str
    kind: ChannelKind
    members: frozenset[str]
    created: int = 1_690_000_000

    @property
    def channel_type(self) -> str:
        """The ``channel_type`` Slack puts on message events here."""
        return CHANNEL_TYPES[self.kind]


@dataclass(frozen=True, slots=True)
class Failure:
    """A Web API error answer: ``{"ok": false, "error": …}`` with optional reasons."""

    error: str
    messages: tuple[str, ...] = ()

    def body(self) -> JsonDict:
        """The JSON body Slack answers with."""
        body: JsonDict = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": list(self.messages)}
        return body


@dataclass(slots=True)
class TsClock:
    """Hands out unique, increasing ``"1700000000.000100"``-style timestamps."""

    micros: int = 1_700_000_000_000_000
    step: int = 100

    def next(self) -> str:
        """The next timestamp."""
        self.micros += self.step
        return f"{self.micros // 1_000_000}.{self.micros % 1_000_000:06d}"
