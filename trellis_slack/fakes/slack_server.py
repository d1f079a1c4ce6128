"""A fake Slack on 127.0.0.1: the Web API and Socket Mode that the real bolt app runs against."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import replace
from types import TracebackType
from typing import Any, Final, Literal, Self, TypeVar

from aiohttp import WSMsgType, web
from aiohttp.web_request import FileField

from trellis_slack.fakes.slack_state import (
    Ack,
    ApiCall,
    Channel,
    Envelope,
    Failure,
    FakeFile,
    JsonDict,
    User,
    WebApi,
    Workspace,
    find_action,
    first_link,
    optional_str,
    truthy,
    with_block_ids,
)

__all__ = ["Ack", "ApiCall", "Envelope", "FakeFile", "FakeSlack"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Slack redelivers an unacked event at most three times.
MAX_RETRIES: Final = 3
#: Slack allows this many Socket Mode connections per app.
MAX_CONNECTIONS: Final = 10
#: Arguments that arrive as JSON strings in form-encoded or query-string requests.
_JSON_ARGS: Final = {
    "blocks": "invalid_blocks_format",
    "attachments": "invalid_attachments",
    "files": "invalid_arguments",
    "view": "invalid_arguments",
    "chunks": "invalid_arguments",
    "metadata": "invalid_metadata_format",
    "loading_messages": "invalid_arguments",
}


class _Connection:
    """One open Socket Mode WebSocket."""

    __slots__ = ("gone", "number", "ws")

    def __init__(self, ws: web.WebSocketResponse, number: int) -> None:
        self.ws = ws
        self.number = number
        self.gone = asyncio.Event()


async def _read_args(request: web.Request) -> JsonDict | Failure:
    """Query string, form or JSON body, merged; JSON-valued form fields decoded."""
    args: JsonDict = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                return Failure("invalid_json")
            if not isinstance(body, dict):
                return Failure("invalid_json")
            args |= body
        else:
            form = await request.post()
            for key, value in form.items():
                args[key] = value if isinstance(value, str) else _file_bytes(value)
    for key, error in _JSON_ARGS.items():
        if isinstance(args.get(key), str):
            try:
                args[key] = json.loads(args[key])
            except ValueError:
                return Failure(error, (f"[ERROR] {key} is not valid JSON",))
    return args


def _file_bytes(value: bytes | bytearray | FileField) -> bytes:
    return bytes(value) if isinstance(value, (bytes, bytearray)) else value.file.read()


class FakeSlack:
    """Slack's Web API and Socket Mode on one aiohttp server, plus what humans and the bot did.

    The bolt app connects with ``AsyncWebClient(token=bot_token, base_url=api_url)`` and
    ``AsyncSocketModeHandler(app, app_token)``. Human actions (:meth:`post`, :meth:`edit`, …)
    change the world and send the events Slack sends, as envelopes, to an open socket (they
    wait in a queue while none is open). Web API calls by the bot change the world too and
    send their echo events. Everything is recorded for assertions; :meth:`wait_for`
    re-evaluates a predicate on each change.
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
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.bot_token = bot_token
        self.app_token = app_token
        self.redeliver_after = redeliver_after
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
        self._connections: list[_Connection] = []
        self._connection_count = 0
        self._round_robin = 0
        self._tickets: set[str] = set()
        self._outbox: collections.deque[Envelope] = collections.deque()
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._revision = 0
        self._sent_at: dict[str, float] = {}
        self._acked: dict[str, Ack] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._rate_limits: dict[str, list[int]] = {}
        self._failures: dict[str, list[str]] = {}
        self._response_urls: dict[str, JsonDict] = {}

    # ================================================================ lifecycle

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_get("/files-pri/{file_id}/{name}", self._handle_download)
        app.router.add_post("/response/{token}", self._handle_response_url)
        app.router.add_get("/link/", self._handle_socket)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        self._api.base_url = self.base_url
        self._spawn(self._dispatch())
        logger.debug("fake Slack listening on %s", self.api_url)

    async def stop(self) -> None:
        """Close every socket and stop listening."""
        for task in list(self._tasks):
            task.cancel()
        for connection in list(self._connections):
            await connection.ws.close(code=1001, message=b"server shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

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

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ================================================================ the world

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        email: str | None = None,
        team_id: str | None = None,
        is_bot: bool = False,
        is_admin: bool = False,
    ) -> None:
        """Add a person (or another app's bot user, which gets a ``bot_id``)."""
        bot_id = "B" + user_id[1:] if is_bot else None
        team = team_id or self.team_id
        self._world.users[user_id] = User(user_id, name, team, email, is_bot, is_admin, bot_id)

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        kind: Literal["public", "private", "im", "mpim"] = "public",
        members: Iterable[str] = (),
        bot_is_member: bool = True,
    ) -> None:
        """Add a conversation; an ``im`` (id ``D…``) is the DM between the bot and one user."""
        if kind == "im" and not channel_id.startswith("D"):
            raise ValueError(f"IM ids start with D, not {channel_id!r}")
        people = frozenset(members) | (
            {self.bot_user_id} if bot_is_member or kind == "im" else set()
        )
        self._world.add_channel(Channel(channel_id, name, kind, people))

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

    # ================================================================ injected trouble

    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """The next ``times`` calls of ``method`` get HTTP 429 with ``Retry-After``."""
        self._rate_limits.setdefault(method, []).extend([retry_after] * times)

    def fail(self, method: str, error: str, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}``."""
        self._failures.setdefault(method, []).extend([error] * times)

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

    # ================================================================ what humans do

    def _require(self, channel: str, user: str | None = None) -> Channel:
        if channel not in self._world.channels:
            raise KeyError(f"unknown channel {channel!r}: call add_channel first")
        if user is not None and user not in self._world.users:
            raise KeyError(f"unknown user {user!r}: call add_user first")
        return self._world.channels[channel]

    def _require_message(self, channel: str, ts: str) -> JsonDict:
        self._require(channel)
        message = self._world.message(channel, ts)
        if message is None:
            raise KeyError(f"no message {ts} in {channel}")
        return message

    async def post(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        mention_order: Literal["mention_first", "message_first"] = "mention_first",
    ) -> str:
        """A person posts; sends ``message`` (and ``app_mention`` outside IMs); returns its ts."""
        self._require(channel, user)
        root = None
        if thread_ts is not None:
            root = self._world.thread_root(channel, thread_ts)
            if root is None:
                raise KeyError(f"no message {thread_ts} in {channel} to reply to")
        message = self._world.post_as_human(
            channel, user, text, thread_ts=root, mention_first=mention_order == "mention_first"
        )
        self._flush()
        return str(message["ts"])

    async def edit(self, channel: str, ts: str, text: str) -> None:
        """The author edits a message: ``message_changed`` (and ``app_mention`` with ``edited``)."""
        self._require_message(channel, ts)
        self._world.edit_as_human(channel, ts, text)
        self._flush()

    async def delete(self, channel: str, ts: str) -> None:
        """A message is deleted: ``message_deleted``, or a tombstone for a parent with replies."""
        self._require_message(channel, ts)
        self._world.delete(channel, ts)
        self._flush()

    async def unfurl(self, channel: str, ts: str) -> None:
        """Slack unfurls a link: ``message_changed`` with the same text and ``attachments``."""
        message = self._require_message(channel, ts)
        url = first_link(str(message.get("text", ""))) or "https://example.com/"
        attachment = {
            "id": 1,
            "from_url": url,
            "original_url": url,
            "title": "Example page",
            "title_link": url,
            "text": "An example page.",
            "fallback": "Example page",
            "service_name": "example.com",
        }
        self._world.change(channel, ts, {"attachments": [attachment]})
        self._flush()

    def _response_url(self, **context: Any) -> str:
        token = secrets.token_urlsafe(12)
        self._response_urls[token] = context
        return f"{self.base_url}response/{token}"

    async def click(
        self,
        channel: str,
        message_ts: str,
        action_id: str,
        *,
        user: str,
        value: str | None = None,
        seen_blocks: list[JsonDict] | None = None,
    ) -> Ack:
        """A person clicks a button: a ``block_actions`` envelope; returns the app's ack.

        ``seen_blocks`` are the blocks as the person's client still shows them: a click on a
        button the bot has since removed (a stale view, or two people clicking at once).
        """
        chan = self._require(channel, user)
        message = self._world.message(channel, message_ts)
        ephemeral = next(
            (
                e
                for e in self.ephemerals
                if e["channel"] == channel and e["message_ts"] == message_ts
            ),
            None,
        )
        source = message if message is not None else ephemeral
        if source is None:
            raise KeyError(f"no message {message_ts} in {channel}")
        found = find_action(
            seen_blocks if seen_blocks is not None else source.get("blocks"), action_id
        )
        if found is None:
            raise KeyError(f"no element with action_id {action_id!r} in message {message_ts}")
        block_id, element = found
        person = self._world.users[user]
        action: JsonDict = {
            "action_id": action_id,
            "block_id": block_id,
            "type": element.get("type", "button"),
            "action_ts": self._world.clock.next(),
        }
        if "text" in element:
            action["text"] = copy.deepcopy(element["text"])
        chosen = value if value is not None else element.get("value")
        if chosen is not None:
            action["value"] = chosen
        container: JsonDict = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": message is None,
        }
        thread_ts = source.get("thread_ts")
        if thread_ts:
            container["thread_ts"] = thread_ts
        payload: JsonDict = {
            "type": "block_actions",
            "user": {
                "id": user,
                "username": person.name,
                "name": person.name,
                "team_id": person.team_id,
            },
            "api_app_id": self.app_id,
            "token": "fake-verification-token",
            "container": container,
            "trigger_id": f"{secrets.randbelow(10**10)}.{secrets.token_hex(8)}",
            "team": {"id": self.team_id, "domain": "fake-workspace"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": chan.name},
            "state": {"values": {}},
            "response_url": self._response_url(channel=channel, message_ts=message_ts),
            "actions": [action],
        }
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        envelope = self._enqueue("interactive", payload)
        return await self.wait_for_ack(envelope.envelope_id)

    async def slash(self, command: str, text: str, *, channel: str, user: str) -> Ack:
        """A person runs a slash command: a ``slash_commands`` envelope; returns the ack."""
        chan = self._require(channel, user)
        self._world.join(channel, user)
        payload = {
            "token": "fake-verification-token",
            "team_id": self.team_id,
            "team_domain": "fake-workspace",
            "channel_id": channel,
            "channel_name": chan.name if chan.kind != "im" else "directmessage",
            "user_id": user,
            "user_name": self._world.users[user].name,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url(channel=channel),
            "trigger_id": f"{secrets.randbelow(10**10)}.{secrets.token_hex(8)}",
        }
        envelope = self._enqueue("slash_commands", payload, accepts_response_payload=True)
        return await self.wait_for_ack(envelope.envelope_id)

    async def open_home(self, user: str, tab: Literal["home", "messages"] = "home") -> Ack:
        """A person opens the app's Home or Messages tab: ``app_home_opened``; returns the ack."""
        if user not in self._world.users:
            raise KeyError(f"unknown user {user!r}: call add_user first")
        im = self._world.im_with(user)
        event: JsonDict = {
            "type": "app_home_opened",
            "user": user,
            "channel": im.id if im is not None else "D" + user[1:],
            "tab": tab,
            "event_ts": self._world.clock.next(),
        }
        if tab == "home" and user in self.home_views:
            event["view"] = copy.deepcopy(self.home_views[user])
        envelope_id = await self.send_event(event)
        return await self.wait_for_ack(envelope_id)

    async def send_event(
        self, event: JsonDict, *, retry_attempt: int = 0, retry_reason: str | None = None
    ) -> str:
        """Send a raw event in an ``event_callback`` envelope; returns the envelope id."""
        payload = self._world.event_callback(copy.deepcopy(event))
        envelope = self._enqueue(
            "events_api", payload, retry_attempt=retry_attempt, retry_reason=retry_reason
        )
        return envelope.envelope_id

    async def redeliver(
        self, envelope_id: str, *, retry_attempt: int = 1, retry_reason: str = "timeout"
    ) -> str:
        """Send an envelope's payload again as a fresh envelope with the retry fields set."""
        original = self._envelope_by_id.get(envelope_id)
        if original is None:
            raise KeyError(f"no envelope {envelope_id!r} was sent")
        return self._redeliver(original, retry_attempt, retry_reason).envelope_id

    # ================================================================ Socket Mode

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

    async def _dispatch(self) -> None:
        """Write queued envelopes to open sockets, round robin, in order."""
        while True:
            live = [c for c in self._connections if not c.ws.closed]
            if not self._outbox or not live:
                self._wake.clear()
                await self._wake.wait()
                continue
            envelope = self._outbox.popleft()
            connection = live[self._round_robin % len(live)]
            self._round_robin += 1
            self._sent_at[envelope.envelope_id] = time.monotonic()
            try:
                await connection.ws.send_str(json.dumps(envelope.frame()))
            except ConnectionResetError:
                self._outbox.appendleft(envelope)
                del self._sent_at[envelope.envelope_id]
                continue
            logger.debug("sent %s envelope %s", envelope.type, envelope.envelope_id)
            if (
                self.redeliver_after is not None
                and envelope.type == "events_api"
                and envelope.retry_attempt < MAX_RETRIES
            ):
                self._spawn(self._redeliver_later(envelope, self.redeliver_after))
            self._notify()

    async def _redeliver_later(self, envelope: Envelope, delay: float) -> None:
        await asyncio.sleep(delay)  # Slack's own retry delay, scripted
        if envelope.envelope_id not in self._acked:
            self._redeliver(envelope, envelope.retry_attempt + 1, "timeout")

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True, timeout=2.0)
        await ws.prepare(request)
        if len(self._connections) >= MAX_CONNECTIONS:
            await ws.send_json({"type": "disconnect", "reason": "too_many_websockets"})
            await ws.close()
            return ws
        self._connection_count += 1
        connection = _Connection(ws, self._connection_count)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._connections) + 1,
                "debug_info": {
                    "host": "applink-fake",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
        )
        self._connections.append(connection)
        self._wake.set()
        self._notify()
        logger.debug("socket %d open", connection.number)
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    self._on_frame(str(frame.data))
        finally:
            self._connections.remove(connection)
            connection.gone.set()
            self._notify()
            logger.debug("socket %d closed", connection.number)
        return ws

    def _on_frame(self, data: str) -> None:
        try:
            frame = json.loads(data)
        except ValueError:
            logger.warning("the app sent a frame that is not JSON")
            return
        envelope_id = frame.get("envelope_id") if isinstance(frame, dict) else None
        envelope = self._envelope_by_id.get(str(envelope_id))
        if envelope is None or envelope.envelope_id in self._acked:
            logger.debug("ignoring ack for unknown or acked envelope %s", envelope_id)
            return
        sent = self._sent_at.get(envelope.envelope_id, time.monotonic())
        payload = frame.get("payload")
        ack = Ack(
            envelope.envelope_id,
            envelope.type,
            time.monotonic() - sent,
            payload if isinstance(payload, dict) else None,
        )
        self._acked[ack.envelope_id] = ack
        self.acks.append(ack)
        self._notify()

    def _connections_open(self) -> JsonDict:
        ticket = secrets.token_hex(16)
        self._tickets.add(ticket)
        return {"url": f"ws://127.0.0.1:{self._port}/link/?ticket={ticket}&app_id={self.app_id}"}

    async def disconnect_sockets(
        self, reason: str = "refresh_requested", *, grace: float = 1.0
    ) -> None:
        """Send ``{"type": "disconnect"}`` on every socket, then close those still open.

        Like Slack, the fake gives the app ``grace`` seconds to reconnect and close the old
        socket itself (closing at once makes slack_sdk reconnect twice).
        """
        connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(ConnectionResetError):
                await connection.ws.send_json(
                    {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
                )
        for connection in connections:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await connection.gone.wait()
            await connection.ws.close()

    # ================================================================ HTTP

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        parsed = await _read_args(request)
        args = parsed if isinstance(parsed, dict) else {}
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        token = token or args.pop("token", None)
        args.pop("token", None)
        result: JsonDict | Failure
        known = method in self._api.methods or method == "apps.connections.open"
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if not known:
            result = Failure("unknown_method")
        elif not token:
            result = Failure("not_authed")
        elif token != expected:
            result = Failure("invalid_auth")
        elif self._rate_limits.get(method):
            retry_after = self._rate_limits[method].pop(0)
            self._record(method, args, Failure("ratelimited"))
            return web.json_response(
                Failure("ratelimited").body(),
                status=429,
                headers={"Retry-After": str(retry_after)},
            )
        elif self._failures.get(method):
            result = Failure(self._failures[method].pop(0))
        elif isinstance(parsed, Failure):
            result = parsed
        elif method == "apps.connections.open":
            result = self._connections_open()
        else:
            result = self._api.call(method, args)
            self._flush()
        self._record(method, args, result)
        body = result.body() if isinstance(result, Failure) else {"ok": True} | result
        return web.json_response(body)

    def _record(self, method: str, args: JsonDict, result: JsonDict | Failure) -> None:
        error = result.error if isinstance(result, Failure) else None
        self.calls.append(
            ApiCall(method, copy.deepcopy(args), time.monotonic(), error is None, error)
        )
        if error is not None:
            logger.debug("%s -> %s", method, error)
        self._notify()

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        if request.content_type == "multipart/form-data":
            form = await request.post()
            parts = [v for v in form.values() if not isinstance(v, str)]
            data = _file_bytes(parts[0]) if parts else b""
        else:
            data = await request.read()
        if not self._api.upload(request.match_info["file_id"], data):
            return web.Response(status=404, text="unknown upload")
        self._notify()
        return web.Response(text=f"OK - {len(data)}")

    async def _handle_download(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.bot_token}":
            return web.Response(status=403, text="forbidden")
        file = self.files.get(request.match_info["file_id"])
        if file is None or file.deleted:
            return web.Response(status=404, text="not found")
        return web.Response(body=file.content, content_type=self._api.mimetype(file))

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        context = self._response_urls.get(request.match_info["token"])
        if context is None:
            return web.Response(status=404, text="expired_url")
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        self.responses.append(body)
        channel, ts = context["channel"], context.get("message_ts")
        original = self._world.message(channel, ts) if ts else None
        ours = original is not None and original.get("bot_id") == self.bot_id
        if ours and truthy(body.get("delete_original")):
            self._world.delete(channel, str(ts))
        elif ours and truthy(body.get("replace_original")):
            fields = {k: body[k] for k in ("text", "blocks", "attachments") if k in body}
            self._world.change(channel, str(ts), fields)
        elif body.get("response_type") == "in_channel":
            extra = {"blocks": with_block_ids(body["blocks"])} if body.get("blocks") else {}
            thread = optional_str(body.get("thread_ts"))
            self._world.post_as_bot(
                channel, text=str(body.get("text", "")), thread_ts=thread, extra=extra
            )
        self._flush()
        return web.Response(text="ok")
