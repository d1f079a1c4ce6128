"""The demo page's HTTP and WebSocket API: what a person sees in the local Slack, and what they do."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from importlib import resources
from typing import Any, Final

from aiohttp import WSMsgType, web
from aiohttp.typedefs import Handler

from trellis_slack.demo.feed import Feed, write_feed
from trellis_slack.demo.files import post_question
from trellis_slack.demo.view import PageView
from trellis_slack.demo.workspace import DemoWorkspace, slack_text
from trellis_slack.fakes.slack_server import Ack, FakeSlack

__all__ = ["MAX_TEXT", "DemoPage"]

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]

#: Slack refuses longer messages (``msg_too_long``).
MAX_TEXT: Final = 40_000
#: The page's own files, served from the package (nothing from a CDN): name → content type.
_STATIC: Final = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "data_blocks.js": "text/javascript; charset=utf-8",
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
        self.view = PageView(slack, workspace, self.feed.poke)
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
        app.router.add_post("/api/feedback", self._feedback)
        app.router.add_post("/api/open", self._open)
        app.router.add_post("/api/stop_agent", self._stop_agent)
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
        return self.view.items()

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
        shared = file is not None and file.channel in {r.id for r in self.workspace.rooms}
        if file is None or file.deleted or not (shared or self.view.shows_file(file.id)):
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
        writer = asyncio.create_task(write_feed(ws, queue))
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
        me, attach = self.workspace.me, body.get("attach")
        ts = await post_question(
            self.slack, body["channel"], me, text, thread_ts=thread_ts, attach=attach
        )
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
        self.view.expect_replies(body["channel"])
        click = self.slack.click(
            body["channel"],
            ts,
            action_id,
            user=self.workspace.me,
            value=value if isinstance(value, str) else None,
            seen_blocks=_seen(body),
        )
        return await _acked(click, gone="that button is gone")

    async def _feedback(self, request: web.Request) -> web.StreamResponse:
        body = await self._args(request)
        if isinstance(body, web.Response):
            return body
        ts, vote = body.get("ts"), body.get("vote")
        if not isinstance(ts, str) or vote not in ("positive", "negative"):
            return _error(400, "ts and a positive or negative vote are required")
        self.view.expect_replies(body["channel"])
        me, seen = self.workspace.me, _seen(body)
        vote_on = self.slack.feedback(body["channel"], ts, vote, user=me, seen_blocks=seen)
        return await _acked(vote_on, gone="those feedback buttons are gone")

    async def _open(self, request: web.Request) -> web.StreamResponse:
        """The person opens the app's conversation: Slack tells the app (its Messages tab)."""
        body = await self._args(request)
        if isinstance(body, web.Response):
            return body
        if body["channel"] not in {r.id for r in self.workspace.rooms if r.kind == "im"}:
            return _error(400, "only the conversation with the app is opened this way")
        return await _acked(self.slack.open_home(self.workspace.me, "messages"))

    async def _stop_agent(self, request: web.Request) -> web.StreamResponse:
        """Slack's own Stop in the app's conversation: its live streams stop, the app is told."""
        body = await self._args(request)
        if isinstance(body, web.Response):
            return body
        thread = self._message(body, "thread_ts")
        if isinstance(thread, web.Response):
            return thread
        me = self.workspace.me
        return await _acked(self.slack.stop_agent(body["channel"], str(thread["ts"]), user=me))

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
            self.view.note(channel, f"`{command}` is not a valid command.")
            return web.json_response({"ok": False, "error": "unknown_command"})
        self.view.expect_replies(channel)
        try:
            async with asyncio.timeout(self.slash_timeout):
                ack = await self.slack.slash(command, rest, channel=channel, user=self.workspace.me)
        except TimeoutError:
            self.view.note(channel, f'{command} failed with the error "operation_timeout"')
            return web.json_response({"ok": False, "error": "operation_timeout"})
        reply = ack.payload or {}
        if reply.get("text") or reply.get("blocks"):
            self.view.command_reply(f"a {ack.envelope_id}", channel, reply)
        return web.json_response({"ok": True})


def _seen(body: JsonDict) -> list[JsonDict] | None:
    """The blocks the page showed: a click on a button the bot has just removed still reaches
    the app, as it does from a Slack client a moment behind."""
    seen = body.get("blocks")
    return seen if isinstance(seen, list) and all(isinstance(b, dict) for b in seen) else None


async def _acked(action: Awaitable[Ack], *, gone: str = "that is gone") -> web.Response:
    """Do what the person did in Slack; 409 when it is gone, 504 when the app does not answer."""
    try:
        await action
    except KeyError:
        return _error(409, gone)
    except TimeoutError:
        return _error(504, "the app did not answer")
    return web.json_response({"ok": True})


def _static_file(name: str) -> web.Response:
    content = (resources.files("trellis_slack.demo") / "static" / name).read_bytes()
    kind, _, charset = _STATIC[name].partition("; charset=")
    headers = {"Cache-Control": "no-cache"}
    return web.Response(body=content, headers=headers, content_type=kind, charset=charset or None)


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"ok": False, "error": reason}, status=status)
