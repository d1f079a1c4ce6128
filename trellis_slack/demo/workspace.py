"""Who and where the demo page shows, and the pure steps between what is typed, stored and drawn."""

from __future__ import annotations

import copy
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from trellis_slack.demo.answers import Suggestion

__all__ = [
    "DemoWorkspace",
    "Person",
    "Room",
    "after",
    "diff",
    "editable_text",
    "only_you",
    "slack_text",
]

JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Person:
    """Someone in the demo workspace (the bot included)."""

    id: str
    name: str
    is_bot: bool = False


@dataclass(frozen=True, slots=True)
class Room:
    """A conversation the page shows: a channel, or the DM with the bot (``kind="im"``)."""

    id: str
    name: str
    kind: str
    topic: str = ""


@dataclass(frozen=True, slots=True)
class DemoWorkspace:
    """What the page needs to know besides the messages: who is who, and where."""

    name: str
    me: str
    bot: str
    people: tuple[Person, ...]
    rooms: tuple[Room, ...]
    suggestions: tuple[Suggestion, ...] = ()
    #: Slash commands the app has (others are refused, as Slack does).
    commands: tuple[str, ...] = ("/trellis",)

    def as_json(self) -> JsonDict:
        """The workspace as the page reads it."""
        return asdict(self)

    def room(self, room_id: object) -> Room | None:
        """The room with that id, if the page shows it."""
        return next((r for r in self.rooms if r.id == room_id), None)


def slack_text(typed: str, people: Sequence[Person]) -> str:
    """What Slack stores when someone types ``typed``: ``&<>`` escaped, ``@name`` → ``<@ID>``.

    A name matches whole and case-insensitively (``@Trellis``, ``@trellis,``), never inside a
    longer word or an e-mail address (``x@trellis.example``).
    """
    text = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for person in sorted(people, key=lambda p: len(p.name), reverse=True):
        pattern = rf"(?<![\w@.])@{re.escape(person.name)}(?![\w-]|\.\w)"
        text = re.sub(pattern, f"<@{person.id}>", text, flags=re.IGNORECASE)
    return text


def editable_text(text: str, people: Sequence[Person]) -> str:
    """The inverse of :func:`slack_text`: the stored text as the person typed it."""
    names = {p.id: p.name for p in people}

    def mention(match: re.Match[str]) -> str:
        return "@" + (match.group(2) or names.get(match.group(1), match.group(1)))

    text = re.sub(r"<@([UWB][A-Z0-9]+)(?:\|([^>]*))?>", mention, text)
    return html.unescape(text) if "&" in text else text


def diff(old: Mapping[str, JsonDict], new: Mapping[str, JsonDict]) -> list[JsonDict]:
    """The operations that turn ``old`` into ``new``: ``put`` new or changed items, ``drop`` gone ones."""
    ops: list[JsonDict] = [{"op": "drop", "key": key} for key in old if key not in new]
    ops += [
        {"op": "put", "key": key, "item": item} for key, item in new.items() if old.get(key) != item
    ]
    return ops


def after(ts: str) -> str:
    """A ``ts`` just after ``ts``, to place something the page made itself after what it follows."""
    return f"{Decimal(ts) + Decimal('0.000001'):.6f}"


def only_you(
    channel: str,
    ts: str,
    user: str,
    body: Mapping[str, Any],
    *,
    thread_ts: object = None,
) -> JsonDict:
    """A message only the person sees (an ephemeral, a command's reply), as the page draws it."""
    return {
        "kind": "ephemeral",
        "channel": channel,
        "ts": ts,
        "message": {
            "ts": ts,
            "user": user,
            "text": str(body.get("text", "")),
            "blocks": copy.deepcopy(body.get("blocks") or []),
            "thread_ts": thread_ts,
        },
    }
