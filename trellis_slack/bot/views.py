"""How an answer in progress shows in Slack: streamed natively, or a message edited as it grows.

Both views share one surface (`AnswerView`), so the turn does not care which one it has:

* `StreamedView` (``SLACK_STREAMING=native``): the message is a Slack stream — Trellis's steps as
  task cards, the text as it is written — under Slack's "is thinking…" status until the first
  piece. When the stream dies or is refused midway, it carries on as an `EditedView` of the same
  message: the preview then shows everything streamed so far, so not a character is lost.
* `EditedView` (``update``, and every fallback): the working message, edited with
  ``chat.update`` at most once per interval (`slack.live.LiveMessage`).

Either way the final answer replaces the whole message with ``chat.update``: what Trellis sent
last is authoritative, whatever was streamed before it.

Slack's status (``assistant.threads.setStatus``, with loading messages) is set when Trellis has
shown nothing for a moment, re-sent before Slack's two-minute expiry, and cleared at the first
visible piece or when the answer ends, however it ends (`StatusLine`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from trellis_slack.slack import blocks
from trellis_slack.slack.markdown import MAX_BLOCKS, streaming_preview
from trellis_slack.slack.stream import NativeStream
from trellis_slack.slack.web import LiveMessage, SlackIO

log = logging.getLogger(__name__)

Block = dict[str, Any]

#: What Slack shows under the thread while Trellis has not shown anything yet.
STATUS = "is looking into it…"
LOADING_MESSAGES = (
    "Reading your question…",
    "Asking Trellis…",
    "Looking at the data…",
    "Working out the numbers…",
)
#: Slack clears a status after two minutes: it is sent again after this many seconds.
STATUS_REFRESH = 90.0
#: The status line is set only when Trellis has shown nothing for this long: a quick first step
#: needs no status (and costs no calls).
STATUS_AFTER = 1.5
WORKING = "Working on it…"
#: Slack errors that say nothing about whether a channel can stream: try again next time.
_PASSING = frozenset(
    {
        "unavailable",
        "ratelimited",
        "internal_error",
        "fatal_error",
        "request_timeout",
        "not_in_channel",
    }
)


class AnswerView(Protocol):
    """An answer in progress as the asker sees it."""

    ts: str

    def progress(self, status_line: str | None, streamed: str) -> None:
        """Trellis's current step (a status code) and all the text streamed so far."""

    def waiting(self, text: str) -> None:
        """Say what the answer waits for (a free Trellis connection)."""

    def visual(self, blocks: list[Block]) -> None:
        """Show a chart, table or note of the answer as soon as it is ready."""

    async def finish(self, body: blocks.Rendered | None, *, failed: bool = False) -> bool:
        """Replace the whole message with ``body`` (None: leave it) and stop; True if Slack took it.

        ``failed``: the answer did not complete (a failure or a stop): the last step shows so.
        """

    async def close(self) -> None:
        """Clear Slack's status and stop anything running in the background."""


class EditedView:
    """The working message, edited as the answer grows (``chat.update``, throttled)."""

    def __init__(self, live: LiveMessage, question_ts: str) -> None:
        self.live = live
        self.ts = live.ts
        self.question_ts = question_ts
        self._status = WORKING
        self._streamed = ""
        self._visuals: list[Block] = []

    def progress(self, status_line: str | None, streamed: str) -> None:
        self._status = blocks.status_line(status_line) if status_line else WORKING
        self._streamed = streamed
        self._show()

    def visual(self, blocks: list[Block]) -> None:
        self.keep(blocks)
        self._show()

    def keep(self, blocks: list[Block]) -> None:
        """Remember a chart or table without showing it yet."""
        self._visuals.extend(blocks)

    def _show(self) -> None:
        preview = streaming_preview(self._streamed).blocks if self._streamed else ()
        # Room for the status line and the Stop button within Slack's 50 blocks.
        shown = (*self._visuals, *preview)[-(MAX_BLOCKS - 3) :]
        self.live.show(blocks.working(self._status, question_ts=self.question_ts, preview=shown))

    def waiting(self, text: str) -> None:
        self.live.show(blocks.working(text, question_ts=self.question_ts))

    async def finish(self, body: blocks.Rendered | None, *, failed: bool = False) -> bool:
        return await self.live.finish(body)

    async def close(self) -> None:
        return None


class StatusLine:
    """Slack's "is looking into it…" line under a thread, while Trellis shows nothing.

    It is set once ``after`` seconds pass without a visible piece, sent again every ``refresh``
    seconds (Slack drops it after two minutes), and cleared at the first piece or the outcome,
    whichever comes first — only if it was set, so a quick answer costs no status calls.
    """

    def __init__(
        self,
        slack: SlackIO,
        channel: str,
        thread_ts: str,
        *,
        refresh: float = STATUS_REFRESH,
        after: float = STATUS_AFTER,
    ) -> None:
        self.slack = slack
        self.channel = channel
        self.thread_ts = thread_ts
        self.refresh = refresh
        self.after = after
        self._task: asyncio.Task[None] | None = None
        self._shown = False

    async def show(self) -> None:
        """Start the clock: the status is set if nothing shows within ``after`` seconds."""
        if self.after <= 0:
            await self._set()
            if self._shown and self.refresh > 0:
                self._task = asyncio.create_task(self._keep(self.refresh))
        else:
            self._task = asyncio.create_task(self._keep(self.after))

    async def _set(self) -> None:
        self._shown = (
            await self.slack.set_status(
                self.channel, self.thread_ts, STATUS, list(LOADING_MESSAGES)
            )
            or self._shown
        )

    async def _keep(self, first: float) -> None:
        await asyncio.sleep(first)
        while True:
            await self._set()
            if self.refresh <= 0:
                return
            await asyncio.sleep(self.refresh)

    def stop_refreshing(self) -> None:
        """Something shows now: the status is no longer set or re-sent (`hide` clears it)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def hide(self) -> None:
        """Clear the status if it was set (at the first piece, and on every outcome)."""
        self.stop_refreshing()
        if self._shown:
            self._shown = False
            await self.slack.set_status(self.channel, self.thread_ts, "", None)


class StreamedView:
    """The answer as a Slack stream: task cards for Trellis's steps, the text as it is written."""

    def __init__(
        self,
        stream: NativeStream,
        fallback: EditedView,
        status: StatusLine,
    ) -> None:
        self.stream = stream
        self.fallback = fallback
        self.status = status
        self.ts = fallback.ts
        self._step: str | None = None
        self._sent = 0
        self._hiding: asyncio.Task[None] | None = None

    def _first_piece(self) -> None:
        """Trellis shows something: Slack's status line goes (if it was ever set)."""
        self.status.stop_refreshing()
        if self._hiding is None:
            self._hiding = asyncio.create_task(self.status.hide())

    def progress(self, status_line: str | None, streamed: str) -> None:
        self._first_piece()
        if self.stream.dead:
            self.fallback.progress(status_line, streamed)
            return
        if status_line and status_line != self._step:
            self._step = status_line
            self.stream.task(blocks.status_line(status_line))
        if len(streamed) > self._sent:
            self.stream.text(streamed[self._sent :])
            self._sent = len(streamed)

    def waiting(self, text: str) -> None:
        if self.stream.dead:
            self.fallback.waiting(text)
        else:
            self.stream.task(text)

    def visual(self, blocks: list[Block]) -> None:
        self._first_piece()
        # Kept by the fallback too, so a stream that dies later still shows every chart.
        self.fallback.keep(blocks)
        if self.stream.dead:
            self.fallback.visual([])
        else:
            self.stream.blocks(blocks)

    async def finish(self, body: blocks.Rendered | None, *, failed: bool = False) -> bool:
        await self.stream.stop(failed=failed)
        return await self.fallback.finish(body)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._hiding is not None:
                await self._hiding
            await self.status.hide()


async def open_view(
    slack: SlackIO,
    *,
    channel: str,
    thread_ts: str,
    question_ts: str,
    recipient: tuple[str, str] | None,
    native: bool,
    interval: float,
    status_refresh: float = STATUS_REFRESH,
    status_after: float = STATUS_AFTER,
    refused: set[str] | None = None,
) -> AnswerView | None:
    """Show that the answer started: a stream (``native``, if Slack takes it) or a message.

    ``recipient`` (user id, team id) is whom a stream outside a DM is for. A channel where Slack
    refuses to stream for good (not a passing failure) is added to ``refused``, so later answers
    there go straight to an edited message. None when Slack would not let the bot say anything
    in the thread.
    """
    first = blocks.working(WORKING, question_ts=question_ts)
    if native:
        stream = NativeStream(
            slack,
            channel,
            thread_ts,
            recipient_user_id=recipient[0] if recipient else None,
            recipient_team_id=recipient[1] if recipient else None,
            interval=interval,
        )
        ts = await stream.start(blocks=list(first.blocks))
        if ts is None and refused is not None and stream.refusal not in _PASSING:
            refused.add(channel)
        if ts is not None:
            status = StatusLine(
                slack, channel, thread_ts, refresh=status_refresh, after=status_after
            )
            await status.show()
            live = LiveMessage(slack, channel, ts, interval=interval)
            return StreamedView(stream, EditedView(live, question_ts), status)
    ts = await slack.post(channel, thread_ts, first)
    if ts is None:
        return None
    return EditedView(LiveMessage(slack, channel, ts, interval=interval), question_ts)
