"""The fake Web API's assistant family: a thread's status and the suggested prompts."""

from __future__ import annotations

import copy
from typing import Final

from trellis_slack.fakes.slack_api_base import ApiBase, optional_str
from trellis_slack.fakes.slack_model import Failure, JsonDict

__all__ = ["AssistantMethods"]

#: ``loading_messages`` of ``assistant.threads.setStatus``: at most ten.
MAX_LOADING_MESSAGES: Final = 10
#: ``prompts`` of ``assistant.threads.setSuggestedPrompts``: at most four.
MAX_PROMPTS: Final = 4


def _invalid(reason: str) -> Failure:
    return Failure("invalid_arguments", (f"[ERROR] {reason}",))


class AssistantMethods(ApiBase):
    """``assistant.threads.*``.

    A status shows in a thread until the bot posts there, until it is set to ``""``, or for
    :attr:`status_lifetime` seconds (Slack: two minutes without a message). Suggested prompts
    (at most four ``{title, message}``) are recorded for tests in :attr:`suggested_prompts`
    when they take effect: an agent app's call with a ``thread_ts`` succeeds and does nothing,
    as Slack's docs warn (:attr:`agent_app`, on by default as the manifest declares
    ``agent_view``).
    """

    def status(self, channel: str, thread_ts: str) -> str:
        """The assistant status shown in a thread now."""
        shown = self._status.get((channel, thread_ts))
        if shown is None or self.now() - shown[1] >= self.status_lifetime:
            return ""
        return shown[0]

    def loading_messages(self, channel: str, thread_ts: str) -> list[str]:
        """The loading messages of the status shown in a thread now (empty when none shows)."""
        if not self.status(channel, thread_ts):
            return []
        for args in reversed(self.statuses):
            if args.get("channel_id") == channel and args.get("thread_ts") == thread_ts:
                return list(args.get("loading_messages") or [])
        return []

    def _set_status(self, args: JsonDict) -> JsonDict | Failure:
        channel = self._channel(args, "channel_id")
        if isinstance(channel, Failure):
            return channel
        thread_ts = optional_str(args.get("thread_ts"))
        if thread_ts is None or not isinstance(args.get("status"), str):
            return _invalid("thread_ts and status are required")
        if self.world.message(channel.id, thread_ts) is None:
            return Failure("invalid_thread_ts")
        loading = args.get("loading_messages")
        if loading is not None and (
            not isinstance(loading, list) or not all(isinstance(m, str) for m in loading)
        ):
            return _invalid("loading_messages must be an array of strings")
        if isinstance(loading, list) and len(loading) > MAX_LOADING_MESSAGES:
            return _invalid(f"no more than {MAX_LOADING_MESSAGES} loading_messages")
        self.statuses.append(copy.deepcopy(args))
        if args["status"]:
            self._status[(channel.id, thread_ts)] = (str(args["status"]), self.now())
        else:
            self._status.pop((channel.id, thread_ts), None)
        return {}

    def _set_suggested_prompts(self, args: JsonDict) -> JsonDict | Failure:
        channel = self._channel(args, "channel_id")
        if isinstance(channel, Failure):
            return channel
        prompts = args.get("prompts")
        if not isinstance(prompts, list) or not prompts:
            return _invalid("missing required field: prompts")
        if len(prompts) > MAX_PROMPTS:
            return _invalid(f"no more than {MAX_PROMPTS} prompts")
        for prompt in prompts:
            if not isinstance(prompt, dict) or not all(
                isinstance(prompt.get(k), str) and prompt[k] for k in ("title", "message")
            ):
                return _invalid("each prompt needs a title and a message")
        thread_ts = optional_str(args.get("thread_ts"))
        if thread_ts is not None and self.world.message(channel.id, thread_ts) is None:
            return Failure("invalid_thread_ts")
        title = args.get("title")
        if title is not None and not isinstance(title, str):
            return _invalid("title must be a string")
        if thread_ts is not None and self.agent_app:
            # Slack's docs: for an agent app, a call with thread_ts "will silently fail".
            return {}
        self.suggested_prompts.append(copy.deepcopy(args))
        return {}
