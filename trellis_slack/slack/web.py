"""The Slack Web API shell: every call the bot makes to Slack, with Slack's failures translated once.

Two ways to call, and each method says which it uses:

* **strict** (``api_call`` and the start-up calls): a refusal raises ``SlackRefused`` with Slack's
  error code, a network failure or time-out ``SlackUnavailable``; callers decide what that means.
* **forgiving** (posting, updating, deleting, looking people up, publishing the Home tab,
  answering a slash command): the failure is logged with the method and Slack's error code and
  reported as ``None`` / ``False``. One failed post must never end a turn.

Rate limits are retried by the client's ``AsyncRateLimitErrorRetryHandler`` (see `web_client`).
``LiveMessage`` lives in ``slack/live.py`` and is importable from here too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from trellis_slack.errors import SlackError, SlackRefused, SlackUnavailable
from trellis_slack.slack.blocks import Rendered
from trellis_slack.slack.live import LiveMessage
from trellis_slack.slack.users import UserInfo, parse_user

__all__ = ["LiveMessage", "SlackIO", "UserInfo", "web_client"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Methods that take form/query parameters rather than a JSON body.
_READ_METHODS = frozenset(
    {"users.info", "conversations.info", "conversations.replies", "files.info"}
)
#: Seconds to wait for Slack to take a slash command's answer at its ``response_url``.
_RESPONSE_TIMEOUT = 10
#: Seconds a file download from Slack may take, and the size of the pieces it is read in.
_DOWNLOAD_TIMEOUT = 120
_DOWNLOAD_CHUNK = 64 * 1024


def web_client(
    token: str, base_url: str, session: aiohttp.ClientSession, *, retries: bool = True
) -> AsyncWebClient:
    """The Web API client: ``base_url`` (``SLACK_API_URL``), 429s retried after ``Retry-After``.

    One shared ``aiohttp`` session keeps connections to Slack alive: without it slack-sdk opens a
    new connection for every call, which at a thousand conversations costs more than the calls.
    ``retries=False`` (``trellis-slack check``) reports what happens now instead.
    """
    handlers = (
        [
            AsyncRateLimitErrorRetryHandler(max_retry_count=6),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
        ]
        if retries
        else []
    )
    return AsyncWebClient(token=token, base_url=base_url, session=session, retry_handlers=handlers)


def _log_failure(method: str, exc: SlackError) -> None:
    reason = exc.error if isinstance(exc, SlackRefused) else str(exc)
    log.warning("Slack %s failed: %s", method, reason)


class SlackIO:
    """The one door to Slack's Web API (and to slash commands' ``response_url``)."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._users: dict[str, UserInfo] = {}
        self.calls = 0

    @staticmethod
    async def _translated(method: str, call: Awaitable[T]) -> T:
        """Await a slack-sdk call; its failures become ``SlackRefused`` / ``SlackUnavailable``."""
        try:
            return await call
        except SlackApiError as exc:
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            raise SlackRefused(method, str(error or "unknown_error")) from exc
        except (TimeoutError, SlackClientError, OSError, aiohttp.ClientError) as exc:
            raise SlackUnavailable(
                f"cannot reach Slack at SLACK_API_URL ({type(exc).__name__}): check the "
                "network, proxy or firewall"
            ) from exc

    async def api_call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """Call ``method`` (strict): Slack's answer, or ``SlackRefused`` / ``SlackUnavailable``."""
        self.calls += 1
        if method in _READ_METHODS:
            call = self.client.api_call(method, params=kwargs)
        else:
            call = self.client.api_call(method, json=kwargs)
        response = await self._translated(method, call)
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any] | None:
        """Call ``method`` (forgiving): Slack's answer, or None after logging why not."""
        try:
            return await self.api_call(method, **kwargs)
        except SlackError as exc:
            _log_failure(method, exc)
            return None

    # -- start-up (strict) --

    async def auth_test(self) -> dict[str, Any]:
        """``auth.test``: who the bot token belongs to."""
        return await self.api_call("auth.test")

    async def check_app_token(self, app_token: str) -> None:
        """Ask for a Socket Mode URL with the app-level token (the URL is neither opened nor kept)."""
        self.calls += 1
        await self._translated(
            "apps.connections.open", self.client.apps_connections_open(app_token=app_token)
        )

    # -- messages and files (forgiving) --

    async def post(self, channel: str, thread_ts: str | None, body: Rendered) -> str | None:
        """Post a message (in a thread when ``thread_ts`` is given); its ``ts``, or None."""
        args: dict[str, Any] = {"channel": channel, "text": body.text, "blocks": list(body.blocks)}
        if thread_ts:
            args["thread_ts"] = thread_ts
        data = await self._call("chat.postMessage", **args, unfurl_links=False, unfurl_media=False)
        ts = data.get("ts") if data else None
        return ts if isinstance(ts, str) else None

    async def update(self, channel: str, ts: str, body: Rendered) -> bool:
        """Replace a message the bot posted."""
        data = await self._call(
            "chat.update", channel=channel, ts=ts, text=body.text, blocks=list(body.blocks)
        )
        return data is not None

    async def delete(self, channel: str, ts: str) -> bool:
        """Delete a message the bot posted."""
        return await self._call("chat.delete", channel=channel, ts=ts) is not None

    async def set_status(
        self, channel: str, thread_ts: str, status: str, loading_messages: list[str] | None
    ) -> bool:
        """``assistant.threads.setStatus``: the line under a thread ("" clears it)."""
        args: dict[str, Any] = {"channel_id": channel, "thread_ts": thread_ts, "status": status}
        if loading_messages:
            args["loading_messages"] = loading_messages[:10]
        return await self._call("assistant.threads.setStatus", **args) is not None

    async def suggest_prompts(self, channel: str, prompts: Sequence[tuple[str, str]]) -> bool:
        """``assistant.threads.setSuggestedPrompts`` for the bot's conversation (no thread: as
        agent apps must call it) — at most four (title, message) pairs."""
        return (
            await self._call(
                "assistant.threads.setSuggestedPrompts",
                channel_id=channel,
                prompts=[{"title": title, "message": message} for title, message in prompts[:4]],
            )
            is not None
        )

    async def react(self, channel: str, ts: str, name: str) -> bool:
        """Add a reaction (``name`` without colons) to a message."""
        return (
            await self._call("reactions.add", channel=channel, timestamp=ts, name=name) is not None
        )

    async def ephemeral(self, channel: str, user: str, text: str, thread_ts: str | None) -> bool:
        """Show ``text`` to one user only."""
        args: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if thread_ts:
            args["thread_ts"] = thread_ts
        return await self._call("chat.postEphemeral", **args) is not None

    async def whisper(
        self, channel: str, user: str, body: Rendered, thread_ts: str | None
    ) -> str | None:
        """Show a whole message (blocks too) to one user only; its ``message_ts``, or None."""
        args: dict[str, Any] = {
            "channel": channel,
            "user": user,
            "text": body.text,
            "blocks": list(body.blocks),
        }
        if thread_ts:
            args["thread_ts"] = thread_ts
        data = await self._call("chat.postEphemeral", **args)
        ts = data.get("message_ts") if data else None
        return ts if isinstance(ts, str) else None

    async def open_dm(self, user: str) -> str | None:
        """The bot's DM with ``user`` (``conversations.open``, needs ``im:write``), or None."""
        data = await self._call("conversations.open", users=user)
        channel = data.get("channel") if data else None
        found = channel.get("id") if isinstance(channel, dict) else None
        return found if isinstance(found, str) and found else None

    async def permalink(self, channel: str, ts: str) -> str | None:
        """A link to one message (``chat.getPermalink``), or None."""
        data = await self._call("chat.getPermalink", channel=channel, message_ts=ts)
        link = data.get("permalink") if data else None
        return link if isinstance(link, str) and link else None

    async def upload(
        self,
        channel: str | None,
        thread_ts: str | None,
        *,
        content: bytes,
        filename: str,
        title: str,
        alt_text: str | None = None,
        comment: str | None = None,
    ) -> str | None:
        """Upload a file into the thread (``files_upload_v2``); its file id, or None.

        With ``channel`` None the file is uploaded without being shared anywhere: an answer then
        shows it through an ``image`` block (``slack_file``).
        """
        self.calls += 3  # getUploadURLExternal, the upload itself, completeUploadExternal
        upload: dict[str, Any] = {"content": content, "filename": filename, "title": title}
        if alt_text:
            upload["alt_txt"] = alt_text[:1000]
        try:
            response = await self._translated(
                "files.upload",
                self.client.files_upload_v2(
                    file_uploads=[upload],
                    channel=channel,
                    thread_ts=thread_ts if channel else None,
                    initial_comment=comment if channel else None,
                ),
            )
        except SlackError as exc:
            _log_failure("files.upload", exc)
            return None
        files = response.get("files") or []
        file_id = files[0].get("id") if files and isinstance(files[0], dict) else None
        return file_id if isinstance(file_id, str) else None

    async def file_share_ts(self, file_id: str, channel: str) -> list[str]:
        """The ``ts`` of the messages that share a file in ``channel`` (``files.info`` shares).

        Slack's upload answer does not say which message shared the file, and sharing finishes
        asynchronously; by the time the bot removes an answer it is long done, so it is looked up
        then rather than on every upload.
        """
        data = await self._call("files.info", file=file_id)
        file = data.get("file") if data else None
        shares = file.get("shares") if isinstance(file, dict) else None
        found: list[str] = []
        if isinstance(shares, dict):
            for visibility in shares.values():
                entries = visibility.get(channel) if isinstance(visibility, dict) else None
                for entry in entries if isinstance(entries, list) else []:
                    ts = entry.get("ts") if isinstance(entry, dict) else None
                    if isinstance(ts, str):
                        found.append(ts)
        return found

    async def delete_file(self, file_id: str) -> bool:
        """Delete a file the bot uploaded."""
        return await self._call("files.delete", file=file_id) is not None

    async def user(self, user_id: str, *, fresh: bool = False) -> UserInfo | None:
        """``users.info``, cached for the life of the process; ``fresh`` asks Slack again.

        Admin rights are looked up ``fresh`` (someone who stopped being an admin loses the right
        at once); names, e-mails and teams come from the cache.
        """
        cached = None if fresh else self._users.get(user_id)
        if cached is not None:
            return cached
        data = await self._call("users.info", user=user_id)
        info = parse_user(user_id, data.get("user") if data else None)
        if info is not None:
            self._users[user_id] = info
        return info

    async def names(self, user_ids: Sequence[str]) -> dict[str, str]:
        """Display names for the given user ids (ids that cannot be looked up are left out)."""
        infos = await asyncio.gather(*(self.user(uid) for uid in dict.fromkeys(user_ids)))
        return {info.user_id: info.name for info in infos if info is not None}

    # -- the App Home and slash commands (forgiving) --

    async def publish_home(self, user_id: str, view: dict[str, Any]) -> bool:
        """Show ``view`` as this person's Home tab."""
        return await self._call("views.publish", user_id=user_id, view=view) is not None

    async def download(self, url: str, *, limit: int) -> bytes:
        """A file's ``url_private``, with the bot token, into memory: at most ``limit`` bytes (strict).

        Streamed through the shared session and never written to disk. Raises ``SlackRefused``
        (``files.download``: ``file_too_large``, ``not_slack_url`` for a host that is not
        Slack's, which never gets the token, or ``http_<status>``) or ``SlackUnavailable``.
        """
        self.calls += 1
        session, token = self.client.session, self.client.token
        if session is None or token is None or not self._is_slack_url(url):
            raise SlackRefused("files.download", "not_slack_url")
        data = bytearray()
        try:
            async with session.get(
                url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=_DOWNLOAD_TIMEOUT),
            ) as response:
                if response.status != 200:
                    raise SlackRefused("files.download", f"http_{response.status}")
                if (response.content_length or 0) > limit:
                    raise SlackRefused("files.download", "file_too_large")
                async for chunk in response.content.iter_chunked(_DOWNLOAD_CHUNK):
                    data += chunk
                    if len(data) > limit:
                        raise SlackRefused("files.download", "file_too_large")
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            name = type(exc).__name__
            raise SlackUnavailable(f"could not download a file from Slack ({name})") from exc
        return bytes(data)

    def _is_slack_url(self, url: str) -> bool:
        """Whether ``url`` is on Slack's file host (or the API host): only those get the token."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        api_host = (urlsplit(self.client.base_url).hostname or "").lower()
        return parts.scheme in ("https", "http") and (
            host in (api_host, "slack.com") or host.endswith(".slack.com")
        )

    async def respond(self, response_url: str, body: Rendered) -> bool:
        """Answer a slash command privately (ephemeral) through its ``response_url``."""
        self.calls += 1
        webhook = AsyncWebhookClient(
            response_url, session=self.client.session, timeout=_RESPONSE_TIMEOUT
        )
        try:
            response = await self._translated(
                "response_url",
                webhook.send(text=body.text, blocks=list(body.blocks), response_type="ephemeral"),
            )
        except SlackError as exc:
            _log_failure("response_url", exc)
            return False
        if response.status_code != 200:
            log.warning("Slack response_url failed: HTTP %d", response.status_code)
            return False
        return True
