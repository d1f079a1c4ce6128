"""What the fake Web API's methods share: records, argument reading, channel and message lookups."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

from trellis_slack.fakes.slack_content import MAX_MARKDOWN, content_failure, with_block_ids
from trellis_slack.fakes.slack_model import Channel, Failure, FakeFile, JsonDict
from trellis_slack.fakes.slack_streams import DEFAULT_STREAM_LIFETIME, Stream
from trellis_slack.fakes.slack_workspace import Workspace

__all__ = ["ApiBase", "Handler", "optional_str", "truthy"]

Handler = Callable[[JsonDict], "JsonDict | Failure"]


def truthy(value: object) -> bool:
    """Slack's reading of a boolean argument (``true``, ``1``, …)."""
    return value in (True, 1, "1", "true", "True")


def optional_str(value: object) -> str | None:
    """A non-empty string argument, or ``None``."""
    return value if isinstance(value, str) and value else None


class ApiBase:
    """The state of the fake Web API and the lookups every family of methods uses."""

    def __init__(self, world: Workspace, base_url: str = "http://127.0.0.1/") -> None:
        self.world = world
        #: Where upload URLs and ``url_private`` point (the server sets it once listening).
        self.base_url = base_url
        self.ephemerals: list[JsonDict] = []
        self.statuses: list[JsonDict] = []
        #: The arguments of every ``assistant.threads.setSuggestedPrompts`` call that succeeded.
        self.suggested_prompts: list[JsonDict] = []
        self.home_views: dict[str, JsonDict] = {}
        #: Streamed messages by ``ts``.
        self.streams: dict[str, Stream] = {}
        #: Channels where ``chat.startStream`` is refused, and the error it answers.
        self.stream_refusals: dict[str, str] = {}
        #: Seconds a stream lives; an assistant status lives ``status_lifetime`` without a post.
        self.stream_lifetime = DEFAULT_STREAM_LIFETIME
        self.status_lifetime = 120.0
        #: The app is declared as an agent (``features.agent_view``), not an assistant.
        self.agent_app = True
        #: The clock lifetimes are measured on (tests may replace it).
        self.now: Callable[[], float] = time.monotonic
        #: (channel, thread_ts) -> (status, when it was set); a post in the thread clears it.
        self._status: dict[tuple[str, str], tuple[str, float]] = {}
        self._uploads: dict[str, JsonDict] = {}

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
        failure = content_failure(text, blocks, attachments, self.files)
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
