"""Small fakes of the glue's seams (`bot/seams.py`): a turn source, its turns, a renderer.

Slack stays the local server (``FakeSlack``) behind the real ``SlackIO``, and the store is a real
``SqliteStore`` in memory; only Trellis and the chart workers are faked, as ten-line classes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import aiohttp

from trellis_slack.bot.lifecycle import Status
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.slack.web import SlackIO, web_client
from trellis_slack.store.records import QuestionRecord
from trellis_slack.store.sqlite import SqliteStore
from trellis_slack.trellis.client import EditMessage, SendMessage
from trellis_slack.trellis.protocol import Interrupted, TrellisEvent
from trellis_slack.viz.renderer import ChartImage, NativeChart, Rendered, VisualizationNote

#: The bytes of every fake chart: a PNG signature and nothing drawn (the fake Slack reads none of it).
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)

#: Put in a turn's script to end its stream without a final frame.
END = None


class FakeTurn:
    """A `TurnHandle`: yields the events (or raises the errors) it is sent, records interrupts."""

    def __init__(self, *script: TrellisEvent | BaseException | None, chat_id: str = "chat-1"):
        self.chat_id: str | None = chat_id
        self.user_message_id: str | None = None
        self.frames: asyncio.Queue[TrellisEvent | BaseException | None] = asyncio.Queue()
        self.send(*script)
        #: What Trellis answers an interrupt with (None: nothing, e.g. the final answer wins).
        self.on_interrupt: TrellisEvent | None = Interrupted()
        self.interrupts = 0
        self.last_frame_at: float | None = None

    def send(self, *items: TrellisEvent | BaseException | None) -> None:
        for item in items:
            self.frames.put_nowait(item)

    async def __aiter__(self) -> AsyncIterator[TrellisEvent]:
        while (item := await self.frames.get()) is not END:
            if isinstance(item, BaseException):
                raise item
            self.last_frame_at = time.monotonic()
            yield item

    async def interrupt(self) -> None:
        self.interrupts += 1
        if self.on_interrupt is not None:
            self.send(self.on_interrupt)


class FakePending:
    """A `PendingTurn`: entered at once, or, with ``gate``, once the gate is set; or ``fails``."""

    def __init__(
        self,
        turn: FakeTurn,
        gate: asyncio.Event | None = None,
        fails: BaseException | None = None,
    ) -> None:
        self.turn = turn
        self.chat_id: str | None = None
        self.gate = gate
        self.fails = fails
        self.on_queued: Callable[[], Awaitable[None]] | None = None
        self.entering = asyncio.Event()
        self.entered = False
        self.exited = False

    async def __aenter__(self) -> FakeTurn:
        self.entering.set()
        if self.gate is not None:
            if self.on_queued is not None:
                await self.on_queued()  # no free connection: the client says it waits
            await self.gate.wait()
        if self.fails is not None:
            raise self.fails
        self.entered = True
        self.chat_id = self.turn.chat_id
        return self.turn

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.exited = True


class FakeTurnSource:
    """A `TurnSource`: hands out the pending turns queued with `will_answer`, records requests."""

    def __init__(self) -> None:
        self.requests: list[SendMessage | EditMessage] = []
        self.pending: list[FakePending] = []
        self._next: list[FakePending] = []
        self.asked = asyncio.Event()

    def will_answer(
        self,
        *script: TrellisEvent | BaseException | None,
        gate: asyncio.Event | None = None,
        fails: BaseException | None = None,
    ) -> FakePending:
        """The next turn asked for plays ``script`` (more can be sent to its ``turn`` later)."""
        pending = FakePending(FakeTurn(*script), gate, fails)
        self._next.append(pending)
        return pending

    def turn(
        self,
        request: SendMessage | EditMessage,
        *,
        identity: str | None = None,
        on_queued: Callable[[], Awaitable[None]] | None = None,
    ) -> FakePending:
        self.requests.append(request)
        self.asked.set()
        pending = self._next.pop(0) if self._next else FakePending(FakeTurn(END))
        pending.on_queued = on_queued
        self.pending.append(pending)
        return pending

    @property
    def texts(self) -> list[str]:
        """The question texts sent to Trellis, in order."""
        return [r.text for r in self.requests]


class FakeRenderer:
    """A `VisualizationRenderer`: a ``chart`` becomes a tiny PNG titled ``text``, the rest a note.

    ``after`` holds a rendering back until another has finished (``{"v1": "v2"}``: v1 waits for
    v2), so renderings can finish in another order than they arrived.
    """

    def __init__(self, after: Mapping[str, str] | None = None) -> None:
        self.after = dict(after or {})
        self.done: dict[str, asyncio.Event] = {}
        self.finished: list[str] = []

    def _done(self, viz_id: str) -> asyncio.Event:
        return self.done.setdefault(viz_id, asyncio.Event())

    async def render(self, viz_id: str, kind: str, payload: Mapping[str, Any]) -> list[Rendered]:
        if viz_id in self.after:
            await self._done(self.after[viz_id]).wait()
        self.finished.append(viz_id)
        self._done(viz_id).set()
        text = str(payload.get("text", viz_id))
        if kind == "chart":
            return [ChartImage(viz_id, PNG, f"{viz_id}.png", text, alt_text=text)]
        return [VisualizationNote(viz_id, text)]

    async def draw_instead(self, chart: NativeChart) -> list[Rendered]:
        return [ChartImage(chart.viz_id, PNG, f"{chart.viz_id}.png", chart.title, chart.alt_text)]


# --- the real pieces, set up small ------------------------------------------------------------


@asynccontextmanager
async def slack_io(slack: FakeSlack) -> AsyncIterator[SlackIO]:
    """The real Slack shell over the real slack-sdk client, pointed at the local Slack server."""
    async with aiohttp.ClientSession() as session:
        yield SlackIO(web_client(slack.bot_token, slack.api_url, session))


@asynccontextmanager
async def memory_store() -> AsyncIterator[SqliteStore]:
    async with await SqliteStore.open(":memory:") as store:
        yield store


class ClaimCountingStore(SqliteStore):
    """The SQLite store, counting the refused `claim_turn` calls (a waiter's looks at its thread)."""

    refused = 0
    looked: asyncio.Event | None = None

    async def claim_turn(
        self, channel_id: str, thread_ts: str, question_ts: str, holder: str, *, replica: str = ""
    ) -> bool:
        granted = await super().claim_turn(
            channel_id, thread_ts, question_ts, holder, replica=replica
        )
        if not granted:
            self.refused += 1
            if self.looked is not None:
                self.looked.set()
        return granted

    async def refusals(self, count: int) -> None:
        """Wait until ``count`` claims in all have been refused."""
        while self.refused < count:
            self.looked = asyncio.Event()
            await self.looked.wait()


def question(
    channel: str, ts: str, thread_ts: str, text: str, *, user: str = "U0ALICE"
) -> QuestionRecord:
    """A question as intake records it once accepted: ``queued``."""
    return QuestionRecord(channel, ts, thread_ts, user, text, None, Status.QUEUED)
