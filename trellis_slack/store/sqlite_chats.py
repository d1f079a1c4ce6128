"""The SQLite store's chat upkeep: when each thread's Trellis chat was last used, and retirement."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar

from sqlite_utils import Database

from trellis_slack.store.records import Conversation

_T = TypeVar("_T")

_SECONDS_PER_DAY = 86_400.0


def _conversation_of(row: tuple[Any, ...]) -> Conversation:
    return Conversation(
        team_id=row[0],
        channel_id=row[1],
        thread_ts=row[2],
        owner_id=row[3],
        chat_id=row[4],
        integration_id=row[5],
        model=row[6],
    )


class ChatUpkeep:
    """Least recently used and idle chats, and retiring them; `SqliteStore` runs the SQL.

    A retired conversation keeps its row (so its thread is known to have had a chat) with
    ``retired_at`` set; the questions asked in it are marked too, so an edit or deletion of one
    of them later is known to have nothing in Trellis. Saving a new chat for the thread and
    using it (`touch_conversation`) makes it live again.
    """

    _db: Database
    _clock: Callable[[], float]

    if TYPE_CHECKING:  # provided by SqliteStore

        async def _run(self, fn: Callable[..., _T], /, *args: Any) -> _T: ...

    async def touch_conversation(self, conversation: Conversation) -> None:
        """Note that the conversation's chat is used now (it is live, whatever it was before)."""
        await self._run(self._touch_conversation, conversation)

    def _touch_conversation(self, c: Conversation) -> None:
        with self._db.atomic():
            self._db.execute(
                "UPDATE conversations SET used_at = ?, retired_at = NULL"
                " WHERE team_id = ? AND channel_id = ? AND thread_ts = ? AND owner_id = ? AND chat_id = ?",
                (self._clock(), c.team_id, c.channel_id, c.thread_ts, c.owner_id, c.chat_id),
            )

    async def conversation_retired(
        self, team_id: str, channel_id: str, thread_ts: str, owner_id: str = ""
    ) -> bool:
        """Whether the thread's chat (for that owner) was retired: Trellis no longer has it."""
        return await self._run(self._conversation_retired, team_id, channel_id, thread_ts, owner_id)

    def _conversation_retired(
        self, team_id: str, channel_id: str, thread_ts: str, owner_id: str
    ) -> bool:
        row = self._db.execute(
            "SELECT retired_at FROM conversations WHERE team_id = ? AND channel_id = ? AND thread_ts = ? AND owner_id = ?",
            (team_id, channel_id, thread_ts, owner_id),
        ).fetchone()
        return row is not None and row[0] is not None

    async def question_chat_retired(self, channel_id: str, ts: str) -> bool:
        """Whether the chat the question was asked in was retired (Trellis no longer has it)."""
        return await self._run(self._question_chat_retired, channel_id, ts)

    def _question_chat_retired(self, channel_id: str, ts: str) -> bool:
        row = self._db.execute(
            "SELECT chat_retired_at FROM questions WHERE channel_id = ? AND ts = ?",
            (channel_id, ts),
        ).fetchone()
        return row is not None and row[0] is not None

    async def least_recently_used(
        self, owner_id: str, limit: int, *, exclude: Collection[str] = ()
    ) -> list[Conversation]:
        """Up to ``limit`` live conversations of ``owner_id``, least recently used first.

        ``exclude``: chat ids to leave out (those answering right now).
        """
        return await self._run(self._least_recently_used, owner_id, limit, tuple(exclude))

    def _least_recently_used(
        self, owner_id: str, limit: int, exclude: tuple[str, ...]
    ) -> list[Conversation]:
        rows = self._db.execute(
            "SELECT team_id, channel_id, thread_ts, owner_id, chat_id, integration_id, model FROM conversations"
            " WHERE owner_id = ? AND retired_at IS NULL"
            " ORDER BY COALESCE(used_at, updated_at), thread_ts LIMIT ?",
            (owner_id, max(0, limit) + len(exclude)),
        ).fetchall()
        rows = [row for row in rows if row[4] not in exclude][: max(0, limit)]
        return [_conversation_of(row) for row in rows]

    async def idle_conversations(self, older_than_days: float) -> list[Conversation]:
        """Every live conversation not used for ``older_than_days``, least recently used first."""
        return await self._run(self._idle_conversations, older_than_days)

    def _idle_conversations(self, older_than_days: float) -> list[Conversation]:
        cutoff = self._clock() - older_than_days * _SECONDS_PER_DAY
        rows = self._db.execute(
            "SELECT team_id, channel_id, thread_ts, owner_id, chat_id, integration_id, model FROM conversations"
            " WHERE retired_at IS NULL AND COALESCE(used_at, updated_at) < ?"
            " ORDER BY COALESCE(used_at, updated_at), thread_ts",
            (cutoff,),
        ).fetchall()
        return [_conversation_of(row) for row in rows]

    async def retire_conversation(self, conversation: Conversation) -> bool:
        """Mark the conversation (if it still has that chat) and its questions as retired.

        False when it changed in the meantime (a new chat, or retired already).
        """
        return await self._run(self._retire_conversation, conversation)

    def _retire_conversation(self, c: Conversation) -> bool:
        now = self._clock()
        key = (c.team_id, c.channel_id, c.thread_ts, c.owner_id)
        with self._db.atomic():
            cursor = self._db.execute(
                "UPDATE conversations SET retired_at = ?"
                " WHERE team_id = ? AND channel_id = ? AND thread_ts = ? AND owner_id = ? AND chat_id = ? AND retired_at IS NULL",
                (now, *key, c.chat_id),
            )
            if cursor.rowcount == 0:
                return False
            self._db.execute(
                "UPDATE questions SET chat_retired_at = ? WHERE channel_id = ? AND thread_ts = ?"
                " AND owner_id = ? AND chat_retired_at IS NULL",
                (now, c.channel_id, c.thread_ts, c.owner_id),
            )
        return True
