"""The demo page's HTTP and WebSocket API: what a person sees in the local Slack, and what they do."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import html
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from importlib import resources
from typing import Any, Final

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

from trellis_slack.demo.sample import Suggestion
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.slack_state import truthy

__all__ = [
    "MAX_TEXT",
    "DemoPage",
    "DemoWorkspace",
    "Feed",
    "Person",
    "Room",
    "diff",
    "editable_text",
    "slack_text",
]

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

#: Slack refuses longer messages (``msg_too_long``).
MAX_TEXT: Final = 40_000
#: The page's own files, served from the package (nothing from a CDN): name → content type.
_STATIC: Final = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
#: Files the page may show inline; anything else is offered as a download.
_INLINE_TYPES: Final = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif"}
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_SLASH: Final = re.compile(r"^(/[a-z0-9_-]+)(?:\s+(.*))?$", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Person:
    """Someone in the demo workspace (the bot included)."""

    id: str
    name: str
    is_bot: bool = False


@dataclass(frozen=True, slots=True)
class Room:
    """A conversation the page shows: a channel, or the DM with the bot (``kind="im"``)."""

    id: str
    name: str
    kind: str
    topic: str = ""


@dataclass(frozen=True, slots=True)
class DemoWorkspace:
    """What the page needs to know besides the messages: who is who, and where."""

    name: str
    me: str
    bot: str
    people: tuple[Person, ...]
    rooms: tuple[Room, ...]
    suggestions: tuple[Suggestion, ...] = ()
    #: Slash commands the app has (others are refused, as Slack does).
    commands: tuple[str, ...] = ("/trellis",)

    def as_json(self) -> JsonDict:
        """The workspace as the page reads it."""
        return asdict(self)

    def room(self, room_id: object) -> Room | None:
        """The room with that id, if the page shows it."""
        return next((r for r in self.rooms if r.id == room_id), None)


# --------------------------------------------------------------------------- pure helpers


def slack_text(typed: str, people: Sequence[Person]) -> str:
    """What Slack stores when someone types ``typed``: ``&<>`` escaped, ``@name`` → ``<@ID>``.

    A name matches whole and case-insensitively (``@Trellis``, ``@trellis,``), never inside a
    longer word or an e-mail address (``x@trellis.example``).
    """
    text = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for person in sorted(people, key=lambda p: len(p.name), reverse=True):
        pattern = rf"(?<![\w@.])@{re.escape(person.name)}(?![\w-]|\.\w)"
        text = re.sub(pattern, f"<@{person.id}>", text, flags=re.IGNORECASE)
    return text


def editable_text(text: str, people: Sequence[Person]) -> str:
    """The inverse of :func:`slack_text`: the stored text as the person typed it."""
    names = {p.id: p.name for p in people}

    def mention(match: re.Match[str]) -> str:
        return "@" + (match.group(2) or names.get(match.group(1), match.group(1)))

    text = re.sub(r"<@([UWB][A-Z0-9]+)(?:\|([^>]*))?>", mention, text)
    return html.unescape(text) if "&" in text else text


def diff(old: Mapping[str, JsonDict], new: Mapping[str, JsonDict]) -> list[JsonDict]:
    """The operations that turn ``old`` into ``new``: ``put`` new or changed items, ``drop`` gone ones."""
    ops: list[JsonDict] = [{"op": "drop", "key": key} for key in old if key not in new]
    ops += [
        {"op": "put", "key": key, "item": item} for key, item in new.items() if old.get(key) != item
    ]
    return ops


def _after(ts: str) -> str:
    """A ``ts`` just after ``ts``, to place something the page made itself after what it follows."""
    return f"{Decimal(ts) + Decimal('0.000001'):.6f}"


# --------------------------------------------------------------------------- the feed


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


# --------------------------------------------------------------------------- the page


class DemoPage:
    """The demo page, acting as one person (``workspace.me``) in a :class:`FakeSlack` workspace.

    Everything the person does becomes what a Slack client would do: ``FakeSlack.post``,
    ``edit``, ``delete``, ``click`` and ``slash``, so the bot receives real Slack events over
    Socket Mode. Choices made where Slack leaves things to the client:

    * Only the person's own messages can be edited or deleted (403 otherwise), as in Slack.
    * Typed text is stored as Slack stores it: ``&<>`` escaped, ``@name`` a mention.
    * A slash command the app does not acknowledge within ``slash_timeout`` seconds (Slack
      allows 3) shows Slack's ``operation_timeout`` error to the person; an acknowledgement with
      a message, and ``response_url`` replies, are shown to the person only ("Only visible to
      you"). Replies sent to a ``response_url`` belong to the latest command or click: with one
      person at the keyboard that is the one they answer.
    * The page is served only to itself: requests must name ``127.0.0.1`` or ``localhost`` and
      this port as ``Host`` (no DNS rebinding), and changes (POST, the feed) must come from the
      page's own origin with a JSON body (no cross-site requests from other pages in the
      browser). Responses carry a strict Content-Security-Policy: no inline script, nothing
      from other sites.
    """

    def __init__(
        self,
        slack: FakeSlack,
        workspace: DemoWorkspace,
        *,
        slash_timeout: float = 3.0,
    ) -> None:
        self.slack = slack
        self.workspace = workspace
        self.slash_timeout = slash_timeout
        self.feed = Feed(self)
        self._local: dict[str, JsonDict] = {}
        self._reply_marks: list[tuple[int, str]] = []
        self._placed: dict[int, str] = {}
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._sockets: set[web.WebSocketResponse] = set()

    # ------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (0: any free port); ``OSError`` when the port is taken."""
        app = web.Application(middlewares=[self._guard], client_max_size=256 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/feed", self._feed)
        app.router.add_post("/api/post", self._post)
        app.router.add_post("/api/edit", self._edit)
        app.router.add_post("/api/delete", self._delete)
        app.router.add_post("/api/click", self._click)
        app.router.add_post("/api/slash", self._slash)
        app.router.add_get("/files/{file_id}/{name}", self._file)
        app.on_shutdown.append(self._close_sockets)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self.feed.start()

    async def stop(self) -> None:
        """Close every page's feed and stop listening."""
        await self.feed.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        """The port listened on, once started."""
        if self._port is None:
            raise RuntimeError("the demo page is not started")
        return self._port

    @property
    def url(self) -> str:
        """Where to point a browser."""
        return f"http://127.0.0.1:{self.port}/"

    async def _close_sockets(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"the demo is stopping")

    # ------------------------------------------------------------ what the page shows

    def items(self) -> dict[str, JsonDict]:
        """Everything the person sees, by key: messages, their ephemerals, command replies."""
        me = self.workspace.me
        rooms = {r.id for r in self.workspace.rooms}
        items: dict[str, JsonDict] = {}
        for room in self.workspace.rooms:
            for message in self.slack.messages(room.id):
                items[f"m {room.id} {message['ts']}"] = {
                    "kind": "message",
                    "channel": room.id,
                    "ts": message["ts"],
                    "message": self._with_file_urls(message),
                }
        for ephemeral in self.slack.ephemerals:
            if ephemeral.get("user") == me and ephemeral.get("channel") in rooms:
                ts = str(ephemeral["message_ts"])
                items[f"e {ephemeral['channel']} {ts}"] = _only_you(
                    ephemeral["channel"],
                    ts,
                    self.workspace.bot,
                    ephemeral,
                    thread_ts=ephemeral.get("thread_ts"),
                )
        items.update(self._response_items())
        items.update(self._local)
        return items

    def _response_items(self) -> dict[str, JsonDict]:
        """``response_url`` replies that Slack shows only to the person (not replacements)."""
        items: dict[str, JsonDict] = {}
        for index, body in enumerate(self.slack.responses):
            channel = next((c for at, c in reversed(self._reply_marks) if at <= index), None)
            quiet = not any(truthy(body.get(k)) for k in ("replace_original", "delete_original"))
            if channel is None or not quiet or body.get("response_type") == "in_channel":
                continue
            # Placed once, when first seen: below what was there then, and staying put.
            ts = self._placed.setdefault(index, self._latest_ts(channel))
            items[f"r {index}"] = _only_you(channel, ts, self.workspace.bot, body)
        return items

    def _latest_ts(self, channel: str) -> str:
        """A ``ts`` just after everything in ``channel`` so far (placing the page's own notes)."""
        stamps = [m["ts"] for m in self.slack.messages(channel)]
        stamps += [e["message_ts"] for e in self.slack.ephemerals if e.get("channel") == channel]
        stamps += [i["ts"] for k, i in self._local.items() if i["channel"] == channel]
        return _after(max(stamps, key=Decimal, default="1700000000.000000"))

    def _with_file_urls(self, message: JsonDict) -> JsonDict:
        for file in message.get("files") or []:
            if isinstance(file, dict) and file.get("mode") != "tombstone" and "id" in file:
                name = str(file.get("name") or "file")
                file["demo_url"] = f"/files/{file['id']}/{name}"
        return message

    def _note(self, channel: str, text: str, *, thread_ts: str | None = None) -> None:
        """Show the person a note from Slack itself (an unknown command, a timeout)."""
        ts = self._latest_ts(channel)
        self._local[f"n {len(self._local)}"] = _only_you(
            channel, ts, "USLACKBOT", {"text": text}, thread_ts=thread_ts
        )
        self.feed.poke()

    # ------------------------------------------------------------ HTTP: guard and files

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        hosts = {f"127.0.0.1:{self._port}", f"localhost:{self._port}"}
        if request.host not in hosts:
            return _error(403, "this page answers only at 127.0.0.1 or localhost")
        changes = request.method != "GET" or request.path == "/api/feed"
        origin = request.headers.get("Origin")
        if changes and origin is not None and origin not in {f"http://{h}" for h in hosts}:
            return _error(403, "requests from other sites are refused")
        if request.method == "POST" and request.content_type != "application/json":
            return _error(415, "send JSON")
        response = await handler(request)
        if not response.prepared:
            response.headers.update(_SECURITY_HEADERS)
        return response

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return _static_file("index.html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in _STATIC or name == "index.html":
            return _error(404, "not found")
        return _static_file(name)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        file = self.slack.files.get(request.match_info["file_id"])
        if file is None or file.deleted or file.channel not in {r.id for r in self.workspace.rooms}:
            return _error(404, "this file was deleted or never shared here")
        inline = _INLINE_TYPES.get(file.filetype)
        response = web.Response(body=file.content)
        response.content_type = inline or (
            "text/csv" if file.filetype == "csv" else "application/octet-stream"
        )
        if inline is None:
            safe = re.sub(r"[^\w.-]+", "_", file.name) or "file"
            response.headers["Content-Disposition"] = f'attachment; filename="{safe}"'
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response

    # ------------------------------------------------------------ HTTP: the feed

    async def _state(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"workspace": self.workspace.as_json(), "items": self.items()},
            headers={"Cache-Control": "no-store"},
        )

    async def _feed(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        self._sockets.add(ws)
        queue = self.feed.subscribe()
        writer = asyncio.create_task(_write(ws, queue))
        try:
            async for frame in ws:
                if frame.type == WSMsgType.ERROR:
                    break
        finally:
            self.feed.unsubscribe(queue)
            self._sockets.discard(ws)
            writer.cancel()
            await asyncio.wait([writer])
        return ws

    # ------------------------------------------------------------ HTTP: what the person does

    async def _args(self, request: web.Request) -> JsonDict | web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "the body is not a JSON object")
        if self.workspace.room(body.get("channel")) is None:
            return _error(404, "no such conversation")
        return body

    def _typed(self, body: JsonDict) -> str | web.Response:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "type a message first")
        stored = slack_text(text.strip(), self.workspace.people)
        if len(stored) > MAX_TEXT:
            return _error(400, "that message is too long for Slack")
        return stored

    def _message(self, body: JsonDict, key: str = "ts") -> JsonDict | web.Response:
        ts = body.get(key)
        if not isinstance(ts, str):
            return _error(400, f"{key} is required")
        found = next((m for m in self.slack.messages(body["channel"]) if m["ts"] == ts), None)
        if found is None:
            return _error(404, "that message is gone")
        return found

    def _own(self, body: JsonDict) -> JsonDict | web.Response:
        message = self._message(body)
        if isinstance(message, web.Response):
            return message
        if message.get("user") != self.workspace.me or message.get("subtype") == "tombstone":
            return _error(403, "you can only change your own messages")
        return message

    async def _post(self, request: web.Request) -> web.StreamResponse:
        body = await self._args(request)
        if isinstance(body, web.Response):
            return body
        text = self._typed(body)
        if isinstance(text, web.Response):
            return text
        thread_ts = None
        if body.get("thread_ts") is not None:
            parent = self._message(body, "thread_ts")
            if isinstance(parent, web.Response):
                return parent
            thread_ts = str(parent["ts"])
        ts = await self.slack.post(body["channel"], self.workspace.me, text, thread_ts=thread_ts)
        return web.json_response({"ok": True, "ts": ts})

    async def _edit(self, request: web.Request) -> web.StreamResponse:
        body = await self._args(request)
        if isinstance(body, web.Response):
            return body
        message = self._own(body)
        if isinstance(message, web.Response):
            return message
        text = self._typed(body)
        if isinstance(text, web.Response):
            return text
        if text != message.get("text"):
            await self.slack.edit(body["channel"], str(message["ts"]), text)
        return web.json_response({"ok": True})

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        body = await self._args(request)
        if isinstance(body, web.Response):
            return body
        message = self._own(body)
        if isinstance(message, web.Response):
            return message
        await self.slack.delete(body["channel"], str(message["ts"]))
        return web.json_response({"ok": True})

    async def _click(self, request: web.Request) -> web.StreamResponse:
        body = await self._args(request)
        if isinstance(body, web.Response):
            return body
        ts, action_id, value = body.get("ts"), body.get("action_id"), body.get("value")
        if not isinstance(ts, str) or not isinstance(action_id, str):
            return _error(400, "ts and action_id are required")
        # The blocks the page showed: a click on a button the bot has just removed still
        # reaches the app, as it does from a Slack client a moment behind.
        seen = body.get("blocks")
        seen_blocks = (
            seen if isinstance(seen, list) and all(isinstance(b, dict) for b in seen) else None
        )
        self._reply_marks.append((len(self.slack.responses), body["channel"]))
        try:
            await self.slack.click(
                body["channel"],
                ts,
                action_id,
                user=self.workspace.me,
                value=value if isinstance(value, str) else None,
                seen_blocks=seen_blocks,
            )
        except KeyError:
            return _error(409, "that button is gone")
        except TimeoutError:
            return _error(504, "the app did not answer the click")
        return web.json_response({"ok": True})

    async def _slash(self, request: web.Request) -> web.StreamResponse:
        body = await self._args(request)
        if isinstance(body, web.Response):
            return body
        channel = body["channel"]
        match = _SLASH.match(str(body.get("text", "")).strip())
        if match is None:
            return _error(400, "a command starts with / and a name")
        command, rest = match.group(1).lower(), (match.group(2) or "").strip()
        if command not in self.workspace.commands:
            self._note(channel, f"`{command}` is not a valid command.")
            return web.json_response({"ok": False, "error": "unknown_command"})
        self._reply_marks.append((len(self.slack.responses), channel))
        try:
            async with asyncio.timeout(self.slash_timeout):
                ack = await self.slack.slash(command, rest, channel=channel, user=self.workspace.me)
        except TimeoutError:
            self._note(channel, f'{command} failed with the error "operation_timeout"')
            return web.json_response({"ok": False, "error": "operation_timeout"})
        reply = ack.payload or {}
        if reply.get("text") or reply.get("blocks"):
            ts = self._latest_ts(channel)
            self._local[f"a {ack.envelope_id}"] = _only_you(channel, ts, self.workspace.bot, reply)
            self.feed.poke()
        return web.json_response({"ok": True})


def _only_you(
    channel: str,
    ts: str,
    user: str,
    body: Mapping[str, Any],
    *,
    thread_ts: object = None,
) -> JsonDict:
    """A message only the person sees (an ephemeral, a command's reply), as the page draws it."""
    return {
        "kind": "ephemeral",
        "channel": channel,
        "ts": ts,
        "message": {
            "ts": ts,
            "user": user,
            "text": str(body.get("text", "")),
            "blocks": copy.deepcopy(body.get("blocks") or []),
            "thread_ts": thread_ts,
        },
    }


async def _write(ws: web.WebSocketResponse, queue: asyncio.Queue[JsonDict | None]) -> None:
    """Send a page its queue, in order, until the end or until it goes."""
    with contextlib.suppress(ConnectionResetError):
        while (message := await queue.get()) is not None:
            await ws.send_str(json.dumps(message))
        await ws.close(code=1001, message=b"the demo is stopping")


def _static_file(name: str) -> web.Response:
    content = (resources.files("trellis_slack.demo") / "static" / name).read_bytes()
    response = web.Response(body=content, headers={"Cache-Control": "no-cache"})
    response.content_type = _STATIC[name].split(";")[0]
    if "charset" in _STATIC[name]:
        response.charset = "utf-8"
    return response


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"ok": False, "error": reason}, status=status)
