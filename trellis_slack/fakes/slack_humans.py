"""What people do in the fake Slack: post, edit, delete, click, vote, Stop, run commands, open Home."""

from __future__ import annotations

import copy
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from trellis_slack.fakes.slack_api_files import filetype_of
from trellis_slack.fakes.slack_content import find_action, first_link
from trellis_slack.fakes.slack_model import Ack, Channel, FakeFile, JsonDict, new_id
from trellis_slack.fakes.slack_records import SlackRecords

__all__ = ["HumanActions", "HumanFile"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HumanFile:
    """A file a person attaches to a message; ``mimetype``/``size`` override what Slack derives."""

    name: str
    content: bytes
    mimetype: str | None = None
    size: int | None = None


class HumanActions(SlackRecords):
    """Human actions: each changes the world and sends the events Slack sends, as envelopes."""

    def _require(self, channel: str, user: str | None = None) -> Channel:
        if channel not in self._world.channels:
            raise KeyError(f"unknown channel {channel!r}: call add_channel first")
        if user is not None and user not in self._world.users:
            raise KeyError(f"unknown user {user!r}: call add_user first")
        return self._world.channels[channel]

    def _require_message(self, channel: str, ts: str) -> JsonDict:
        self._require(channel)
        message = self._world.message(channel, ts)
        if message is None:
            raise KeyError(f"no message {ts} in {channel}")
        return message

    async def post(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        mention_order: Literal["mention_first", "message_first"] = "mention_first",
    ) -> str:
        """A person posts; sends ``message`` (and ``app_mention`` outside IMs); returns its ts."""
        self._require(channel, user)
        root = None
        if thread_ts is not None:
            root = self._world.thread_root(channel, thread_ts)
            if root is None:
                raise KeyError(f"no message {thread_ts} in {channel} to reply to")
        message = self._world.post_as_human(
            channel, user, text, thread_ts=root, mention_first=mention_order == "mention_first"
        )
        self._flush()
        return str(message["ts"])

    async def post_with_files(
        self,
        channel: str,
        user: str,
        text: str,
        files: Sequence[HumanFile],
        *,
        thread_ts: str | None = None,
    ) -> str:
        """A person posts a message with files (subtype ``file_share``, ``files`` as Slack sends).

        Each file's ``url_private`` is served only with the bot token, as Slack does.
        """
        self._require(channel, user)
        root = None if thread_ts is None else self._world.thread_root(channel, thread_ts)
        if thread_ts is not None and root is None:
            raise KeyError(f"no message {thread_ts} in {channel} to reply to")
        objects = []
        for attached in files:
            name = attached.name
            file = FakeFile(new_id("F"), name, name, filetype_of(name), attached.content, None)
            self._world.files[file.id] = file
            obj = self._api._file_object(file) | {"user": user}
            if attached.mimetype is not None:
                obj["mimetype"] = attached.mimetype
            if attached.size is not None:
                obj["size"] = attached.size
            objects.append(obj)
        message = self._world.post_as_human(
            channel,
            user,
            text,
            thread_ts=root,
            extra={"subtype": "file_share", "upload": False, "files": objects},
        )
        self._flush()
        return str(message["ts"])

    async def edit(self, channel: str, ts: str, text: str) -> None:
        """The author edits a message: ``message_changed`` (and ``app_mention`` with ``edited``)."""
        self._require_message(channel, ts)
        self._world.edit_as_human(channel, ts, text)
        self._flush()

    async def delete(self, channel: str, ts: str) -> None:
        """A message is deleted: ``message_deleted``, or a tombstone for a parent with replies."""
        self._require_message(channel, ts)
        self._world.delete(channel, ts)
        self._flush()

    async def unfurl(self, channel: str, ts: str) -> None:
        """Slack unfurls a link: ``message_changed`` with the same text and ``attachments``."""
        message = self._require_message(channel, ts)
        url = first_link(str(message.get("text", ""))) or "https://example.com/"
        attachment = {
            "id": 1,
            "from_url": url,
            "original_url": url,
            "title": "Example page",
            "title_link": url,
            "text": "An example page.",
            "fallback": "Example page",
            "service_name": "example.com",
        }
        self._world.change(channel, ts, {"attachments": [attachment]})
        self._flush()

    def _response_url(self, **context: Any) -> str:
        token = secrets.token_urlsafe(12)
        self._response_urls[token] = context
        return f"{self.base_url}response/{token}"

    async def click(
        self,
        channel: str,
        message_ts: str,
        action_id: str,
        *,
        user: str,
        value: str | None = None,
        seen_blocks: list[JsonDict] | None = None,
    ) -> Ack:
        """A person clicks a button: a ``block_actions`` envelope; returns the app's ack.

        ``seen_blocks`` are the blocks as the person's client still shows them: a click on a
        button the bot has since removed (a stale view, or two people clicking at once).
        """
        block_id, element = self._element(channel, message_ts, action_id, user, seen_blocks)
        action: JsonDict = {
            "action_id": action_id,
            "block_id": block_id,
            "type": element.get("type", "button"),
            "action_ts": self._world.clock.next(),
        }
        if "text" in element:
            action["text"] = copy.deepcopy(element["text"])
        chosen = value if value is not None else element.get("value")
        if chosen is not None:
            action["value"] = chosen
        return await self._block_action(channel, message_ts, user, action)

    async def feedback(
        self,
        channel: str,
        message_ts: str,
        vote: Literal["positive", "negative"],
        *,
        user: str,
        action_id: str | None = None,
        seen_blocks: list[JsonDict] | None = None,
    ) -> Ack:
        """A person clicks 👍 or 👎 of a ``feedback_buttons`` element; returns the app's ack.

        Slack sends ``block_actions`` whose action has ``type: feedback_buttons``, the
        element's ``action_id``, and the chosen button's ``value`` and ``text``. Without
        ``action_id`` the message's only feedback element is clicked.
        """
        if action_id is None:
            action_id = self._feedback_action_id(channel, message_ts, seen_blocks)
        block_id, element = self._element(channel, message_ts, action_id, user, seen_blocks)
        if element.get("type") != "feedback_buttons":
            raise KeyError(f"{action_id!r} in message {message_ts} is no feedback_buttons")
        button = element[f"{vote}_button"]
        action: JsonDict = {
            "type": "feedback_buttons",
            "action_id": action_id,
            "block_id": block_id,
            "value": button["value"],
            "text": copy.deepcopy(button["text"]),
            "action_ts": self._world.clock.next(),
        }
        return await self._block_action(channel, message_ts, user, action)

    def _source(self, channel: str, message_ts: str) -> tuple[JsonDict, bool]:
        """The message (or ephemeral) clicked in, and whether it is an ephemeral."""
        message = self._world.message(channel, message_ts)
        if message is not None:
            return message, False
        for ephemeral in self.ephemerals:
            if ephemeral["channel"] == channel and ephemeral["message_ts"] == message_ts:
                return ephemeral, True
        raise KeyError(f"no message {message_ts} in {channel}")

    def _feedback_action_id(
        self, channel: str, message_ts: str, seen_blocks: list[JsonDict] | None
    ) -> str:
        self._require(channel)
        source, _ = self._source(channel, message_ts)
        blocks = seen_blocks if seen_blocks is not None else source.get("blocks") or []
        found = [
            str(element.get("action_id", ""))
            for block in blocks
            if isinstance(block, dict) and block.get("type") == "context_actions"
            for element in block.get("elements") or []
            if isinstance(element, dict) and element.get("type") == "feedback_buttons"
        ]
        if len(found) != 1:
            raise KeyError(f"message {message_ts} has {len(found)} feedback elements, not one")
        return found[0]

    def _element(
        self,
        channel: str,
        message_ts: str,
        action_id: str,
        user: str,
        seen_blocks: list[JsonDict] | None,
    ) -> tuple[str, JsonDict]:
        self._require(channel, user)
        source, _ = self._source(channel, message_ts)
        found = find_action(
            seen_blocks if seen_blocks is not None else source.get("blocks"), action_id
        )
        if found is None:
            raise KeyError(f"no element with action_id {action_id!r} in message {message_ts}")
        return found

    async def _block_action(
        self, channel: str, message_ts: str, user: str, action: JsonDict
    ) -> Ack:
        """Send the ``block_actions`` envelope of one action in a message; returns the ack."""
        chan = self._require(channel, user)
        source, ephemeral = self._source(channel, message_ts)
        person = self._world.users[user]
        container: JsonDict = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": ephemeral,
        }
        thread_ts = source.get("thread_ts")
        if thread_ts:
            container["thread_ts"] = thread_ts
        payload: JsonDict = {
            "type": "block_actions",
            "user": {
                "id": user,
                "username": person.name,
                "name": person.name,
                "team_id": person.team_id,
            },
            "api_app_id": self.app_id,
            "token": "fake-verification-token",
            "container": container,
            "trigger_id": f"{secrets.randbelow(10**10)}.{secrets.token_hex(8)}",
            "team": {"id": self.team_id, "domain": "fake-workspace"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": chan.name},
            "state": {"values": {}},
            "response_url": self._response_url(channel=channel, message_ts=message_ts),
            "actions": [action],
        }
        if not ephemeral:
            payload["message"] = copy.deepcopy(source)
        envelope = self._enqueue("interactive", payload)
        return await self.wait_for_ack(envelope.envelope_id)

    async def slash(self, command: str, text: str, *, channel: str, user: str) -> Ack:
        """A person runs a slash command: a ``slash_commands`` envelope; returns the ack."""
        chan = self._require(channel, user)
        self._world.join(channel, user)
        payload = {
            "token": "fake-verification-token",
            "team_id": self.team_id,
            "team_domain": "fake-workspace",
            "channel_id": channel,
            "channel_name": chan.name if chan.kind != "im" else "directmessage",
            "user_id": user,
            "user_name": self._world.users[user].name,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url(channel=channel),
            "trigger_id": f"{secrets.randbelow(10**10)}.{secrets.token_hex(8)}",
        }
        envelope = self._enqueue("slash_commands", payload, accepts_response_payload=True)
        return await self.wait_for_ack(envelope.envelope_id)

    async def open_home(self, user: str, tab: Literal["home", "messages"] = "home") -> Ack:
        """A person opens the app's Home or Messages tab: ``app_home_opened``; returns the ack."""
        if user not in self._world.users:
            raise KeyError(f"unknown user {user!r}: call add_user first")
        im = self._world.im_with(user)
        event: JsonDict = {
            "type": "app_home_opened",
            "user": user,
            "channel": im.id if im is not None else "D" + user[1:],
            "tab": tab,
            "event_ts": self._world.clock.next(),
        }
        if tab == "home" and user in self.home_views:
            event["view"] = copy.deepcopy(self.home_views[user])
        envelope_id = await self.send_event(event)
        return await self.wait_for_ack(envelope_id)

    async def stop_agent(self, channel: str, thread_ts: str, *, user: str) -> Ack:
        """A person clicks Slack's own Stop in an agent conversation: ``agent_session_stopped``.

        Slack stops the app's live streams in that thread first; the event lists their ``ts``
        in ``streaming_message_ts`` (empty when none was streaming). Returns the ack.
        """
        self._require(channel, user)
        stopped = self._api.stop_streams_in(channel, thread_ts)
        self._flush()
        event: JsonDict = {
            "type": "agent_session_stopped",
            "channel": channel,
            "thread_ts": thread_ts,
            "streaming_message_ts": stopped,
            "user": user,
            "event_ts": self._world.clock.next(),
        }
        envelope_id = await self.send_event(event)
        return await self.wait_for_ack(envelope_id)

    async def send_event(
        self, event: JsonDict, *, retry_attempt: int = 0, retry_reason: str | None = None
    ) -> str:
        """Send a raw event in an ``event_callback`` envelope; returns the envelope id."""
        payload = self._world.event_callback(copy.deepcopy(event))
        envelope = self._enqueue(
            "events_api", payload, retry_attempt=retry_attempt, retry_reason=retry_reason
        )
        return envelope.envelope_id

    async def redeliver(
        self, envelope_id: str, *, retry_attempt: int = 1, retry_reason: str = "timeout"
    ) -> str:
        """Send an envelope's payload again as a fresh envelope with the retry fields set."""
        original = self._envelope_by_id.get(envelope_id)
        if original is None:
            raise KeyError(f"no envelope {envelope_id!r} was sent")
        return self._redeliver(original, retry_attempt, retry_reason).envelope_id
