"""What the demo page shows the person: messages, streams, Slack's status and prompts, ephemerals."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from trellis_slack.demo.workspace import DemoWorkspace, after, only_you
from trellis_slack.fakes.slack_api_base import truthy
from trellis_slack.fakes.slack_server import FakeSlack

__all__ = ["PageView"]

JsonDict = dict[str, Any]


class PageView:
    """Everything the person sees, read from the fake Slack plus what the page made itself.

    Replies sent to a ``response_url`` belong to the latest command or click (with one person at
    the keyboard that is the one they answer): :meth:`expect_replies` marks where they go.
    Slack's AI surface comes from what the fake recorded: a streamed message carries its
    ``stream`` (state and task cards, as ``FakeSlack.stream_of`` has them), a thread with an
    assistant status shown gets a ``status`` item, and the latest suggested prompts of a
    conversation a ``prompts`` item. An ``image`` block showing an uploaded file gets the
    ``demo_url`` the page loads it from.
    """

    def __init__(
        self, slack: FakeSlack, workspace: DemoWorkspace, changed: Callable[[], None]
    ) -> None:
        self.slack = slack
        self.workspace = workspace
        self._changed = changed
        self._local: dict[str, JsonDict] = {}
        self._reply_marks: list[tuple[int, str]] = []
        self._placed: dict[int, str] = {}

    def items(self) -> dict[str, JsonDict]:
        """Everything the person sees, by key: messages, their ephemerals, command replies."""
        me = self.workspace.me
        rooms = {r.id for r in self.workspace.rooms}
        items: dict[str, JsonDict] = {}
        for room in self.workspace.rooms:
            streams = {s.ts: s for s in self.slack.streams(room.id)}
            for message in self.slack.messages(room.id):
                stream = streams.get(message["ts"])
                if stream is not None:
                    message["stream"] = {
                        "state": stream.state,
                        "tasks": list(stream.tasks.values()),
                    }
                items[f"m {room.id} {message['ts']}"] = {
                    "kind": "message",
                    "channel": room.id,
                    "ts": message["ts"],
                    "message": self._with_file_urls(message),
                }
                if status := self.slack.status(room.id, message["ts"]):
                    items[f"s {room.id} {message['ts']}"] = {
                        "kind": "status",
                        "channel": room.id,
                        "ts": message["ts"],
                        "status": status,
                        "loading_messages": self.slack.loading_messages(room.id, message["ts"]),
                    }
            items.update(self._prompts(room.id))
        for ephemeral in self.slack.ephemerals:
            if ephemeral.get("user") == me and ephemeral.get("channel") in rooms:
                ts = str(ephemeral["message_ts"])
                items[f"e {ephemeral['channel']} {ts}"] = only_you(
                    ephemeral["channel"],
                    ts,
                    self.workspace.bot,
                    ephemeral,
                    thread_ts=ephemeral.get("thread_ts"),
                )
        items.update(self._response_items())
        items.update(self._local)
        return items

    def _response_items(self) -> dict[str, JsonDict]:
        """``response_url`` replies that Slack shows only to the person (not replacements)."""
        items: dict[str, JsonDict] = {}
        for index, body in enumerate(self.slack.responses):
            channel = next((c for at, c in reversed(self._reply_marks) if at <= index), None)
            quiet = not any(truthy(body.get(k)) for k in ("replace_original", "delete_original"))
            if channel is None or not quiet or body.get("response_type") == "in_channel":
                continue
            # Placed once, when first seen: below what was there then, and staying put.
            ts = self._placed.setdefault(index, self.latest_ts(channel))
            items[f"r {index}"] = only_you(channel, ts, self.workspace.bot, body)
        return items

    def latest_ts(self, channel: str) -> str:
        """A ``ts`` just after everything in ``channel`` so far (placing the page's own notes)."""
        stamps = [m["ts"] for m in self.slack.messages(channel)]
        stamps += [e["message_ts"] for e in self.slack.ephemerals if e.get("channel") == channel]
        stamps += [i["ts"] for k, i in self._local.items() if i["channel"] == channel]
        return after(max(stamps, key=Decimal, default="1700000000.000000"))

    def _prompts(self, channel: str) -> dict[str, JsonDict]:
        """The conversation's suggested prompts, as last set for it (not for one thread)."""
        for args in reversed(self.slack.suggested_prompts):
            if args.get("channel_id") == channel and not args.get("thread_ts"):
                prompts = [p for p in args.get("prompts") or [] if isinstance(p, dict)]
                return {
                    f"p {channel}": {
                        "kind": "prompts",
                        "channel": channel,
                        "ts": "0",
                        "title": str(args.get("title") or ""),
                        "prompts": prompts,
                    }
                }
        return {}

    def _with_file_urls(self, message: JsonDict) -> JsonDict:
        for file in message.get("files") or []:
            if isinstance(file, dict) and file.get("mode") != "tombstone" and "id" in file:
                name = str(file.get("name") or "file")
                file["demo_url"] = f"/files/{file['id']}/{name}"
        for file_id, block in _images(message):
            file = self.slack.files.get(file_id)
            if file is not None and not file.deleted:
                block["demo_url"] = f"/files/{file.id}/{file.name}"
        return message

    def shows_file(self, file_id: str) -> bool:
        """Whether a message the page shows has an ``image`` block of this uploaded file."""
        return any(
            found == file_id
            for room in self.workspace.rooms
            for message in self.slack.messages(room.id)
            for found, _ in _images(message)
        )

    def note(self, channel: str, text: str, *, thread_ts: str | None = None) -> None:
        """Show the person a note from Slack itself (an unknown command, a timeout)."""
        ts = self.latest_ts(channel)
        self._local[f"n {len(self._local)}"] = only_you(
            channel, ts, "USLACKBOT", {"text": text}, thread_ts=thread_ts
        )
        self._changed()

    def expect_replies(self, channel: str) -> None:
        """``response_url`` replies from now on answer something done in ``channel``."""
        self._reply_marks.append((len(self.slack.responses), channel))

    def command_reply(self, key: str, channel: str, reply: Mapping[str, Any]) -> None:
        """Show the person a command's reply (only to them), below what is there now."""
        ts = self.latest_ts(channel)
        self._local[key] = only_you(channel, ts, self.workspace.bot, reply)
        self._changed()


def _images(message: JsonDict) -> list[tuple[str, JsonDict]]:
    """The ``image`` blocks of a message that show an uploaded file: (file id, block)."""
    found: list[tuple[str, JsonDict]] = []
    for block in message.get("blocks") or []:
        if not isinstance(block, dict) or block.get("type") != "image":
            continue
        source = block.get("slack_file")
        if isinstance(source, dict) and source.get("id"):
            found.append((str(source["id"]), block))
    return found
