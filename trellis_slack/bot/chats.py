"""Trellis's open-chat cap: retiring the chats used least recently, and telling retired threads.

Trellis keeps a limited number of open chats per member (500) and refuses to create another
(``409 OPEN_CHAT_CAP``) until one is deleted. With one shared token every Slack thread is a chat
of the same member, so a busy workspace reaches the cap within weeks. The bridge never fails a
question on it: it deletes the chats of the asker's identity that were used least recently
(the shared token's, or in per-user mode the asker's own), marks their threads *retired* in the
store, and asks again. A follow-up in a retired thread starts a fresh chat and says so; an edit
or deletion of a question asked in a retired chat changes nothing in Trellis and says why.
``TRELLIS_CHAT_RETENTION_DAYS`` retires idle chats ahead of time (`retire_idle`, `keep_retiring`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Final, Protocol, runtime_checkable

from trellis_slack.errors import TrellisError
from trellis_slack.store.base import Store
from trellis_slack.store.records import Conversation
from trellis_slack.trellis.rest import OPEN_CHAT_CAP

__all__ = [
    "CHANGE_IN_RETIRED",
    "CHAT_QUEUED",
    "DAILY",
    "OPEN_CHAT_CAP",
    "RETIRED_FOLLOW_UP",
    "ChatDeleter",
    "Chats",
    "keep_retiring",
]

log = logging.getLogger(__name__)

#: The line a follow-up in a retired thread starts with.
RETIRED_FOLLOW_UP: Final = (
    "I no longer have the earlier part of this conversation (Trellis keeps only so many open "
    "chats), so I'm answering this on its own."
)

#: What an edit or deletion of a question asked in a retired chat says.
CHANGE_IN_RETIRED: Final = (
    "This question was {done}, but Trellis no longer has the earlier part of this conversation "
    "(it keeps only so many open chats), so there was nothing to change there. "
    "To ask again, mention me with the question."
)

#: What a question waiting for Trellis's chat-creation limit shows meanwhile.
CHAT_QUEUED: Final = "Queued: Trellis lets me start only so many new conversations a minute…"

#: Seconds between two passes of the idle-chat retention.
DAILY: Final = 86_400.0


@runtime_checkable
class ChatDeleter(Protocol):
    """Something that deletes a chat in Trellis (``TrellisClient``); False when already gone."""

    async def delete_chat(self, chat_id: str, *, identity: str | None = None) -> bool: ...


class Chats:
    """Retires Trellis chats the bridge created: to make room under the cap, or when idle."""

    def __init__(self, store: Store, deleter: ChatDeleter | None, *, batch: int = 5) -> None:
        self.store = store
        self.deleter = deleter
        #: How many chats one cap refusal retires (a few at once, so the next threads need none).
        self.batch = max(1, batch)
        #: One retirement at a time per owner, so two refusals at once do not pick the same chats.
        self._locks: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"<Chats batch={self.batch}>"

    async def make_room(
        self, owner_id: str, identity: str | None, *, busy: Collection[str] = ()
    ) -> int:
        """Retire the least recently used chats of this owner (one Trellis identity).

        ``owner_id`` is "" for the shared token (every thread's chat is the same member's), the
        asker's Slack id in per-user mode. ``busy``: chats answering right now, never retired.
        Returns how many were retired (0: nothing could be, so the refusal stands).
        """
        async with self._locks.setdefault(owner_id, asyncio.Lock()):
            candidates = await self.store.least_recently_used(owner_id, self.batch, exclude=busy)
            retired = 0
            for conversation in candidates:
                if await self.retire(conversation, identity):
                    retired += 1
        log.info("open-chat cap: retired %d of %d chats", retired, len(candidates))
        return retired

    async def retire(self, conversation: Conversation, identity: str | None) -> bool:
        """Delete the chat in Trellis, then mark its thread retired; False if Trellis refused."""
        if self.deleter is None:
            return False
        try:
            await self.deleter.delete_chat(conversation.chat_id, identity=identity)
        except TrellisError as exc:
            log.warning("could not delete Trellis chat %s: %s", conversation.chat_id, exc)
            return False
        return await self.store.retire_conversation(conversation)

    async def retire_idle(
        self, older_than_days: float, identity_of: Callable[[str], Awaitable[str | None]]
    ) -> int:
        """Retire every chat not used for ``older_than_days``; returns how many were."""
        retired = 0
        for conversation in await self.store.idle_conversations(older_than_days):
            owner = conversation.owner_id
            identity = await identity_of(owner) if owner else None
            if await self.retire(conversation, identity):
                retired += 1
        if retired:
            log.info("retired %d chats idle for over %g days", retired, older_than_days)
        return retired


async def keep_retiring(
    chats: Chats,
    older_than_days: float,
    identity_of: Callable[[str], Awaitable[str | None]],
    *,
    every: float = DAILY,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Retire idle chats now and then every ``every`` seconds, until cancelled."""
    while True:
        try:
            await chats.retire_idle(older_than_days, identity_of)
        except Exception:
            log.warning("could not retire idle chats", exc_info=True)
        await sleep(every)
