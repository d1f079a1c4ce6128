"""An answer streamed into one Slack message: ``chat.startStream`` / ``appendStream`` / ``stopStream``.

Choices (Slack's docs leave them open):

* Text is batched: pieces that arrive within the gap since the last append go in one
  ``chat.appendStream`` (Tier 4); the gap starts at ``interval`` and doubles after each append up
  to four times it, so a long answer costs a handful of calls, never one per token. The first
  piece of text goes at once: the reader sees the answer begin as soon as Trellis writes it.
* Each step Trellis reports is a task card (``task_update``): the previous one goes ``complete``
  when the next begins, and the last one ``complete`` (or ``error``) when the stream stops.
* A stream Slack refuses to start (an old workspace, ``channel_type_not_supported``) returns None
  from `NativeStream.start`, and a stream that dies (``message_not_in_streaming_state`` after
  about five minutes, or any other refusal) marks itself ``dead``: the caller then shows the
  answer with ``chat.update`` on the same message, so nothing streamed is lost — the final answer
  replaces everything anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from trellis_slack.errors import SlackError, SlackRefused
from trellis_slack.slack.blocks import Block

__all__ = ["MAX_MARKDOWN", "NativeStream", "StreamCaller"]

log = logging.getLogger(__name__)

#: Slack takes at most this many characters of ``markdown_text`` in one call.
MAX_MARKDOWN = 12_000


class StreamCaller(Protocol):
    """Something that calls a Web API method strictly: ``SlackIO``."""

    async def api_call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """Slack's answer, or ``SlackRefused`` / ``SlackUnavailable``."""


class NativeStream:
    """One answer streaming into one message, batched to stay inside Slack's rate tiers."""

    def __init__(
        self,
        slack: StreamCaller,
        channel: str,
        thread_ts: str,
        *,
        recipient_user_id: str | None,
        recipient_team_id: str | None,
        interval: float = 1.0,
    ) -> None:
        self.slack = slack
        self.channel = channel
        self.thread_ts = thread_ts
        self.recipient_user_id = recipient_user_id
        self.recipient_team_id = recipient_team_id
        self.interval = interval
        self.ts: str | None = None
        #: Slack stopped taking appends (the stream expired or was refused): use ``chat.update``.
        self.dead = False
        #: Why Slack would not start the stream (its error code), when it would not.
        self.refusal: str | None = None
        self._gap = interval
        self._text_started = False
        self.stopped = False
        self._text: list[str] = []
        self._pending_blocks: list[Block] = []
        self._tasks: list[dict[str, Any]] = []
        self._task_count = 0
        self._current_task: str | None = None
        self._last_sent = 0.0
        self._lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None

    async def start(self, *, blocks: list[Block], task: str | None = None) -> str | None:
        """Start the stream as a reply in the thread; its ``ts``, or None when Slack refuses.

        ``blocks`` (the Stop button) come first; ``task`` opens the first task card.
        """
        chunks: list[dict[str, Any]] = []
        if task is not None:
            chunks.append(self._open_task(task))
        if blocks:
            chunks.append({"type": "blocks", "blocks": blocks})
        args: dict[str, Any] = {
            "channel": self.channel,
            "thread_ts": self.thread_ts,
            "chunks": chunks,
            "task_display_mode": "timeline",
        }
        if self.recipient_user_id and self.recipient_team_id:
            args["recipient_user_id"] = self.recipient_user_id
            args["recipient_team_id"] = self.recipient_team_id
        try:
            data = await self.slack.api_call("chat.startStream", **args)
        except SlackError as exc:
            log.info("Slack would not start a stream (%s): the answer is edited in place", exc)
            self.refusal = exc.error if isinstance(exc, SlackRefused) else "unavailable"
            return None
        ts = data.get("ts")
        self.ts = ts if isinstance(ts, str) else None
        self._last_sent = time.monotonic()
        return self.ts

    def task(self, title: str) -> None:
        """A new step: the previous task card completes, this one starts."""
        if self._current_task is not None:
            self._tasks.append(self._close_task("complete"))
        self._tasks.append(self._open_task(title))
        self._soon()

    def blocks(self, blocks: list[Block]) -> None:
        """Append blocks (a chart, a table) after what was streamed so far."""
        if blocks:
            self._pending_blocks.extend(blocks)
            self._soon()

    def text(self, piece: str) -> None:
        """Append a piece of the answer's text (sent with the next batch; the first at once)."""
        if piece:
            self._text.append(piece)
            if not self._text_started:
                self._text_started = True
                self._last_sent = 0.0  # the first text does not wait for the gap
            self._soon()

    async def stop(self, *, failed: bool = False) -> bool:
        """Send what is pending and stop the stream; False if Slack no longer takes it."""
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
        async with self._lock:
            if self.stopped or self.dead or self.ts is None:
                self.stopped = True
                return False
            while len("".join(self._text)) > MAX_MARKDOWN and not self.dead:
                await self._send(
                    "chat.appendStream",
                    {"channel": self.channel, "ts": self.ts, "chunks": self._take_chunks()},
                )
            if self.dead:
                self.stopped = True
                return False
            if self._current_task is not None:
                self._tasks.append(self._close_task("error" if failed else "complete"))
            chunks = self._take_chunks()
            args: dict[str, Any] = {"channel": self.channel, "ts": self.ts}
            if chunks:
                args["chunks"] = chunks
            self.stopped = True
            return await self._send("chat.stopStream", args)

    # -- internals --

    def _open_task(self, title: str) -> dict[str, Any]:
        self._task_count += 1
        self._current_task = f"step-{self._task_count}"
        self._current_title = title[:256]
        return {
            "type": "task_update",
            "id": self._current_task,
            "title": self._current_title,
            "status": "in_progress",
        }

    def _close_task(self, status: str) -> dict[str, Any]:
        chunk = {
            "type": "task_update",
            "id": self._current_task,
            "title": self._current_title,
            "status": status,
        }
        self._current_task = None
        return chunk

    def _take_chunks(self) -> list[dict[str, Any]]:
        """What the next call sends: pending task cards, at most 12,000 characters of text (the
        rest waits for the next call), and pending blocks."""
        chunks, self._tasks = self._tasks, []
        text = "".join(self._text)
        self._text = [text[MAX_MARKDOWN:]] if len(text) > MAX_MARKDOWN else []
        if text:
            chunks.append({"type": "markdown_text", "text": text[:MAX_MARKDOWN]})
        if self._pending_blocks:
            chunks.append({"type": "blocks", "blocks": self._pending_blocks})
            self._pending_blocks = []
        return chunks

    def _soon(self) -> None:
        if self.stopped or self.dead or self.ts is None:
            return
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        """Send what is pending once the gap allows; again while more keeps coming."""
        while True:
            wait = self._last_sent + self._gap - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            async with self._lock:
                if self.stopped or self.dead or self.ts is None:
                    return
                chunks = self._take_chunks()
                if chunks:
                    if self._last_sent:
                        self._gap = min(self._gap * 2, self.interval * 4)
                    self._last_sent = time.monotonic()
                    await self._send(
                        "chat.appendStream",
                        {"channel": self.channel, "ts": self.ts, "chunks": chunks},
                    )
            if not (self._text or self._tasks or self._pending_blocks):
                return

    async def _send(self, method: str, args: dict[str, Any]) -> bool:
        try:
            await self.slack.api_call(method, **args)
        except SlackError as exc:
            reason = exc.error if isinstance(exc, SlackRefused) else str(exc)
            log.info("Slack %s failed (%s): the answer continues with chat.update", method, reason)
            self.dead = True
            return False
        return True
