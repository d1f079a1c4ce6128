"""A bot message that follows an answer as it streams, updated at most once per interval."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from trellis_slack.slack.blocks import Rendered

__all__ = ["LiveMessage", "Updater"]


class Updater(Protocol):
    """Something that replaces a posted message: ``SlackIO``."""

    async def update(self, channel: str, ts: str, body: Rendered) -> bool:
        """Replace the message; True if Slack took it."""


class LiveMessage:
    """A bot message that changes as an answer progresses, updated at most once per ``interval``.

    ``show`` only records the latest body; a background flush sends it when the gap allows, so a
    burst of Trellis events costs one ``chat.update``. The gap starts at ``interval`` and doubles
    after each update up to four times ``interval``: the first seconds of an answer feel alive,
    and a long answer (or a thousand at once) stays far below Slack's ``chat.update`` rate limit.
    A short text-only answer costs at most five Slack calls: post, three updates, the answer.
    ``finish`` sends the final body at once (after any update in flight) and stops updating.
    """

    def __init__(self, slack: Updater, channel: str, ts: str, *, interval: float = 1.0) -> None:
        self.slack = slack
        self.channel = channel
        self.ts = ts
        self.interval = interval
        self._pending: Rendered | None = None
        self._last_sent = 0.0
        self._gap = interval
        self._lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._sending = False
        self._finished = False

    def show(self, body: Rendered) -> None:
        """Ask for ``body`` to be shown soon (throttled)."""
        if self._finished:
            return
        self._pending = body
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        wait = self._last_sent + self._gap - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        async with self._lock:
            body, self._pending = self._pending, None
            if body is None or self._finished:
                return
            if self._last_sent:
                self._gap = min(self._gap * 2, self.interval * 4)
            self._last_sent = time.monotonic()
            self._sending = True
            try:
                await self.slack.update(self.channel, self.ts, body)
            finally:
                self._sending = False

    async def finish(self, body: Rendered | None) -> bool:
        """Show ``body`` now (or nothing, when None) and stop updating; True if Slack took it."""
        self._finished = True
        flusher = self._flusher
        if flusher is not None and not flusher.done() and not self._sending:
            # Still waiting for its turn: it will not send. An update already on its way is
            # let through (the lock below waits for it), so it cannot land after the final one.
            flusher.cancel()
        async with self._lock:
            if body is None:
                return True
            return await self.slack.update(self.channel, self.ts, body)
