"""The fake Web API's streaming methods: ``chat.startStream``, ``appendStream`` and ``stopStream``."""

from __future__ import annotations

import copy

from trellis_slack.fakes.slack_api_base import ApiBase, optional_str
from trellis_slack.fakes.slack_content import block_problems, with_block_ids
from trellis_slack.fakes.slack_data_blocks import message_problems
from trellis_slack.fakes.slack_model import Failure, JsonDict
from trellis_slack.fakes.slack_streams import (
    DISPLAY_MODES,
    MAX_STREAM_BLOCKS,
    Stream,
    chunk_problems,
)

__all__ = ["StreamMethods"]


def _invalid(reason: str) -> Failure:
    return Failure("invalid_arguments", (f"[ERROR] {reason}",))


def _message_failure(stream: Stream, args: JsonDict, final: object = None) -> Failure | None:
    """A message's limits (two charts, one table …) over all the blocks a stream would hold."""
    problems = message_problems(stream.message_blocks_after(args, final))
    return Failure("invalid_blocks", tuple(problems)) if problems else None


class StreamMethods(ApiBase):
    """Streamed replies with Slack's rules.

    A stream is a reply (``thread_ts`` required); outside DMs it names its recipient
    (``recipient_user_id`` and ``recipient_team_id``); each call carries at most 12,000
    characters of Markdown; chunks are ``markdown_text``, ``task_update``, ``plan_update`` and
    ``blocks`` (at most 50 blocks over the stream, and 50 more in ``stopStream``'s ``blocks``);
    a message's limits (two ``data_visualization`` blocks, one ``table``, 10,000 characters of
    ``data_table`` cells) count over everything the streamed message holds.
    A stream lives :attr:`stream_lifetime` seconds; after that, or once stopped, appending and
    stopping answer ``message_not_in_streaming_state``. The message is an ordinary message:
    ``chat.update`` and ``chat.delete`` work on it as on any other.
    """

    def stream(self, ts: str) -> Stream | None:
        """The stream whose message has ``ts`` (its state brought up to date), or ``None``."""
        stream = self.streams.get(ts)
        expired = stream is not None and self.now() - stream.started >= self.stream_lifetime
        if stream is not None and stream.streaming and expired:
            stream.state = "expired"
        return stream

    def expire_stream(self, channel: str, ts: str) -> None:
        """End a message's streaming state now, as Slack does after about five minutes."""
        stream = self.streams.get(ts)
        if stream is None or stream.channel != channel:
            raise KeyError(f"no stream {ts} in {channel}")
        if stream.streaming:
            stream.state = "expired"

    def _start_stream(self, args: JsonDict) -> JsonDict | Failure:
        channel = self._writable(args)
        if isinstance(channel, Failure):
            return channel
        refusal = self.stream_refusals.get(channel.id)
        if refusal is not None:
            return Failure(refusal)
        if not optional_str(args.get("thread_ts")):
            return _invalid("missing required field: thread_ts")
        thread_ts = self._thread(channel, args)
        if isinstance(thread_ts, Failure):
            return thread_ts
        user, team = optional_str(args.get("recipient_user_id")), args.get("recipient_team_id")
        if channel.kind != "im" and not (user and optional_str(team)):
            return _invalid("recipient_user_id and recipient_team_id are required in channels")
        mode = args.get("task_display_mode", "timeline")
        if mode not in DISPLAY_MODES:
            return _invalid("task_display_mode must be one of: plan, timeline")
        failure = self._chunks_failure(args)
        if failure is not None:
            return failure
        stream = Stream(
            channel.id,
            "",
            str(thread_ts),
            self.now(),
            task_display_mode=str(mode),
            recipient_user_id=user,
            recipient_team_id=optional_str(team),
        )
        if stream.blocks_after(args) > MAX_STREAM_BLOCKS:
            return _invalid(f"no more than {MAX_STREAM_BLOCKS} blocks over a stream")
        if (failure := _message_failure(stream, args)) is not None:
            return failure
        stream.apply(args)
        fields = stream.message_fields()
        text = fields.pop("text")
        message = self.world.post_as_bot(channel.id, text=text, thread_ts=thread_ts, extra=fields)
        stream.ts = message["ts"]
        self.streams[stream.ts] = stream
        self._status.pop((channel.id, str(thread_ts)), None)
        return {"channel": channel.id, "ts": message["ts"]}

    def _chunks_failure(self, args: JsonDict) -> Failure | None:
        found = chunk_problems(args, self.files)
        return None if found is None else Failure(found[0], tuple(found[1]))

    def _live(self, args: JsonDict) -> tuple[Stream, JsonDict] | Failure:
        target = self._target(args)
        if isinstance(target, Failure):
            return target
        channel, message = target
        stream = self.stream(message["ts"])
        if stream is None or stream.channel != channel.id or not stream.streaming:
            return Failure("message_not_in_streaming_state")
        failure = self._chunks_failure(args)
        if failure is not None:
            return failure
        if stream.blocks_after(args) > MAX_STREAM_BLOCKS:
            return _invalid(f"no more than {MAX_STREAM_BLOCKS} blocks over a stream")
        if (failure := _message_failure(stream, args)) is not None:
            return failure
        return stream, message

    def _append_stream(self, args: JsonDict) -> JsonDict | Failure:
        live = self._live(args)
        if isinstance(live, Failure):
            return live
        stream, message = live
        if args.get("markdown_text") is None and not args.get("chunks"):
            return _invalid("markdown_text or chunks is required")
        stream.apply(args)
        # Slack grows the message in place; clients see it without a message_changed event.
        message |= stream.message_fields()
        return {"channel": stream.channel, "ts": stream.ts}

    def _stop_stream(self, args: JsonDict) -> JsonDict | Failure:
        live = self._live(args)
        if isinstance(live, Failure):
            return live
        stream, _ = live
        blocks = args.get("blocks")
        if blocks is not None:
            problems = block_problems(blocks, max_blocks=MAX_STREAM_BLOCKS, files=self.files)
            if problems:
                return Failure("invalid_blocks", tuple(problems))
            if (failure := _message_failure(stream, args, blocks)) is not None:
                return failure
        stream.apply(args)
        if blocks is not None:
            stream.final_blocks = with_block_ids(blocks)
        stream.state = "stopped"
        _, new = self.world.change(stream.channel, stream.ts, stream.message_fields())
        return {"channel": stream.channel, "ts": new["ts"], "message": copy.deepcopy(new)}

    def stop_streams_in(self, channel: str, thread_ts: str) -> list[str]:
        """Stop every live stream in a thread (Slack's own Stop); returns their ``ts``."""
        stopped: list[str] = []
        for stream in list(self.streams.values()):
            live = self.stream(stream.ts)
            if live is None or not live.streaming:
                continue
            if live.channel == channel and live.thread_ts == thread_ts:
                live.state = "stopped"
                self.world.change(channel, live.ts, live.message_fields())
                stopped.append(live.ts)
        return stopped
