"""The fake Slack's state and what tests read from it: the world, records, envelopes, waiting."""

from __future__ import annotations

import asyncio
import collections
import copy
import logging
import random
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any, Literal, TypeVar

from aiohttp import web

from trellis_slack.fakes.slack_model import Ack, ApiCall, Envelope, FakeFile, JsonDict
from trellis_slack.fakes.slack_streams import Stream
from trellis_slack.fakes.slack_webapi import WebApi
from trellis_slack.fakes.slack_workspace import Workspace

__all__ = ["Chooser", "Connection", "SlackRecords"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Connection:
    """One Socket Mode WebSocket: its number (1, 2, … in the order they opened) and what it got."""

    __slots__ = ("delivered", "gone", "inflight", "number", "ws")

    def __init__(self, ws: web.WebSocketResponse, number: int) -> None:
        self.ws = ws
        self.number = number
        self.gone = asyncio.Event()
        #: Envelopes written to this socket, in order.
        self.delivered: list[Envelope] = []
        #: Envelopes written to this socket and not acked yet, by id.
        self.inflight: dict[str, Envelope] = {}

    def __repr__(self) -> str:
        return f"<Connection {self.number} {'closed' if self.gone.is_set() else 'open'}>"


#: Picks an envelope's connection among the open ones it may go to; ``None``: pick at random.
Chooser = Callable[[Sequence[Connection]], Connection | None]


class SlackRecords:
    """What every part of the fake Slack shares: the world, the records, the envelope queue.

    Tests read the records (:meth:`messages`, :attr:`calls`, :attr:`acks`, …) and await a change
    with :meth:`wait_for`; the Socket Mode, HTTP and human parts change things and notify.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0TEAM",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        app_id: str = "A0APP",
        bot_token: str = "xoxb-fake-bot-token",  # noqa: S107 - a fake token for tests
        app_token: str = "xapp-fake-app-token",  # noqa: S107 - a fake token for tests
        redeliver_after: float | None = None,
        rng: random.Random | None = None,
        deliver_to: Chooser | None = None,
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.bot_token = bot_token
        self.app_token = app_token
        self.redeliver_after = redeliver_after
        #: Picks the connection of each envelope among several (Slack: any of them); seeded.
        self.rng = rng if rng is not None else random.Random(0)  # noqa: S311 - not for secrets
        #: When set, picks the connection instead of :attr:`rng` (tests that need one).
        self.deliver_to = deliver_to
        self._world = Workspace(team_id, bot_user_id, bot_id, app_id)
        self._api = WebApi(self._world)
        # records (ephemerals, statuses and Home views are kept by the Web API)
        self.calls: list[ApiCall] = []
        self.acks: list[Ack] = []
        self.envelopes: list[Envelope] = []
        self._envelope_by_id: dict[str, Envelope] = {}
        self.responses: list[JsonDict] = []
        # server state
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._connections: list[Connection] = []
        self._connection_count = 0
        self._every_connection: dict[int, Connection] = {}
        self._closed: list[Connection] = []
        self._avoid: dict[str, int] = {}
        self._retried: set[str] = set()
        self._tickets: set[str] = set()
        self._outbox: collections.deque[Envelope] = collections.deque()
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._revision = 0
        self._sent_at: dict[str, float] = {}
        self._delivered_to: dict[str, int] = {}
        self._acked: dict[str, Ack] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._rate_limits: dict[str, list[int]] = {}
        self._failures: dict[str, list[str]] = {}
        self._response_urls: dict[str, JsonDict] = {}

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/`` once started."""
        if self._port is None:
            raise RuntimeError("FakeSlack is not started")
        return f"http://127.0.0.1:{self._port}/"

    @property
    def api_url(self) -> str:
        """What ``SLACK_API_URL`` is set to: ``http://127.0.0.1:PORT/api/``."""
        return self.base_url + "api/"

    @property
    def socket_connections(self) -> int:
        """How many Socket Mode connections are open now."""
        return len(self._connections)

    @property
    def connections(self) -> tuple[Connection, ...]:
        """The open Socket Mode connections, oldest first."""
        return tuple(self._connections)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ================================================================ records

    @property
    def files(self) -> dict[str, FakeFile]:
        """Files the bot uploaded, by id."""
        return self._world.files

    @property
    def ephemerals(self) -> list[JsonDict]:
        """``chat.postEphemeral`` messages: channel, user, message_ts, text, blocks, thread_ts."""
        return self._api.ephemerals

    @property
    def statuses(self) -> list[JsonDict]:
        """The arguments of every ``assistant.threads.setStatus`` call."""
        return self._api.statuses

    @property
    def home_views(self) -> dict[str, JsonDict]:
        """The Home tab view last published for each user."""
        return self._api.home_views

    def messages(self, channel: str) -> list[JsonDict]:
        """Top-level messages and replies in ``ts`` order (copies of Slack's message objects)."""
        return copy.deepcopy(self._world.all_messages(channel))

    def thread(self, channel: str, thread_ts: str) -> list[JsonDict]:
        """The parent and its replies, oldest first."""
        return [
            m
            for m in self.messages(channel)
            if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts
        ]

    def bot_messages(self, channel: str, thread_ts: str | None = None) -> list[JsonDict]:
        """The bot's messages in a channel, or in one thread of it."""
        found = self.thread(channel, thread_ts) if thread_ts else self.messages(channel)
        return [m for m in found if m.get("bot_id") == self.bot_id]

    def status(self, channel: str, thread_ts: str) -> str:
        """The assistant status shown in a thread now (posting a message there clears it)."""
        return self._api.status(channel, thread_ts)

    def loading_messages(self, channel: str, thread_ts: str) -> list[str]:
        """The ``loading_messages`` of the status shown in a thread now."""
        return self._api.loading_messages(channel, thread_ts)

    @property
    def suggested_prompts(self) -> list[JsonDict]:
        """``assistant.threads.setSuggestedPrompts`` calls that took effect (their arguments)."""
        return self._api.suggested_prompts

    def stream_of(self, ts: str) -> Stream:
        """A copy of the stream behind message ``ts``: Markdown so far, tasks, blocks, state."""
        stream = self._api.stream(ts)
        if stream is None:
            raise KeyError(f"message {ts} was not streamed")
        return copy.deepcopy(stream)

    def streams(self, channel: str, thread_ts: str | None = None) -> list[Stream]:
        """Copies of the streams in a channel (or one thread of it), oldest first."""
        found = [self._api.stream(ts) for ts in list(self._api.streams)]
        return [
            copy.deepcopy(s)
            for s in found
            if s is not None
            and s.channel == channel
            and (thread_ts is None or s.thread_ts == thread_ts)
        ]

    def events(self, type: str | None = None, *, subtype: str | None = None) -> list[JsonDict]:
        """Events sent so far (first deliveries only), optionally of one type and subtype."""
        return [
            e.event
            for e in self.envelopes
            if e.type == "events_api"
            and e.retry_attempt == 0
            and (type is None or e.event.get("type") == type)
            and (subtype is None or e.event.get("subtype") == subtype)
        ]

    @property
    def envelopes_sent(self) -> list[Envelope]:
        """Envelopes written to a socket so far (``envelopes`` also holds queued ones)."""
        return [e for e in self.envelopes if e.envelope_id in self._sent_at]

    def delivered_to(self, envelope_id: str) -> int | None:
        """The number of the connection an envelope was written to (``None``: not written yet)."""
        return self._delivered_to.get(envelope_id)

    def deliveries(self) -> dict[int, list[Envelope]]:
        """Envelopes written to each connection ever opened, by connection number, in order."""
        return {n: list(c.delivered) for n, c in sorted(self._every_connection.items())}

    def envelopes_for(self, ts: str) -> list[Envelope]:
        """Event envelopes about the message ``ts`` (its ``message``, ``app_mention``, changes)."""

        def about(event: JsonDict) -> bool:
            message = event.get("message")
            changed = isinstance(message, dict) and message.get("ts") == ts
            return event.get("ts") == ts or event.get("deleted_ts") == ts or changed

        return [e for e in self.envelopes if e.type == "events_api" and about(e.event)]

    def calls_to(self, method: str) -> list[ApiCall]:
        """The recorded calls of one Web API method."""
        return [c for c in self.calls if c.method == method]

    def expire_stream(self, channel: str, ts: str) -> None:
        """End a streaming message's streaming state, as Slack does after ~5 minutes."""
        self._api.expire_stream(channel, ts)
        self._notify()

    @property
    def stream_lifetime(self) -> float:
        """Seconds a stream lives before appends fail (Slack: about 300; tests set it small)."""
        return self._api.stream_lifetime

    @stream_lifetime.setter
    def stream_lifetime(self, seconds: float) -> None:
        self._api.stream_lifetime = seconds

    @property
    def status_lifetime(self) -> float:
        """Seconds an assistant status shows without a message in the thread (Slack: 120)."""
        return self._api.status_lifetime

    @status_lifetime.setter
    def status_lifetime(self, seconds: float) -> None:
        self._api.status_lifetime = seconds

    @property
    def clock(self) -> Callable[[], float]:
        """The clock stream and status lifetimes are measured on (``time.monotonic``)."""
        return self._api.now

    @clock.setter
    def clock(self, now: Callable[[], float]) -> None:
        self._api.now = now

    def refuse_streams(self, channel: str, error: str = "channel_type_not_supported") -> None:
        """``chat.startStream`` in ``channel`` answers ``error`` from now on (an old workspace)."""
        self._api.stream_refusals[channel] = error

    @property
    def agent_app(self) -> bool:
        """Whether the app is an agent app (``agent_view``); ``False`` for a legacy assistant."""
        return self._api.agent_app

    @agent_app.setter
    def agent_app(self, value: bool) -> None:
        self._api.agent_app = value

    # ================================================================ waiting

    def _notify(self) -> None:
        self._revision += 1
        self._changed.set()
        self._changed = asyncio.Event()

    @property
    def revision(self) -> int:
        """Counts the changes here so far (messages, files, calls, envelopes, acks, sockets)."""
        return self._revision

    async def changed_since(self, revision: int) -> int:
        """Wait until :attr:`revision` passes ``revision``; returns it (no timeout: wrap the call).

        A change feed reads the state, remembers the revision it read at, and waits here: a
        change made while it was busy is not missed.
        """
        while self._revision <= revision:
            await self._changed.wait()
        return self._revision

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the API the tests share
    ) -> T:
        """Re-evaluate ``predicate`` on every change here until it returns something truthy."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    value = predicate()
                    if value:
                        return value
                    await self._changed.wait()
        except TimeoutError:
            recent = ", ".join(f"{c.method} {'ok' if c.ok else c.error}" for c in self.calls[-6:])
            raise TimeoutError(
                f"condition not met within {timeout}s; last calls: [{recent or 'none'}]; "
                f"{len(self.envelopes)} envelopes, {len(self.acks)} acks, "
                f"{self.socket_connections} sockets open"
            ) from None

    async def wait_for_ack(
        self,
        envelope_id: str,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the API the tests share
    ) -> Ack:
        """The ack of one envelope, once the app sends it."""
        return await self.wait_for(lambda: self._acked.get(envelope_id), timeout=timeout)

    # ================================================================ the envelope queue

    def _enqueue(
        self,
        type: Literal["events_api", "interactive", "slash_commands"],
        payload: JsonDict,
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int = 0,
        retry_reason: str | None = None,
    ) -> Envelope:
        envelope = Envelope(
            str(uuid.uuid4()), type, payload, accepts_response_payload, retry_attempt, retry_reason
        )
        return self._queue(envelope)

    def _redeliver(self, original: Envelope, attempt: int, reason: str) -> Envelope:
        fresh = str(uuid.uuid4())
        self._retried.add(original.envelope_id)
        missed = self._delivered_to.get(original.envelope_id)
        if missed is not None:
            self._avoid[fresh] = missed  # Slack retries on another connection when it has one
        return self._queue(
            replace(original, envelope_id=fresh, retry_attempt=attempt, retry_reason=reason)
        )

    def _queue(self, envelope: Envelope) -> Envelope:
        self.envelopes.append(envelope)
        self._envelope_by_id[envelope.envelope_id] = envelope
        self._outbox.append(envelope)
        self._wake.set()
        self._notify()
        return envelope

    def _flush(self) -> None:
        """Wrap the world's new events in envelopes."""
        events, self._world.outbox = self._world.outbox, []
        for event in events:
            self._enqueue("events_api", self._world.event_callback(event))
        self._notify()
