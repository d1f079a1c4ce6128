"""The fake Slack's core, without I/O: the world, Slack's limits, event shapes, Web API semantics."""

from __future__ import annotations

import base64
import copy
import re
import secrets
import string
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

JsonDict = dict[str, Any]
ChannelKind = Literal["public", "private", "im", "mpim"]

#: ``channel_type`` of message events, by kind of conversation.
CHANNEL_TYPES: Final[dict[str, str]] = {
    "public": "channel",
    "private": "group",
    "im": "im",
    "mpim": "mpim",
}

#: Block types Slack accepts in messages (anything else is ``invalid_blocks``).
KNOWN_BLOCKS: Final = frozenset(
    {
        "actions",
        "call",
        "context",
        "context_actions",
        "data_table",
        "data_visualization",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "plan",
        "rich_text",
        "section",
        "table",
        "task_card",
        "video",
    }
)

#: Slack answers with at most this much text in a message (``msg_too_long`` above).
MAX_TEXT: Final = 40_000
#: ``markdown`` blocks, ``markdown_text`` and each streaming call carry at most this much.
MAX_MARKDOWN: Final = 12_000

#: Where permalinks point.
DOMAIN: Final = "https://fake-workspace.slack.com"
_MIMETYPES: Final = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "gif": "image/gif",
    "csv": "text/csv",
    "text": "text/plain",
    "markdown": "text/markdown",
    "json": "application/json",
    "pdf": "application/pdf",
}
_MENTION = re.compile(r"<@([UWB][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<(https?://[^|>]+)(?:\|[^>]*)?>")
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


# --------------------------------------------------------------------------- limits


def _pointer_error(message: str, pointer: str) -> str:
    return f"[ERROR] {message} [json-pointer:{pointer}]"


def _text_of(obj: object) -> str:
    if isinstance(obj, dict):
        text = obj.get("text")
        return text if isinstance(text, str) else ""
    return obj if isinstance(obj, str) else ""


def _too_long(value: object, limit: int, pointer: str) -> list[str]:
    text = _text_of(value) if isinstance(value, dict) else value
    if isinstance(text, str) and len(text) > limit:
        return [_pointer_error(f"must be less than {limit + 1} characters", pointer)]
    return []


def _element_problems(element: object, pointer: str) -> list[str]:
    if not isinstance(element, dict):
        return [_pointer_error("must be an object", pointer)]
    problems: list[str] = []
    problems += _too_long(element.get("action_id"), 255, f"{pointer}/action_id")
    if element.get("type") == "button":
        problems += _too_long(element.get("text"), 75, f"{pointer}/text/text")
        problems += _too_long(element.get("value"), 2_000, f"{pointer}/value")
        problems += _too_long(element.get("url"), 3_000, f"{pointer}/url")
    elif element.get("type") == "image":
        problems += _image_problems(element, pointer)
    return problems


def _image_problems(image: JsonDict, pointer: str) -> list[str]:
    alt = image.get("alt_text")
    if not isinstance(alt, str) or not alt:
        return [_pointer_error("missing required field: alt_text", pointer)]
    problems = _too_long(alt, 2_000, f"{pointer}/alt_text")
    if "image_url" not in image and "slack_file" not in image:
        problems.append(_pointer_error("missing required field: image_url", pointer))
    return problems


def _elements_problems(block: JsonDict, limit: int, pointer: str) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        return [_pointer_error("missing required field: elements", pointer)]
    problems: list[str] = []
    if len(elements) > limit:
        problems.append(
            _pointer_error(f"no more than {limit} items allowed", f"{pointer}/elements")
        )
    for i, element in enumerate(elements):
        problems += _element_problems(element, f"{pointer}/elements/{i}")
    return problems


def _section_problems(block: JsonDict, pointer: str) -> list[str]:
    text, fields = block.get("text"), block.get("fields")
    if text is None and not fields:
        return [_pointer_error("must provide either text or fields", pointer)]
    problems: list[str] = []
    if text is not None:
        if not _text_of(text):
            problems.append(
                _pointer_error("must be more than 0 characters", f"{pointer}/text/text")
            )
        problems += _too_long(text, 3_000, f"{pointer}/text/text")
    if isinstance(fields, list):
        if len(fields) > 10:
            problems.append(_pointer_error("no more than 10 items allowed", f"{pointer}/fields"))
        for i, item in enumerate(fields):
            problems += _too_long(item, 2_000, f"{pointer}/fields/{i}/text")
    if "accessory" in block:
        problems += _element_problems(block["accessory"], f"{pointer}/accessory")
    return problems


def _rows_problems(rows: object, pointer: str, *, min_rows: int, max_rows: int) -> list[str]:
    if not isinstance(rows, list):
        return [_pointer_error("missing required field: rows", pointer)]
    problems: list[str] = []
    if not min_rows <= len(rows) <= max_rows:
        problems.append(
            _pointer_error(f"must have between {min_rows} and {max_rows} items", f"{pointer}/rows")
        )
    for i, row in enumerate(rows):
        if isinstance(row, list) and len(row) > 20:
            problems.append(_pointer_error("no more than 20 items allowed", f"{pointer}/rows/{i}"))
    return problems


def _block_problems(block: JsonDict, pointer: str) -> list[str]:
    kind = block["type"]
    if kind not in KNOWN_BLOCKS:
        return [_pointer_error(f"unsupported type: {kind}", f"{pointer}/type")]
    if kind == "section":
        return _section_problems(block, pointer)
    if kind == "header":
        if not _text_of(block.get("text")):
            return [_pointer_error("missing required field: text", pointer)]
        return _too_long(block.get("text"), 150, f"{pointer}/text/text")
    if kind == "context":
        return _elements_problems(block, 10, pointer)
    if kind == "actions":
        return _elements_problems(block, 25, pointer)
    if kind == "image":
        return _image_problems(block, pointer)
    if kind == "table":
        return _rows_problems(block.get("rows"), pointer, min_rows=1, max_rows=100)
    if kind == "data_table":
        problems = _rows_problems(block.get("rows"), pointer, min_rows=2, max_rows=101)
        if not block.get("caption"):
            problems.append(_pointer_error("missing required field: caption", pointer))
        size = block.get("page_size")
        if size is not None and not (isinstance(size, int) and 1 <= size <= 100):
            problems.append(_pointer_error("must be between 1 and 100", f"{pointer}/page_size"))
        return problems
    if kind == "markdown" and not isinstance(block.get("text"), str):
        return [_pointer_error("missing required field: text", pointer)]
    return []


def block_problems(blocks: object, *, max_blocks: int = 50) -> list[str]:
    """Every reason Slack would answer ``invalid_blocks`` for ``blocks`` (empty when valid)."""
    if not isinstance(blocks, list):
        return [_pointer_error("must be an array", "/blocks")]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(_pointer_error(f"no more than {max_blocks} items allowed", "/blocks"))
    block_ids: set[str] = set()
    markdown_chars = 0
    counts: dict[str, int] = {}
    for i, block in enumerate(blocks):
        pointer = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(_pointer_error("missing required field: type", pointer))
            continue
        counts[block["type"]] = counts.get(block["type"], 0) + 1
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or len(block_id) > 255:
                problems.append(_pointer_error("invalid block_id", f"{pointer}/block_id"))
            elif block_id in block_ids:
                problems.append(_pointer_error("duplicate block_id", f"{pointer}/block_id"))
            else:
                block_ids.add(block_id)
        if block["type"] == "markdown":
            markdown_chars += len(_text_of(block))
        problems += _block_problems(block, pointer)
    if markdown_chars > MAX_MARKDOWN:
        problems.append(
            _pointer_error(f"markdown blocks exceed {MAX_MARKDOWN} characters in total", "/blocks")
        )
    if counts.get("table", 0) > 1:
        problems.append(_pointer_error("only one table block is allowed per message", "/blocks"))
    if counts.get("data_visualization", 0) > 2:
        problems.append(_pointer_error("no more than 2 data_visualization blocks", "/blocks"))
    return problems


def content_failure(text: object, blocks: object, attachments: object) -> Failure | None:
    """Why Slack would refuse a message with this content, or ``None``."""
    if text is not None and not isinstance(text, str):
        return Failure("invalid_arguments", ("[ERROR] text must be a string",))
    if not text and not blocks and not attachments:
        return Failure("no_text")
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return Failure("msg_too_long")
    if blocks is not None:
        problems = block_problems(blocks)
        if problems:
            return Failure("invalid_blocks", tuple(problems))
    return None


def with_block_ids(blocks: list[Any]) -> list[Any]:
    """A copy of ``blocks`` where every block has a ``block_id``, as Slack stores them."""
    out = copy.deepcopy(blocks)
    for block in out:
        if isinstance(block, dict) and "block_id" not in block:
            block["block_id"] = new_id("", 5)
    return out


def rich_text_blocks(text: str) -> list[JsonDict]:
    """The ``rich_text`` block Slack attaches to a message a human typed."""
    elements: list[JsonDict] = []
    pos = 0
    for match in re.finditer(f"{_MENTION.pattern}|{_LINK.pattern}", text):
        if match.start() > pos:
            elements.append({"type": "text", "text": text[pos : match.start()]})
        if match.group(1):
            elements.append({"type": "user", "user_id": match.group(1)})
        else:
            elements.append({"type": "link", "url": match.group(2)})
        pos = match.end()
    if pos < len(text):
        elements.append({"type": "text", "text": text[pos:]})
    section = {"type": "rich_text_section", "elements": elements}
    return [{"type": "rich_text", "block_id": new_id("", 5), "elements": [section]}]


def first_link(text: str) -> str | None:
    """The first ``<https://…>`` link in message text."""
    match = _LINK.search(text)
    return match.group(1) if match else None


def find_action(blocks: object, action_id: str) -> tuple[str, JsonDict] | None:
    """The ``(block_id, element)`` of the interactive element with ``action_id``."""
    if not isinstance(blocks, list):
        return None
    for block in blocks:
        if not isinstance(block, dict):
            continue
        candidates = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            candidates.append(block["accessory"])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return str(block.get("block_id", "")), element
    return None


def filetype_of(name: str) -> str:
    """Slack's ``filetype`` for a file name (``png``, ``csv``, ``text``, …)."""
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return {"txt": "text", "md": "markdown", "jpeg": "jpg", "": "binary"}.get(ext, ext)


# --------------------------------------------------------------------------- the world


@dataclass(slots=True)
class Workspace:
    """Users, channels, messages and files; every change queues the events Slack would send."""

    team_id: str
    bot_user_id: str
    bot_id: str
    app_id: str
    clock: TsClock = field(default_factory=TsClock)
    users: dict[str, User] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    files: dict[str, FakeFile] = field(default_factory=dict)
    #: Events waiting to be wrapped in envelopes (the server drains this).
    outbox: list[JsonDict] = field(default_factory=list)
    _messages: dict[str, dict[str, JsonDict]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.users[self.bot_user_id] = User(
            self.bot_user_id, "trellis", self.team_id, is_bot=True, bot_id=self.bot_id
        )

    # ------------------------------------------------------------ lookups

    def add_channel(self, channel: Channel) -> None:
        """Add or replace a conversation."""
        self.channels[channel.id] = channel
        self._messages.setdefault(channel.id, {})

    def join(self, channel_id: str, user_id: str) -> None:
        """Make ``user_id`` a member of the conversation."""
        channel = self.channels[channel_id]
        if user_id not in channel.members:
            self.channels[channel_id] = replace(channel, members=channel.members | {user_id})

    def im_with(self, user_id: str) -> Channel | None:
        """The IM between the bot and ``user_id``, if there is one."""
        for channel in self.channels.values():
            if channel.kind == "im" and user_id in channel.members:
                return channel
        return None

    def message(self, channel_id: str, ts: str) -> JsonDict | None:
        """The stored message (not a copy) or ``None``."""
        return self._messages.get(channel_id, {}).get(ts)

    def all_messages(self, channel_id: str) -> list[JsonDict]:
        """Top-level messages and replies in ``ts`` order (the stored dicts)."""
        return sorted(self._messages.get(channel_id, {}).values(), key=lambda m: float(m["ts"]))

    def replies(self, channel_id: str, parent_ts: str) -> list[JsonDict]:
        """The replies in a thread, oldest first (without the parent)."""
        return [
            m
            for m in self.all_messages(channel_id)
            if m.get("thread_ts") == parent_ts and m["ts"] != parent_ts
        ]

    def thread_root(self, channel_id: str, ts: str) -> str | None:
        """The ``ts`` of the thread parent for a message (itself when it is top level)."""
        message = self.message(channel_id, ts)
        if message is None:
            return None
        return str(message.get("thread_ts") or ts)

    def is_ext_shared(self, channel_id: str) -> bool:
        """Whether someone from another team is in the conversation (Slack Connect)."""
        channel = self.channels[channel_id]
        return any(
            self.users[m].team_id != self.team_id for m in channel.members if m in self.users
        )

    # ------------------------------------------------------------ message shapes

    def bot_profile(self) -> JsonDict:
        """The ``bot_profile`` on the bot's own messages."""
        return {
            "id": self.bot_id,
            "app_id": self.app_id,
            "name": "trellis",
            "icons": {"image_48": "https://example.invalid/trellis_48.png"},
            "deleted": False,
            "updated": 1_690_000_000,
            "team_id": self.team_id,
        }

    def _thread_fields(self, channel_id: str, thread_ts: str | None) -> JsonDict:
        if thread_ts is None:
            return {}
        parent = self._messages[channel_id][thread_ts]
        return {"thread_ts": thread_ts, "parent_user_id": parent.get("user", "")}

    def _human_message(self, user: User, text: str, ts: str) -> JsonDict:
        message: JsonDict = {"user": user.id, "type": "message", "ts": ts, "text": text}
        if user.is_bot:
            app_id = "A" + (user.bot_id or "B")[1:]
            message |= {
                "bot_id": user.bot_id,
                "app_id": app_id,
                "bot_profile": {"id": user.bot_id, "app_id": app_id, "name": user.name},
            }
        else:
            message["client_msg_id"] = str(uuid.uuid4())
        message |= {
            "team": user.team_id,
            "user_team": user.team_id,
            "source_team": user.team_id,
            "blocks": rich_text_blocks(text),
        }
        return message

    def event(self, channel_id: str, body: JsonDict, *, event_ts: str | None = None) -> JsonDict:
        """A message-family event in ``channel_id`` from a message-shaped ``body``."""
        event = copy.deepcopy(body)
        event["channel"] = channel_id
        event["event_ts"] = event_ts or body["ts"]
        event["channel_type"] = self.channels[channel_id].channel_type
        return event

    def _changed(self, channel_id: str, new: JsonDict, old: JsonDict) -> JsonDict:
        ts = self.clock.next()
        return {
            "type": "message",
            "subtype": "message_changed",
            "message": copy.deepcopy(new),
            "previous_message": copy.deepcopy(old),
            "channel": channel_id,
            "hidden": True,
            "ts": ts,
            "event_ts": ts,
            "channel_type": self.channels[channel_id].channel_type,
        }

    def _deleted(self, channel_id: str, old: JsonDict) -> JsonDict:
        ts = self.clock.next()
        return {
            "type": "message",
            "subtype": "message_deleted",
            "previous_message": copy.deepcopy(old),
            "channel": channel_id,
            "hidden": True,
            "deleted_ts": old["ts"],
            "ts": ts,
            "event_ts": ts,
            "channel_type": self.channels[channel_id].channel_type,
        }

    def _app_mention(self, channel_id: str, message: JsonDict, event_ts: str) -> JsonDict:
        keep = ("user", "ts", "client_msg_id", "text", "team", "thread_ts", "parent_user_id")
        event: JsonDict = {"type": "app_mention"}
        event |= {k: copy.deepcopy(message[k]) for k in keep if k in message}
        event |= {k: copy.deepcopy(message[k]) for k in ("bot_id", "edited") if k in message}
        event |= {"blocks": copy.deepcopy(message.get("blocks", []))}
        event |= {"channel": channel_id, "event_ts": event_ts}
        return event

    def mentions_bot(self, text: str) -> bool:
        """Whether ``text`` mentions the bot user."""
        return any(m.group(1) == self.bot_user_id for m in _MENTION.finditer(text))

    # ------------------------------------------------------------ changes

    def post_as_human(
        self,
        channel_id: str,
        user_id: str,
        text: str,
        *,
        thread_ts: str | None = None,
        mention_first: bool = True,
    ) -> JsonDict:
        """A person posts; queues ``message`` (and ``app_mention``) plus the parent's change."""
        ts = self.clock.next()
        message = self._human_message(self.users[user_id], text, ts)
        message |= self._thread_fields(channel_id, thread_ts)
        self._messages[channel_id][ts] = message
        self.join(channel_id, user_id)
        events = [self.event(channel_id, message)]
        if self.mentions_bot(text) and self.channels[channel_id].kind != "im":
            mention = self._app_mention(channel_id, message, ts)
            events.insert(0 if mention_first else 1, mention)
        self.outbox += events
        if thread_ts is not None:
            self._refresh_parent(channel_id, thread_ts)
        return message

    def post_as_bot(
        self,
        channel_id: str,
        *,
        text: str,
        thread_ts: str | None = None,
        extra: JsonDict | None = None,
    ) -> JsonDict:
        """The bot posts; queues the echo ``message`` and the parent's change."""
        ts = self.clock.next()
        message: JsonDict = {
            "user": self.bot_user_id,
            "type": "message",
            "ts": ts,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": text,
            "team": self.team_id,
            "bot_profile": self.bot_profile(),
        }
        message |= copy.deepcopy(extra or {})
        message |= self._thread_fields(channel_id, thread_ts)
        self._messages[channel_id][ts] = message
        self.outbox.append(self.event(channel_id, message))
        if thread_ts is not None:
            self._refresh_parent(channel_id, thread_ts)
        return message

    def change(
        self, channel_id: str, ts: str, fields: JsonDict, *, remove: Iterable[str] = ()
    ) -> tuple[JsonDict, JsonDict]:
        """Apply ``fields`` to a message; queues ``message_changed``; returns (old, new)."""
        message = self._messages[channel_id][ts]
        old = copy.deepcopy(message)
        for key in remove:
            message.pop(key, None)
        message |= copy.deepcopy(fields)
        self.outbox.append(self._changed(channel_id, message, old))
        return old, message

    def edit_as_human(self, channel_id: str, ts: str, text: str) -> JsonDict:
        """A person edits their message; queues ``message_changed`` (and ``app_mention``)."""
        message = self._messages[channel_id][ts]
        edit_ts = self.clock.next()
        fields = {
            "text": text,
            "blocks": rich_text_blocks(text),
            "edited": {"user": message.get("user", ""), "ts": edit_ts},
        }
        _, new = self.change(channel_id, ts, fields)
        if self.mentions_bot(text) and self.channels[channel_id].kind != "im":
            self.outbox.append(self._app_mention(channel_id, new, self.outbox[-1]["ts"]))
        return new

    def delete(self, channel_id: str, ts: str) -> None:
        """Delete a message; a thread parent with replies becomes a tombstone."""
        message = self._messages[channel_id][ts]
        replies = self.replies(channel_id, ts) if message.get("thread_ts") in (None, ts) else []
        if replies:
            tombstone: JsonDict = {
                "type": "message",
                "subtype": "tombstone",
                "text": "This message was deleted.",
                "user": "USLACKBOT",
                "hidden": True,
                "ts": ts,
            }
            keep = ("thread_ts", "reply_count", "reply_users_count", "latest_reply", "reply_users")
            tombstone |= {k: message[k] for k in keep if k in message}
            old = copy.deepcopy(message)
            self._messages[channel_id][ts] = tombstone
            self.outbox.append(self._changed(channel_id, tombstone, old))
            return
        del self._messages[channel_id][ts]
        self.outbox.append(self._deleted(channel_id, message))
        parent_ts = message.get("thread_ts")
        if parent_ts is not None and parent_ts != ts and parent_ts in self._messages[channel_id]:
            self._refresh_parent(channel_id, parent_ts)

    def _refresh_parent(self, channel_id: str, parent_ts: str) -> None:
        parent = self._messages[channel_id][parent_ts]
        replies = self.replies(channel_id, parent_ts)
        if not replies and parent.get("subtype") == "tombstone":
            del self._messages[channel_id][parent_ts]
            self.outbox.append(self._deleted(channel_id, parent))
            return
        thread_keys = ["reply_count", "reply_users_count", "latest_reply", "reply_users"]
        thread_keys += ["is_locked", "thread_ts"]
        fields: JsonDict = {}
        if replies:
            authors = list(dict.fromkeys(str(m.get("user", "")) for m in replies))
            fields = {
                "thread_ts": parent_ts,
                "reply_count": len(replies),
                "reply_users_count": len(authors),
                "latest_reply": replies[-1]["ts"],
                "reply_users": authors,
                "is_locked": False,
            }
        self.change(channel_id, parent_ts, fields, remove=thread_keys)

    # ------------------------------------------------------------ payload shapes

    def event_callback(self, event: JsonDict) -> JsonDict:
        """The ``event_callback`` payload of an ``events_api`` envelope."""
        channel = event.get("channel")
        shared = isinstance(channel, str) and channel in self.channels
        return {
            "token": "fake-verification-token",
            "team_id": self.team_id,
            "context_team_id": self.team_id,
            "context_enterprise_id": None,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": new_id("Ev"),
            "event_time": int(float(event.get("event_ts") or self.clock.next())),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": shared and self.is_ext_shared(str(channel)),
            "event_context": "4-" + new_id("", 24),
        }

    def user_object(self, user: User) -> JsonDict:
        """What ``users.info`` answers for ``user``."""
        profile: JsonDict = {
            "real_name": user.name.title(),
            "display_name": user.name,
            "real_name_normalized": user.name.title(),
            "display_name_normalized": user.name,
            "team": user.team_id,
        }
        if user.email is not None:
            profile["email"] = user.email
        if user.bot_id is not None:
            profile["bot_id"] = user.bot_id
        return {
            "id": user.id,
            "team_id": user.team_id,
            "name": user.name,
            "deleted": False,
            "real_name": user.name.title(),
            "tz": "Europe/Amsterdam",
            "is_admin": user.is_admin,
            "is_owner": False,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "is_restricted": False,
            "profile": profile,
        }

    def channel_object(self, channel: Channel) -> JsonDict:
        """What ``conversations.info`` answers for ``channel``."""
        obj: JsonDict = {
            "id": channel.id,
            "name": channel.name,
            "name_normalized": channel.name,
            "created": channel.created,
            "is_channel": channel.kind in ("public", "private"),
            "is_group": False,
            "is_im": channel.kind == "im",
            "is_mpim": channel.kind == "mpim",
            "is_private": channel.kind != "public",
            "is_archived": False,
            "is_member": self.bot_user_id in channel.members,
            "is_ext_shared": self.is_ext_shared(channel.id),
            "context_team_id": self.team_id,
        }
        if channel.kind == "im":
            obj["user"] = next((m for m in channel.members if m != self.bot_user_id), "")
        else:
            obj["num_members"] = len(channel.members)
        return obj

    def iter_shares(self, file: FakeFile) -> Iterator[tuple[str, JsonDict]]:
        """(``public``/``private``, share) pairs for ``files.info``'s ``shares``."""
        if file.channel is None or file.message_ts is None:
            return
        channel = self.channels[file.channel]
        share: JsonDict = {"ts": file.message_ts, "channel_name": channel.name}
        share |= {"team_id": self.team_id, "share_user_id": self.bot_user_id}
        if file.thread_ts is not None:
            share["thread_ts"] = file.thread_ts
        yield ("public" if channel.kind == "public" else "private"), share


# --------------------------------------------------------------------------- the Web API

Handler = Callable[[JsonDict], "JsonDict | Failure"]


def truthy(value: object) -> bool:
    """Slack's reading of a boolean argument (``true``, ``1``, …)."""
    return value in (True, 1, "1", "true", "True")


def optional_str(value: object) -> str | None:
    """A non-empty string argument, or ``None``."""
    return value if isinstance(value, str) and value else None


def _chunk_text(args: JsonDict) -> str:
    """The Markdown a streaming call adds: ``markdown_text`` plus ``markdown_text`` chunks."""
    text = args.get("markdown_text") or ""
    chunks = args.get("chunks") or []
    if isinstance(chunks, list):
        for chunk in chunks:
            if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
                text += str(chunk.get("text", ""))
    return str(text)


def _page(items: list[JsonDict], args: JsonDict, default_limit: int) -> JsonDict:
    """One page of ``items`` with Slack's cursor pagination."""
    try:
        start = int(base64.b64decode(args.get("cursor") or "MA==").decode())
        limit = int(args.get("limit") or default_limit) or default_limit
    except ValueError:
        start, limit = 0, default_limit
    page = items[start : start + limit]
    more = start + limit < len(items)
    cursor = base64.b64encode(str(start + limit).encode()).decode() if more else ""
    return {
        "messages": copy.deepcopy(page),
        "has_more": more,
        "response_metadata": {"next_cursor": cursor},
    }


class WebApi:
    """What each Web API method does to the world and answers (no HTTP, no token checks).

    ``apps.connections.open`` is the server's business; everything else the app calls is here.
    Records of what the bot did that are not messages (ephemerals, statuses, Home views) live
    here too.
    """

    def __init__(self, world: Workspace, base_url: str = "http://127.0.0.1/") -> None:
        self.world = world
        #: Where upload URLs and ``url_private`` point (the server sets it once listening).
        self.base_url = base_url
        self.ephemerals: list[JsonDict] = []
        self.statuses: list[JsonDict] = []
        self.home_views: dict[str, JsonDict] = {}
        self._status: dict[tuple[str, str], str] = {}
        self._streams: dict[tuple[str, str], bool] = {}
        self._uploads: dict[str, JsonDict] = {}
        self.methods: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.getPermalink": self._permalink,
            "chat.startStream": self._start_stream,
            "chat.appendStream": self._append_stream,
            "chat.stopStream": self._stop_stream,
            "reactions.add": self._reaction_add,
            "reactions.remove": self._reaction_remove,
            "conversations.info": self._conversation_info,
            "conversations.replies": self._replies,
            "conversations.history": self._history,
            "users.info": self._user_info,
            "bots.info": self._bot_info,
            "assistant.threads.setStatus": self._set_status,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "files.info": self._file_info,
            "files.delete": self._file_delete,
            "views.publish": self._views_publish,
        }

    @property
    def bot_user_id(self) -> str:
        """The bot's user id."""
        return self.world.bot_user_id

    @property
    def bot_id(self) -> str:
        """The bot's bot id."""
        return self.world.bot_id

    @property
    def team_id(self) -> str:
        """The workspace's team id."""
        return self.world.team_id

    @property
    def app_id(self) -> str:
        """The app's id."""
        return self.world.app_id

    @property
    def files(self) -> dict[str, FakeFile]:
        """Uploaded files by id."""
        return self.world.files

    def call(self, method: str, args: JsonDict) -> JsonDict | Failure:
        """Run one method; events it causes wait in ``world.outbox``."""
        handler = self.methods.get(method)
        return Failure("unknown_method") if handler is None else handler(args)

    def status(self, channel: str, thread_ts: str) -> str:
        """The assistant status shown in a thread now."""
        return self._status.get((channel, thread_ts), "")

    def expire_stream(self, channel: str, ts: str) -> None:
        """End a message's streaming state."""
        self._streams[(channel, ts)] = False

    def upload(self, file_id: str, content: bytes) -> bool:
        """Store the bytes POSTed to an upload URL; ``False`` for an unknown upload."""
        upload = self._uploads.get(file_id)
        if upload is None:
            return False
        upload["content"] = content
        return True

    def mimetype(self, file: FakeFile) -> str:
        """The MIME type Slack reports for a file."""
        return _MIMETYPES.get(file.filetype, "application/octet-stream")

    def _channel(self, args: JsonDict, key: str = "channel") -> Channel | Failure:
        value = args.get(key)
        if not isinstance(value, str) or not value:
            return Failure("channel_not_found")
        if value.startswith(("U", "W")) and value in self.world.users:
            im = self.world.im_with(value)
            if im is not None:
                return im
        channel = self.world.channels.get(value)
        if channel is None:
            return Failure("channel_not_found")
        if channel.kind != "public" and self.bot_user_id not in channel.members:
            return Failure("channel_not_found")
        return channel

    def _writable(self, args: JsonDict, key: str = "channel") -> Channel | Failure:
        channel = self._channel(args, key)
        if isinstance(channel, Channel) and self.bot_user_id not in channel.members:
            return Failure("not_in_channel")
        return channel

    def _thread(self, channel: Channel, args: JsonDict) -> str | Failure | None:
        thread_ts = optional_str(args.get("thread_ts"))
        if thread_ts is None:
            return None
        root = self.world.thread_root(channel.id, thread_ts)
        return Failure("thread_not_found") if root is None else root

    def _target(self, args: JsonDict, key: str = "ts") -> tuple[Channel, JsonDict] | Failure:
        channel = self._channel(args)
        if isinstance(channel, Failure):
            return channel
        message = self.world.message(channel.id, str(args.get(key, "")))
        if message is None:
            return Failure("message_not_found")
        return channel, message

    def _content(self, args: JsonDict) -> JsonDict | Failure:
        """``text``/``blocks``/``attachments``/``markdown_text`` checked like Slack does."""
        markdown = args.get("markdown_text")
        if markdown is not None:
            if args.get("text") or args.get("blocks"):
                return Failure("markdown_text_conflict")
            if len(str(markdown)) > MAX_MARKDOWN:
                return Failure("msg_too_long")
            return {
                "text": str(markdown),
                "blocks": with_block_ids([{"type": "markdown", "text": markdown}]),
            }
        text, blocks, attachments = args.get("text"), args.get("blocks"), args.get("attachments")
        failure = content_failure(text, blocks, attachments)
        if failure is not None:
            return failure
        content: JsonDict = {"text": text or ""}
        if isinstance(blocks, list):
            content["blocks"] = with_block_ids(blocks)
        if attachments:
            content["attachments"] = copy.deepcopy(attachments)
        return content

    def _public(self, message: JsonDict) -> JsonDict:
        return copy.deepcopy(message)

    def _auth_test(self, args: JsonDict) -> JsonDict | Failure:
        return {
            "url": DOMAIN + "/",
            "team": "Fake Workspace",
            "user": "trellis",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _post_message(self, args: JsonDict) -> JsonDict | Failure:
        channel = self._writable(args)
        if isinstance(channel, Failure):
            return channel
        content = self._content(args)
        if isinstance(content, Failure):
            return content
        thread_ts = self._thread(channel, args)
        if isinstance(thread_ts, Failure):
            return thread_ts
        text = content.pop("text")
        message = self.world.post_as_bot(channel.id, text=text, thread_ts=thread_ts, extra=content)
        self._status.pop((channel.id, thread_ts or ""), None)
        return {"channel": channel.id, "ts": message["ts"], "message": self._public(message)}

    def _update(self, args: JsonDict) -> JsonDict | Failure:
        target = self._target(args)
        if isinstance(target, Failure):
            return target
        channel, message = target
        if message.get("bot_id") != self.bot_id:
            return Failure("cant_update_message")
        given = {
            k: args[k] for k in ("text", "blocks", "attachments", "markdown_text") if k in args
        }
        if not given:
            return Failure("no_text")
        merged = {"text": message.get("text"), "blocks": message.get("blocks")} | given
        if "markdown_text" in given:
            merged = {"markdown_text": given["markdown_text"]}
        content = self._content(merged)
        if isinstance(content, Failure):
            return content
        content["edited"] = {"user": self.bot_user_id, "ts": self.world.clock.next()}
        remove = [] if "blocks" in content else ["blocks"]
        _, new = self.world.change(channel.id, message["ts"], content, remove=remove)
        return {
            "channel": channel.id,
            "ts": new["ts"],
            "text": new.get("text", ""),
            "message": self._public(new),
        }

    def _delete(self, args: JsonDict) -> JsonDict | Failure:
        target = self._target(args)
        if isinstance(target, Failure):
            return target
        channel, message = target
        if message.get("bot_id") != self.bot_id:
            return Failure("cant_delete_message")
        self.world.delete(channel.id, message["ts"])
        return {"channel": channel.id, "ts": message["ts"]}

    def _post_ephemeral(self, args: JsonDict) -> JsonDict | Failure:
        channel = self._writable(args)
        if isinstance(channel, Failure):
            return channel
        user = str(args.get("user", ""))
        if user not in self.world.users:
            return Failure("user_not_found")
        if user not in channel.members:
            return Failure("user_not_in_channel")
        content = self._content(args)
        if isinstance(content, Failure):
            return content
        ts = self.world.clock.next()
        record: JsonDict = {"channel": channel.id, "user": user, "message_ts": ts}
        record |= content
        record["thread_ts"] = optional_str(args.get("thread_ts"))
        self.ephemerals.append(record)
        return {"message_ts": ts}

    def _permalink(self, args: JsonDict) -> JsonDict | Failure:
        target = self._target(args, "message_ts")
        if isinstance(target, Failure):
            return target
        channel, message = target
        link = f"{DOMAIN}/archives/{channel.id}/p{message['ts'].replace('.', '')}"
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != message["ts"]:
            link += f"?thread_ts={thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    def _start_stream(self, args: JsonDict) -> JsonDict | Failure:
        channel = self._writable(args)
        if isinstance(channel, Failure):
            return channel
        if not optional_str(args.get("thread_ts")):
            return Failure("invalid_arguments", ("[ERROR] missing required field: thread_ts",))
        thread_ts = self._thread(channel, args)
        if isinstance(thread_ts, Failure):
            return thread_ts
        if channel.kind != "im" and not (
            args.get("recipient_user_id") and args.get("recipient_team_id")
        ):
            return Failure(
                "invalid_arguments",
                ("[ERROR] recipient_user_id and recipient_team_id are required in channels",),
            )
        text = _chunk_text(args)
        if len(text) > MAX_MARKDOWN:
            return Failure("msg_too_long")
        message = self.world.post_as_bot(channel.id, text=text, thread_ts=thread_ts)
        self._streams[(channel.id, message["ts"])] = True
        self._status.pop((channel.id, thread_ts or ""), None)
        return {"channel": channel.id, "ts": message["ts"]}

    def _streaming(self, args: JsonDict) -> tuple[Channel, JsonDict, str] | Failure:
        target = self._target(args)
        if isinstance(target, Failure):
            return target
        channel, message = target
        if not self._streams.get((channel.id, message["ts"])):
            return Failure("message_not_in_streaming_state")
        text = _chunk_text(args)
        if len(text) > MAX_MARKDOWN:
            return Failure("msg_too_long")
        return channel, message, text

    def _append_stream(self, args: JsonDict) -> JsonDict | Failure:
        streaming = self._streaming(args)
        if isinstance(streaming, Failure):
            return streaming
        channel, message, text = streaming
        message["text"] = message.get("text", "") + text
        return {"channel": channel.id, "ts": message["ts"]}

    def _stop_stream(self, args: JsonDict) -> JsonDict | Failure:
        streaming = self._streaming(args)
        if isinstance(streaming, Failure):
            return streaming
        channel, message, text = streaming
        fields: JsonDict = {"text": message.get("text", "") + text}
        blocks = args.get("blocks")
        if blocks is not None:
            problems = block_problems(blocks)
            if problems:
                return Failure("invalid_blocks", tuple(problems))
            fields["blocks"] = with_block_ids(blocks)
        self._streams[(channel.id, message["ts"])] = False
        _, new = self.world.change(channel.id, message["ts"], fields)
        return {"channel": channel.id, "ts": new["ts"], "message": self._public(new)}

    def _reaction_add(self, args: JsonDict) -> JsonDict | Failure:
        target = self._target(args, "timestamp")
        if isinstance(target, Failure):
            return target
        name = str(args.get("name", ""))
        if not name:
            return Failure("invalid_name")
        reactions: list[JsonDict] = target[1].setdefault("reactions", [])
        reaction = next((r for r in reactions if r["name"] == name), None)
        if reaction is None:
            reactions.append({"name": name, "users": [self.bot_user_id], "count": 1})
        elif self.bot_user_id in reaction["users"]:
            return Failure("already_reacted")
        else:
            reaction["users"].append(self.bot_user_id)
            reaction["count"] += 1
        return {}

    def _reaction_remove(self, args: JsonDict) -> JsonDict | Failure:
        target = self._target(args, "timestamp")
        if isinstance(target, Failure):
            return target
        message = target[1]
        reactions: list[JsonDict] = message.get("reactions", [])
        name = str(args.get("name", ""))
        reaction = next((r for r in reactions if r["name"] == name), None)
        if reaction is None or self.bot_user_id not in reaction["users"]:
            return Failure("no_reaction")
        reaction["users"].remove(self.bot_user_id)
        reaction["count"] -= 1
        if not reaction["users"]:
            reactions.remove(reaction)
        if not reactions:
            message.pop("reactions", None)
        return {}

    def _conversation_info(self, args: JsonDict) -> JsonDict | Failure:
        channel = self._channel(args)
        if isinstance(channel, Failure):
            return channel
        return {"channel": self.world.channel_object(channel)}

    def _window(self, messages: list[JsonDict], args: JsonDict) -> list[JsonDict]:
        inclusive = truthy(args.get("inclusive"))
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or "inf")

        def inside(ts: float) -> bool:
            if inclusive:
                return oldest <= ts <= latest
            return (oldest < ts or oldest == 0) and ts < latest

        return [m for m in messages if inside(float(m["ts"]))]

    def _replies(self, args: JsonDict) -> JsonDict | Failure:
        channel = self._channel(args)
        if isinstance(channel, Failure):
            return channel
        root = self.world.thread_root(channel.id, str(args.get("ts", "")))
        if root is None:
            return Failure("thread_not_found")
        parent = self.world.message(channel.id, root)
        thread = [parent, *self.world.replies(channel.id, root)] if parent else []
        return _page(self._window(thread, args), args, 1000)

    def _history(self, args: JsonDict) -> JsonDict | Failure:
        channel = self._channel(args)
        if isinstance(channel, Failure):
            return channel
        top = [
            m
            for m in self.world.all_messages(channel.id)
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]
        return _page(self._window(top, args)[::-1], args, 100)

    def _user_info(self, args: JsonDict) -> JsonDict | Failure:
        user = self.world.users.get(str(args.get("user", "")))
        if user is None:
            return Failure("user_not_found")
        return {"user": self.world.user_object(user)}

    def _bot_info(self, args: JsonDict) -> JsonDict | Failure:
        bot = str(args.get("bot", ""))
        user = next((u for u in self.world.users.values() if u.bot_id and u.bot_id == bot), None)
        if user is None:
            return Failure("bot_not_found")
        app_id = self.app_id if bot == self.bot_id else "A" + bot[1:]
        return {
            "bot": {
                "id": bot,
                "deleted": False,
                "name": user.name,
                "updated": 1_690_000_000,
                "app_id": app_id,
                "user_id": user.id,
                "icons": {"image_48": "https://example.invalid/bot_48.png"},
            }
        }

    def _set_status(self, args: JsonDict) -> JsonDict | Failure:
        channel = self._channel(args, "channel_id")
        if isinstance(channel, Failure):
            return channel
        thread_ts = optional_str(args.get("thread_ts"))
        loading = args.get("loading_messages")
        if thread_ts is None or "status" not in args:
            return Failure("invalid_arguments", ("[ERROR] thread_ts and status are required",))
        if isinstance(loading, list) and len(loading) > 10:
            return Failure("invalid_arguments", ("[ERROR] no more than 10 loading_messages",))
        self.statuses.append(copy.deepcopy(args))
        self._status[(channel.id, thread_ts)] = str(args["status"])
        return {}

    def _upload_url(self, args: JsonDict) -> JsonDict | Failure:
        filename = optional_str(args.get("filename"))
        try:
            length = int(args.get("length", ""))
        except ValueError:
            return Failure("invalid_arguments", ("[ERROR] length must be an integer",))
        if filename is None or length <= 0:
            return Failure("invalid_arguments", ("[ERROR] filename and length are required",))
        file_id = new_id("F")
        self._uploads[file_id] = {
            "name": filename,
            "length": length,
            "alt_txt": optional_str(args.get("alt_txt")),
            "content": None,
        }
        return {"upload_url": f"{self.base_url}upload/v1/{file_id}", "file_id": file_id}

    def _complete_upload(self, args: JsonDict) -> JsonDict | Failure:
        items = args.get("files")
        if not isinstance(items, list) or not items:
            return Failure("invalid_arguments", ("[ERROR] files is required",))
        ids = [str(i.get("id")) if isinstance(i, dict) else "" for i in items]
        if any(self._uploads.get(i, {}).get("content") is None for i in ids):
            return Failure("file_not_found")
        if not args.get("channel_id") and args.get("channels"):
            args = args | {"channel_id": str(args["channels"]).split(",")[0]}
        channel: Channel | None = None
        thread_ts: str | None = None
        if args.get("channel_id"):
            found = self._writable(args, "channel_id")
            if isinstance(found, Failure):
                return found
            channel = found
            thread = self._thread(channel, args)
            if isinstance(thread, Failure):
                return thread
            thread_ts = thread
        blocks = args.get("blocks")
        if blocks is not None and (problems := block_problems(blocks)):
            return Failure("invalid_blocks", tuple(problems))
        made: list[FakeFile] = []
        for item, file_id in zip(items, ids, strict=True):
            upload = self._uploads.pop(file_id)
            name = str(upload["name"])
            made.append(
                FakeFile(
                    id=file_id,
                    name=name,
                    title=str(item.get("title") or name),
                    filetype=filetype_of(name),
                    content=bytes(upload["content"]),
                    alt_txt=upload["alt_txt"],
                    channel=channel.id if channel else None,
                    thread_ts=thread_ts,
                )
            )
        if channel is not None:
            extra: JsonDict = {"subtype": "file_share", "upload": True, "display_as_bot": False}
            extra["files"] = [self._file_object(f) for f in made]
            if blocks is not None:
                extra["blocks"] = with_block_ids(blocks)
            text = str(args.get("initial_comment") or "")
            message = self.world.post_as_bot(
                channel.id, text=text, thread_ts=thread_ts, extra=extra
            )
            made = [replace(f, message_ts=message["ts"]) for f in made]
            self._status.pop((channel.id, thread_ts or ""), None)
        for file in made:
            self.world.files[file.id] = file
        return {"files": [{"id": f.id, "title": f.title} for f in made]}

    def _file_object(self, file: FakeFile) -> JsonDict:
        obj: JsonDict = {
            "id": file.id,
            "created": 1_700_000_000,
            "timestamp": 1_700_000_000,
            "name": file.name,
            "title": file.title,
            "mimetype": self.mimetype(file),
            "filetype": file.filetype,
            "pretty_type": file.filetype.upper(),
            "user": self.bot_user_id,
            "user_team": self.team_id,
            "editable": False,
            "size": len(file.content),
            "mode": "hosted",
            "is_external": False,
            "is_public": False,
            "url_private": f"{self.base_url}files-pri/{file.id}/{file.name}",
            "permalink": f"{DOMAIN}/files/{self.bot_user_id}/{file.id}/{file.name}",
        }
        if file.alt_txt is not None:
            obj["alt_txt"] = file.alt_txt
        return obj

    def _file_info(self, args: JsonDict) -> JsonDict | Failure:
        file = self.files.get(str(args.get("file", "")))
        if file is None:
            return Failure("file_not_found")
        if file.deleted:
            return Failure("file_deleted")
        obj = self._file_object(file)
        shares: JsonDict = {}
        for visibility, share in self.world.iter_shares(file):
            shares.setdefault(visibility, {})[file.channel] = [share]
        obj["shares"] = shares
        obj["channels"] = [file.channel] if "public" in shares else []
        obj["groups"] = [file.channel] if "private" in shares else []
        obj["is_public"] = "public" in shares
        return {"file": obj}

    def _file_delete(self, args: JsonDict) -> JsonDict | Failure:
        file = self.files.get(str(args.get("file", "")))
        if file is None:
            return Failure("file_not_found")
        if file.deleted:
            return Failure("file_deleted")
        self.world.files[file.id] = replace(file, deleted=True)
        if file.channel and file.message_ts:
            message = self.world.message(file.channel, file.message_ts)
            if message is not None:
                files = [
                    {"id": f["id"], "mode": "tombstone"} if f.get("id") == file.id else f
                    for f in message.get("files", [])
                ]
                self.world.change(file.channel, file.message_ts, {"files": files})
        return {}

    def _views_publish(self, args: JsonDict) -> JsonDict | Failure:
        user = str(args.get("user_id", ""))
        if user not in self.world.users:
            return Failure("user_not_found")
        view = args.get("view")
        if not isinstance(view, dict) or view.get("type") != "home":
            return Failure("invalid_arguments", ("[ERROR] view.type must be home",))
        problems = block_problems(view.get("blocks", []), max_blocks=100)
        if problems:
            return Failure("invalid_arguments", tuple(problems))
        stored = copy.deepcopy(view)
        stored["blocks"] = with_block_ids(stored.get("blocks", []))
        self.home_views[user] = stored
        published = {"id": new_id("V"), "team_id": self.team_id, "app_id": self.app_id}
        published |= {"bot_id": self.bot_id, "hash": f"{int(time.time())}.{secrets.token_hex(4)}"}
        return {"view": published | stored}
