"""The Slack Web API shell: post, update, delete and upload, with failures logged instead of raised."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from trellis_slack.slack.blocks import Rendered

log = logging.getLogger(__name__)

#: Methods that take form/query parameters rather than a JSON body.
_READ_METHODS = frozenset(
    {"users.info", "conversations.info", "conversations.replies", "files.info"}
)


@dataclass(frozen=True, slots=True)
class UserInfo:
    """What the bridge needs to know about a Slack user."""

    user_id: str
    name: str
    email: str | None
    team_id: str | None
    is_bot: bool
    is_admin: bool


class SlackIO:
    """Thin wrapper over ``AsyncWebClient``.

    Slack failures are logged with the method and Slack's error code and reported as ``None`` /
    ``False``: one failed post must never end a turn, and callers decide what the user sees.
    Rate limits are retried by the client's ``AsyncRateLimitErrorRetryHandler``.
    """

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._users: dict[str, UserInfo] = {}
        self.calls = 0

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any] | None:
        self.calls += 1
        try:
            if method in _READ_METHODS:
                response = await self.client.api_call(method, params=kwargs)
            else:
                response = await self.client.api_call(method, json=kwargs)
        except SlackApiError as exc:
            log.warning("Slack %s failed: %s", method, exc.response.get("error", "unknown error"))
            return None
        except (TimeoutError, SlackClientError, OSError, aiohttp.ClientError) as exc:
            log.warning("Slack %s failed: %s", method, type(exc).__name__)
            return None
        return dict(response.data) if isinstance(response.data, dict) else None

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

    async def upload(
        self,
        channel: str,
        thread_ts: str,
        *,
        content: bytes,
        filename: str,
        title: str,
        alt_text: str | None = None,
        comment: str | None = None,
    ) -> str | None:
        """Upload a file into the thread (``files_upload_v2``); its file id, or None."""
        self.calls += 3  # getUploadURLExternal, the upload itself, completeUploadExternal
        upload: dict[str, Any] = {"content": content, "filename": filename, "title": title}
        if alt_text:
            upload["alt_txt"] = alt_text[:1000]
        try:
            response = await self.client.files_upload_v2(
                file_uploads=[upload],
                channel=channel,
                thread_ts=thread_ts,
                initial_comment=comment,
            )
        except SlackApiError as exc:
            log.warning("Slack file upload failed: %s", exc.response.get("error", "unknown error"))
            return None
        except (TimeoutError, SlackClientError, OSError, aiohttp.ClientError) as exc:
            log.warning("Slack file upload failed: %s", type(exc).__name__)
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

    async def user(self, user_id: str) -> UserInfo | None:
        """``users.info``, cached for the life of the process."""
        cached = self._users.get(user_id)
        if cached is not None:
            return cached
        data = await self._call("users.info", user=user_id)
        user = data.get("user") if data else None
        if not isinstance(user, dict):
            return None
        profile = user.get("profile") or {}
        name = (
            profile.get("display_name")
            or profile.get("real_name")
            or user.get("real_name")
            or user.get("name")
            or user_id
        )
        email = profile.get("email")
        info = UserInfo(
            user_id=user_id,
            name=str(name),
            email=email if isinstance(email, str) and email else None,
            team_id=user.get("team_id") if isinstance(user.get("team_id"), str) else None,
            is_bot=bool(user.get("is_bot")),
            is_admin=bool(user.get("is_admin") or user.get("is_owner")),
        )
        self._users[user_id] = info
        return info

    async def names(self, user_ids: Sequence[str]) -> dict[str, str]:
        """Display names for the given user ids (ids that cannot be looked up are left out)."""
        infos = await asyncio.gather(*(self.user(uid) for uid in dict.fromkeys(user_ids)))
        return {info.user_id: info.name for info in infos if info is not None}


class LiveMessage:
    """A bot message that changes as an answer progresses, updated at most once per ``interval``.

    ``show`` only records the latest body; a background flush sends it when the gap allows, so a
    burst of Trellis events costs one ``chat.update``. The gap starts at ``interval`` and doubles
    after each update up to four times ``interval``: the first seconds of an answer feel alive,
    and a long answer (or a thousand at once) stays far below Slack's ``chat.update`` rate limit.
    A short text-only answer costs at most five Slack calls: post, three updates, the answer.
    ``finish`` sends the final body at once (after any update in flight) and stops updating.
    """

    def __init__(self, slack: SlackIO, channel: str, ts: str, *, interval: float = 1.0) -> None:
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
