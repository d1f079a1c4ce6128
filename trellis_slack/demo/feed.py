"""The demo page's live feed: every open page kept in step with the workspace, change by change."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from trellis_slack.demo.workspace import diff

if TYPE_CHECKING:
    from trellis_slack.demo.server import DemoPage

__all__ = ["Feed", "write_feed"]

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


class Feed:
    """Keeps every open page in step with the workspace: a snapshot on connect, then changes.

    One watcher computes the page's view of the workspace after each change in the fake Slack
    (bursts are coalesced) and queues the difference for every page; each page has its own queue
    and writer, so a page that connects during a broadcast still sees every change exactly once.
    """

    def __init__(self, page: DemoPage) -> None:
        self._page = page
        self._current: dict[str, JsonDict] = {}
        self._queues: set[asyncio.Queue[JsonDict | None]] = set()
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Take the first snapshot and start watching."""
        self._current = self._page.items()
        self._tasks = [
            asyncio.create_task(self._follow_slack()),
            asyncio.create_task(self._watch()),
        ]

    async def stop(self) -> None:
        """Stop watching; every page's writer ends."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        for queue in self._queues:
            queue.put_nowait(None)

    def poke(self) -> None:
        """Something the page shows changed outside the fake Slack."""
        self._dirty.set()

    def subscribe(self) -> asyncio.Queue[JsonDict | None]:
        """A queue that starts with the snapshot and then gets every change (``None``: the end)."""
        queue: asyncio.Queue[JsonDict | None] = asyncio.Queue()
        queue.put_nowait(
            {
                "type": "hello",
                "workspace": self._page.workspace.as_json(),
                "items": self._current,
            }
        )
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[JsonDict | None]) -> None:
        """The page went away."""
        self._queues.discard(queue)

    async def _follow_slack(self) -> None:
        revision = -1
        while True:
            revision = await self._page.slack.changed_since(revision)
            self._dirty.set()

    async def _watch(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                current = self._page.items()
            except Exception:
                log.exception(
                    "the demo page could not read the workspace; the pages keep the last view"
                )
                continue
            ops = diff(self._current, current)
            self._current = current
            if ops:
                message = {"type": "changes", "ops": ops}
                for queue in self._queues:
                    queue.put_nowait(message)


async def write_feed(ws: web.WebSocketResponse, queue: asyncio.Queue[JsonDict | None]) -> None:
    """Send a page its queue, in order, until the end or until it goes."""
    with contextlib.suppress(ConnectionResetError):
        while (message := await queue.get()) is not None:
            await ws.send_str(json.dumps(message))
        await ws.close(code=1001, message=b"the demo is stopping")
