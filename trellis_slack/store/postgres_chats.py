"""The PostgreSQL store's chat upkeep: when each thread's Trellis chat was last used, retirement."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

import psycopg
from psycopg.rows import TupleRow

from trellis_slack.store.postgres_records import C_COLUMNS, conversation_of
from trellis_slack.store.records import Conversation

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

Conn = psycopg.AsyncConnection[TupleRow]

_SECONDS_PER_DAY = 86_400.0


class PgChatUpkeep:
    """Least recently used and idle chats, and retiring them (as `sqlite_chats.ChatUpkeep`)."""

    _clock: Callable[[], float]

    if TYPE_CHECKING:  # provided by PostgresStore

        def _tx(self, wait: float | None = None) -> AbstractAsyncContextManager[Conn]: ...

    async def touch_conversation(self, conversation: Conversation) -> None:
        """Note that the conversation's chat is used now (it is live again if it was retired)."""
        c = conversation
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE conversations SET used_at = %s, retired_at = NULL WHERE team_id = %s"
                " AND channel_id = %s AND thread_ts = %s AND owner_id = %s AND chat_id = %s",
                (self._clock(), c.team_id, c.channel_id, c.thread_ts, c.owner_id, c.chat_id),
            )

    async def conversation_retired(
        self, team_id: str, channel_id: str, thread_ts: str, owner_id: str = ""
    ) -> bool:
        """Whether the thread's chat (for that owner) was retired: Trellis no longer has it."""
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT retired_at FROM conversations WHERE team_id = %s AND channel_id = %s"
                " AND thread_ts = %s AND owner_id = %s",
                (team_id, channel_id, thread_ts, owner_id),
            )
            row = await cur.fetchone()
        return row is not None and row[0] is not None

    async def question_chat_retired(self, channel_id: str, ts: str) -> bool:
        """Whether the chat the question was asked in was retired."""
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT chat_retired_at FROM questions WHERE channel_id = %s AND ts = %s",
                (channel_id, ts),
            )
            row = await cur.fetchone()
        return row is not None and row[0] is not None

    async def least_recently_used(
        self, owner_id: str, limit: int, *, exclude: Collection[str] = ()
    ) -> list[Conversation]:
        """Up to ``limit`` live conversations of ``owner_id``, least recently used first.

        ``exclude``: chat ids to leave out (those answering right now).
        """
        async with self._tx() as conn:
            cur = await conn.execute(
                f"SELECT {C_COLUMNS} FROM conversations WHERE owner_id = %s"
                " AND retired_at IS NULL AND NOT chat_id = ANY(%s)"
                " ORDER BY COALESCE(used_at, updated_at), thread_ts LIMIT %s",
                (owner_id, list(exclude), max(0, limit)),
            )
            rows = await cur.fetchall()
        return [conversation_of(row) for row in rows]

    async def idle_conversations(self, older_than_days: float) -> list[Conversation]:
        """Every live conversation not used for ``older_than_days``, least recently used first."""
        cutoff = self._clock() - older_than_days * _SECONDS_PER_DAY
        async with self._tx() as conn:
            cur = await conn.execute(
                f"SELECT {C_COLUMNS} FROM conversations WHERE retired_at IS NULL"
                " AND COALESCE(used_at, updated_at) < %s"
                " ORDER BY COALESCE(used_at, updated_at), thread_ts",
                (cutoff,),
            )
            rows = await cur.fetchall()
        return [conversation_of(row) for row in rows]

    async def retire_conversation(self, conversation: Conversation) -> bool:
        """Mark the conversation (if it still has that chat) and its questions retired.

        False when it changed in the meantime (a new chat, or retired already, by any replica).
        """
        c = conversation
        now = self._clock()
        async with self._tx() as conn:
            cur = await conn.execute(
                "UPDATE conversations SET retired_at = %s WHERE team_id = %s AND channel_id = %s"
                " AND thread_ts = %s AND owner_id = %s AND chat_id = %s AND retired_at IS NULL",
                (now, c.team_id, c.channel_id, c.thread_ts, c.owner_id, c.chat_id),
            )
            if cur.rowcount == 0:
                return False
            await conn.execute(
                "UPDATE questions SET chat_retired_at = %s WHERE channel_id = %s"
                " AND thread_ts = %s AND owner_id = %s AND chat_retired_at IS NULL",
                (now, c.channel_id, c.thread_ts, c.owner_id),
            )
        return True
