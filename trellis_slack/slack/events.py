"""Slack's JSON parsed once: what an event, a button click, a slash command or a Home visit means.

Messages and mentions become a question, an edit, a deletion or noise (`classify_message`,
`classify_app_mention`); button clicks, ``/trellis`` payloads and ``app_home_opened`` become small
typed values (`parse_button`, `parse_slash_command`, `parse_home_opened`). Nothing here does I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from trellis_slack.slack.interactions import (
    ButtonClick,
    HomeOpened,
    SlashCommand,
    parse_button,
    parse_home_opened,
    parse_slash_command,
)
from trellis_slack.slack.interactions import non_empty as _str
from trellis_slack.slack.text import mentioned_user_ids, question_text

__all__ = [
    "BotIdentity",
    "ButtonClick",
    "Deletion",
    "Edit",
    "HomeOpened",
    "Ignore",
    "Meaning",
    "Question",
    "SlackFile",
    "SlashCommand",
    "classify_app_mention",
    "classify_message",
    "mentioned_user_ids",
    "parse_button",
    "parse_home_opened",
    "parse_slash_command",
    "question_text",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who the app is in this workspace (from `auth.test`)."""

    user_id: str
    bot_id: str
    team_id: str


@dataclass(frozen=True, slots=True)
class SlackFile:
    """A file attached to a message; ``size`` None when Slack did not say."""

    id: str
    name: str
    mimetype: str | None
    size: int | None
    url_private: str | None


@dataclass(frozen=True, slots=True)
class Question:
    """A human asked something: a new question or a follow-up candidate."""

    team_id: str
    channel_id: str
    ts: str
    thread_ts: str | None  # None: a top-level message
    user_id: str
    user_team_id: str | None
    text: str  # raw Slack text
    mentioned: bool  # the bot is @mentioned
    is_dm: bool  # channel_type "im"
    files: tuple[SlackFile, ...] = ()  # attached to the message (subtype file_share)

    @property
    def reply_thread_ts(self) -> str:
        """The thread the bot answers in: the message's thread, or a new one under it."""
        return self.thread_ts or self.ts


@dataclass(frozen=True, slots=True)
class Edit:
    """A human really changed the text of a message."""

    team_id: str
    channel_id: str
    ts: str
    thread_ts: str | None
    user_id: str
    user_team_id: str | None
    text: str
    previous_text: str
    mentioned: bool
    is_dm: bool
    #: ``message.edited.ts``: unique per edit, so redeliveries of one edit can be told apart from
    #: a later edit back to the same text.
    edited_ts: str = ""


@dataclass(frozen=True, slots=True)
class Deletion:
    """A human message was deleted (or a thread parent turned into a tombstone)."""

    team_id: str
    channel_id: str
    ts: str
    thread_ts: str | None


@dataclass(frozen=True, slots=True)
class Ignore:
    """Nothing to do; `reason` says why, for the debug log."""

    reason: str


Meaning = Question | Edit | Deletion | Ignore

#: Subtypes of a `message` a human posts as a new message.
_HUMAN_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
#: Slackbot posts as this user, with no `bot_id`.
_SLACKBOT = "USLACKBOT"
#: Why a `message_changed` with unchanged text is not an edit: the first differing field wins.
_NON_EDITS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unfurl", ("attachments", "blocks")),
    ("reply count", ("reply_count", "reply_users", "reply_users_count", "latest_reply")),
    ("pin", ("pinned_to", "pinned_info")),
    ("reaction", ("reactions",)),
    ("files", ("files",)),
)


def _thread(message: Mapping[str, Any], ts: str) -> str | None:
    """The message's thread, None for a top-level message (a parent's thread_ts is its own ts)."""
    thread_ts = _str(message, "thread_ts")
    return None if thread_ts == ts else thread_ts


def _user_team(message: Mapping[str, Any]) -> str | None:
    """The author's team: differs from ours for Slack Connect users."""
    return _str(message, "user_team") or _str(message, "team")


def _is_dm(event: Mapping[str, Any], channel_id: str) -> bool:
    channel_type = _str(event, "channel_type")
    if channel_type is not None:
        return channel_type == "im"
    return channel_id.startswith("D")


def _mentions(text: str, user_id: str) -> bool:
    return user_id in mentioned_user_ids(text)


def _from_bot(message: Mapping[str, Any], bot: BotIdentity) -> Ignore | None:
    """An Ignore if `message` was posted by our bot or any other bot."""
    user = message.get("user")
    bot_id = message.get("bot_id")
    if user == bot.user_id or (bot_id and bot_id == bot.bot_id):
        return Ignore("own echo")
    if (
        bot_id
        or user == _SLACKBOT
        or message.get("subtype") == "bot_message"
        or message.get("bot_profile")
    ):
        return Ignore("bot message")
    return None


def _question(
    event: Mapping[str, Any], bot: BotIdentity, *, kind: str, mentioned: bool
) -> Question | Ignore:
    """A Question from a human's new message or mention, or why it is not one."""
    channel = _str(event, "channel")
    ts = _str(event, "ts")
    user = _str(event, "user")
    if channel is None or ts is None or user is None:
        fields = [name for name in ("channel", "ts", "user") if _str(event, name) is None]
        return Ignore(f"malformed {kind}: no {', '.join(fields)}")
    text = event.get("text")
    if text is not None and not isinstance(text, str):
        return Ignore(f"malformed {kind}: text is not a string")
    if not text or not text.strip():
        return Ignore("no text")
    return Question(
        team_id=bot.team_id,
        channel_id=channel,
        ts=ts,
        thread_ts=_thread(event, ts),
        user_id=user,
        user_team_id=_user_team(event),
        text=text,
        mentioned=mentioned or _mentions(text, bot.user_id),
        is_dm=_is_dm(event, channel),
        files=_files(event),
    )


def _files(message: Mapping[str, Any]) -> tuple[SlackFile, ...]:
    """The files attached to a message; entries without an id are skipped."""
    items = message.get("files")
    if not isinstance(items, list):
        return ()
    found = []
    for item in items:
        file_id = _str(item, "id") if isinstance(item, Mapping) else None
        if file_id is None:
            continue
        size = item.get("size")
        found.append(
            SlackFile(
                id=file_id,
                name=_str(item, "name") or _str(item, "title") or file_id,
                mimetype=_str(item, "mimetype"),
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                url_private=_str(item, "url_private_download") or _str(item, "url_private"),
            )
        )
    return tuple(found)


def _new_message(event: Mapping[str, Any], bot: BotIdentity) -> Meaning:
    return _from_bot(event, bot) or _question(event, bot, kind="message", mentioned=False)


def _bot_message(event: Mapping[str, Any], bot: BotIdentity) -> Meaning:
    return _from_bot(event, bot) or Ignore("bot message")


def _deletion(
    bot: BotIdentity, channel: str, ts: str, previous: object, thread_source: Mapping[str, Any]
) -> Deletion | Ignore:
    """A Deletion of `ts`, unless the deleted message was a bot's."""
    if isinstance(previous, Mapping):
        ignore = _from_bot(previous, bot)
        if ignore is not None:
            return ignore
    return Deletion(
        team_id=bot.team_id, channel_id=channel, ts=ts, thread_ts=_thread(thread_source, ts)
    )


def _not_edit_reason(message: Mapping[str, Any], previous: Mapping[str, Any]) -> str:
    for reason, keys in _NON_EDITS:
        if any(message.get(key) != previous.get(key) for key in keys):
            return reason
    return "unchanged text"


def _changed(event: Mapping[str, Any], bot: BotIdentity) -> Meaning:
    """`message_changed`: a real edit, a tombstoned thread parent, or noise (unfurls, replies)."""
    channel = _str(event, "channel")
    message = event.get("message")
    if channel is None or not isinstance(message, Mapping):
        return Ignore("malformed message_changed: no channel or message")
    ts = _str(message, "ts")
    if ts is None:
        return Ignore("malformed message_changed: no message.ts")
    previous = event.get("previous_message")
    if message.get("subtype") == "tombstone":
        return _deletion(bot, channel, ts, previous, message)
    ignore = _from_bot(message, bot)
    if ignore is not None:
        return ignore
    if message.get("subtype") not in _HUMAN_SUBTYPES:
        return Ignore(f"changed subtype {message.get('subtype')}")
    return _edit(event, bot, channel, ts)


def _edit(event: Mapping[str, Any], bot: BotIdentity, channel: str, ts: str) -> Edit | Ignore:
    """The Edit a `message_changed` of a human message carries, if its text really changed."""
    message: Mapping[str, Any] = event["message"]
    previous = event.get("previous_message")
    text = message.get("text", "")
    user = _str(message, "user")
    if not isinstance(previous, Mapping) or not isinstance(text, str) or user is None:
        return Ignore("malformed message_changed: no previous_message, text or user")
    previous_text = previous.get("text")
    if not isinstance(previous_text, str):
        previous_text = ""
    if text == previous_text:
        return Ignore(_not_edit_reason(message, previous))
    if message.get("edited") is None:
        return Ignore("text changed without an edit mark")
    return Edit(
        team_id=bot.team_id,
        channel_id=channel,
        ts=ts,
        thread_ts=_thread(message, ts),
        user_id=user,
        user_team_id=_user_team(message),
        text=text,
        previous_text=previous_text,
        mentioned=_mentions(text, bot.user_id),
        is_dm=_is_dm(event, channel),
        edited_ts=_edited_ts(message),
    )


def _edited_ts(message: Mapping[str, Any]) -> str:
    edited = message.get("edited")
    ts = edited.get("ts") if isinstance(edited, Mapping) else None
    return ts if isinstance(ts, str) else ""


def _deleted(event: Mapping[str, Any], bot: BotIdentity) -> Meaning:
    """`message_deleted`: a Deletion of `deleted_ts` unless a bot's message went."""
    channel = _str(event, "channel")
    ts = _str(event, "deleted_ts")
    if channel is None or ts is None:
        return Ignore("malformed message_deleted: no channel or deleted_ts")
    previous = event.get("previous_message")
    return _deletion(bot, channel, ts, previous, previous if isinstance(previous, Mapping) else {})


_HANDLERS: dict[str | None, Callable[[Mapping[str, Any], BotIdentity], Meaning]] = {
    None: _new_message,
    "file_share": _new_message,
    "thread_broadcast": _new_message,
    "bot_message": _bot_message,
    "message_changed": _changed,
    "message_deleted": _deleted,
}


def classify_message(event: Mapping[str, Any], bot: BotIdentity) -> Meaning:
    """What a `message` event of any subtype means; never raises on odd or malformed payloads."""
    if not isinstance(event, Mapping):
        return Ignore("malformed message: not an object")
    subtype = event.get("subtype")
    if subtype is not None and not isinstance(subtype, str):
        return Ignore("malformed message: subtype is not a string")
    handler = _HANDLERS.get(subtype)
    meaning = handler(event, bot) if handler is not None else Ignore(f"subtype {subtype}")
    if isinstance(meaning, Ignore):
        logger.debug("ignoring message event: %s", meaning.reason)
    return meaning


def classify_app_mention(event: Mapping[str, Any], bot: BotIdentity) -> Meaning:
    """What an `app_mention` event means; an edited mention is left to its `message_changed`."""
    if not isinstance(event, Mapping):
        return Ignore("malformed app_mention: not an object")
    if event.get("edited") is not None:
        return Ignore("edited mention")
    ignore = _from_bot(event, bot)
    if ignore is not None:
        return ignore
    subtype = event.get("subtype")
    if subtype not in _HUMAN_SUBTYPES:
        return Ignore(f"subtype {subtype}")
    return _question(event, bot, kind="app_mention", mentioned=True)


# --- buttons, slash commands and the App Home -----------------------------------------------------
