"""The fake Slack's world: users, channels, messages and files; each change queues Slack's events."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from trellis_slack.fakes.slack_content import MENTION, rich_text_blocks
from trellis_slack.fakes.slack_model import Channel, FakeFile, JsonDict, TsClock, User, new_id

__all__ = ["Workspace"]


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
        keep: tuple[str, ...] = ("user", "ts", "client_msg_id", "text", "team", "thread_ts")
        keep += ("parent_user_id", "files")  # a mention carries the message's files too
        event: JsonDict = {"type": "app_mention"}
        event |= {k: copy.deepcopy(message[k]) for k in keep if k in message}
        event |= {k: copy.deepcopy(message[k]) for k in ("bot_id", "edited") if k in message}
        event |= {"blocks": copy.deepcopy(message.get("blocks", []))}
        event |= {"channel": channel_id, "event_ts": event_ts}
        return event

    def mentions_bot(self, text: str) -> bool:
        """Whether ``text`` mentions the bot user."""
        return any(m.group(1) == self.bot_user_id for m in MENTION.finditer(text))

    # ------------------------------------------------------------ changes

    def post_as_human(
        self,
        channel_id: str,
        user_id: str,
        text: str,
        *,
        thread_ts: str | None = None,
        mention_first: bool = True,
        extra: JsonDict | None = None,
    ) -> JsonDict:
        """A person posts; queues ``message`` (and ``app_mention``) plus the parent's change."""
        ts = self.clock.next()
        message = self._human_message(self.users[user_id], text, ts)
        message |= copy.deepcopy(extra or {})
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
