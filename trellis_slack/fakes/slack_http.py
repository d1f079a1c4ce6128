"""The fake Slack's HTTP routes: the Web API with token checks, uploads, downloads, response_url."""

from __future__ import annotations

import copy
import json
import logging
import secrets
import time
from typing import Final

from aiohttp import web
from aiohttp.web_request import FileField

from trellis_slack.fakes.slack_api_base import optional_str, truthy
from trellis_slack.fakes.slack_content import with_block_ids
from trellis_slack.fakes.slack_model import ApiCall, Failure, JsonDict
from trellis_slack.fakes.slack_records import SlackRecords

__all__ = ["HttpRoutes"]

logger = logging.getLogger(__name__)

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


class HttpRoutes(SlackRecords):
    """The HTTP side: ``/api/{method}`` (with injected failures), file bytes, ``response_url``."""

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

    def _connections_open(self) -> JsonDict:
        ticket = secrets.token_hex(16)
        self._tickets.add(ticket)
        return {"url": f"ws://127.0.0.1:{self._port}/link/?ticket={ticket}&app_id={self.app_id}"}

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
