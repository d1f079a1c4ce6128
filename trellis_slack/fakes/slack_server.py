"""A fake Slack on 127.0.0.1: the Web API and Socket Mode that the real bolt app runs against."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Literal, Self

from aiohttp import web

from trellis_slack.fakes.slack_http import HttpRoutes
from trellis_slack.fakes.slack_humans import HumanActions
from trellis_slack.fakes.slack_model import Ack, ApiCall, Channel, Envelope, FakeFile, User
from trellis_slack.fakes.slack_socket import SocketMode
from trellis_slack.fakes.slack_streams import Stream

__all__ = ["Ack", "ApiCall", "Envelope", "FakeFile", "FakeSlack", "Stream"]

logger = logging.getLogger(__name__)


class FakeSlack(HumanActions, SocketMode, HttpRoutes):
    """Slack's Web API and Socket Mode on one aiohttp server, plus what humans and the bot did.

    The bolt app connects with ``AsyncWebClient(token=bot_token, base_url=api_url)`` and
    ``AsyncSocketModeHandler(app, app_token)``. Human actions (:meth:`post`, :meth:`edit`, …)
    change the world and send the events Slack sends, as envelopes, to an open socket (they
    wait in a queue while none is open). Web API calls by the bot change the world too and
    send their echo events. Everything is recorded for assertions; :meth:`wait_for`
    re-evaluates a predicate on each change.

    Slack's AI surface follows Slack's rules too: streamed replies (``chat.*Stream``, read back
    with :meth:`stream_of`), the assistant status and suggested prompts, ``context_actions``
    with ``feedback_buttons`` (:meth:`feedback` votes), images from uploaded files
    (``slack_file``), and Slack's own Stop (:meth:`stop_agent`).

    Built from parts, one module each: the state, records and waiting everything shares
    (``slack_records``, which also takes the constructor's arguments), what humans do
    (``slack_humans``), Socket Mode (``slack_socket``) and the HTTP routes (``slack_http``).
    """

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

    # ================================================================ injected trouble

    def rate_limit(self, method: str, *, times: int = 1, retry_after: int = 1) -> None:
        """The next ``times`` calls of ``method`` get HTTP 429 with ``Retry-After``."""
        self._rate_limits.setdefault(method, []).extend([retry_after] * times)

    def fail(self, method: str, error: str, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}``."""
        self._failures.setdefault(method, []).extend([error] * times)
