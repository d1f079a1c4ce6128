"""The SQLite store's conversations, bot posts, channel settings and greetings (part of `SqliteStore`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlite_utils import Database

from trellis_slack.store.records import BotPost, ChannelSettings, Conversation
from trellis_slack.store.schema import TABLES

_T = TypeVar("_T")


def _conversation_of(row: dict[str, Any]) -> Conversation:
    return Conversation(
        team_id=row["team_id"],
        channel_id=row["channel_id"],
        thread_ts=row["thread_ts"],
        owner_id=row["owner_id"],
        chat_id=row["chat_id"],
        integration_id=row["integration_id"],
        model=row["model"],
    )


class Records:
    """What the store keeps besides questions and claims; `SqliteStore` runs the SQL for these."""

    _db: Database
    _clock: Callable[[], float]

    async def _run(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        raise NotImplementedError

    # --- conversations --------------------------------------------------------------------------

    async def conversation(
        self, team_id: str, channel_id: str, thread_ts: str, owner_id: str = ""
    ) -> Conversation | None:
        """The Trellis chat saved for this thread (and owner), or None."""
        return await self._run(self._conversation, team_id, channel_id, thread_ts, owner_id)

    def _conversation(
        self, team_id: str, channel_id: str, thread_ts: str, owner_id: str
    ) -> Conversation | None:
        rows = self._db.table("conversations").rows_where(
            "team_id = ? AND channel_id = ? AND thread_ts = ? AND owner_id = ?",
            [team_id, channel_id, thread_ts, owner_id],
            limit=1,
        )
        row = next(rows, None)
        return None if row is None else _conversation_of(row)

    async def save_conversation(self, conversation: Conversation) -> None:
        """Insert or replace the chat for (team, channel, thread, owner)."""
        await self._run(self._save_conversation, conversation)

    def _save_conversation(self, c: Conversation) -> None:
        self._db.table("conversations").upsert(
            {
                "team_id": c.team_id,
                "channel_id": c.channel_id,
                "thread_ts": c.thread_ts,
                "owner_id": c.owner_id,
                "chat_id": c.chat_id,
                "integration_id": c.integration_id,
                "model": c.model,
                "updated_at": self._clock(),
            },
            pk=("team_id", "channel_id", "thread_ts", "owner_id"),
        )

    async def conversations_in_thread(
        self, team_id: str, channel_id: str, thread_ts: str
    ) -> list[Conversation]:
        """Every owner's chat in this thread, in the order they were first saved."""
        return await self._run(self._conversations_in_thread, team_id, channel_id, thread_ts)

    def _conversations_in_thread(
        self, team_id: str, channel_id: str, thread_ts: str
    ) -> list[Conversation]:
        rows = self._db.table("conversations").rows_where(
            "team_id = ? AND channel_id = ? AND thread_ts = ?",
            [team_id, channel_id, thread_ts],
            order_by="rowid",
        )
        return [_conversation_of(row) for row in rows]

    # --- the bot's own posts --------------------------------------------------------------------

    async def add_bot_post(self, post: BotPost) -> None:
        """Record a message or file posted for a question.

        Re-adding a post with the same ts (or, without a ts, the same file id) in the channel
        updates that record in place, e.g. a status message edited into the answer.
        """
        await self._run(self._add_bot_post, post)

    def _add_bot_post(self, post: BotPost) -> None:
        self._add_bot_post_row(post)

    def _add_bot_post_row(self, post: BotPost) -> None:
        table = self._db.table("bot_posts")
        # The same post seen again: same message ts, or the same file (whose share ts may have
        # been learned since).
        where = "channel_id = ? AND (ts = ? OR file_id = ?)"
        args = [post.channel_id, post.ts, post.file_id]
        values = {
            "channel_id": post.channel_id,
            "question_ts": post.question_ts,
            "ts": post.ts,
            "file_id": post.file_id,
            "kind": post.kind,
        }
        with self._db.atomic():
            existing = next(
                table.rows_where(where, args, select="id", order_by="id", limit=1), None
            )
            if existing is None:
                table.insert({**values, "created_at": self._clock()})
            else:
                table.update(existing["id"], values)

    async def bot_posts(self, channel_id: str, question_ts: str) -> list[BotPost]:
        """What the bot posted for the question (channel, question_ts), in the order posted."""
        return await self._run(self._bot_posts, channel_id, question_ts)

    def _bot_posts(self, channel_id: str, question_ts: str) -> list[BotPost]:
        rows = self._db.table("bot_posts").rows_where(
            "channel_id = ? AND question_ts = ?", [channel_id, question_ts], order_by="id"
        )
        return [
            BotPost(
                channel_id=row["channel_id"],
                question_ts=row["question_ts"],
                ts=row["ts"],
                file_id=row["file_id"],
                kind=row["kind"],
            )
            for row in rows
        ]

    async def remove_bot_post(
        self, channel_id: str, *, ts: str | None = None, file_id: str | None = None
    ) -> None:
        """Forget the bot post with this ts and/or file id (both must match when both are given)."""
        if ts is None and file_id is None:
            raise ValueError("remove_bot_post needs a ts or a file_id")
        await self._run(self._remove_bot_post, channel_id, ts, file_id)

    def _remove_bot_post(self, channel_id: str, ts: str | None, file_id: str | None) -> None:
        where = ["channel_id = ?"]
        args = [channel_id]
        if ts is not None:
            where.append("ts = ?")
            args.append(ts)
        if file_id is not None:
            where.append("file_id = ?")
            args.append(file_id)
        self._db.table("bot_posts").delete_where(" AND ".join(where), args)

    async def is_bot_post(self, channel_id: str, ts: str) -> bool:
        """Whether the message (channel, ts) is one the bot recorded as its own."""
        return await self._run(self._is_bot_post, channel_id, ts)

    def _is_bot_post(self, channel_id: str, ts: str) -> bool:
        rows = self._db.table("bot_posts").rows_where(
            "channel_id = ? AND ts = ?", [channel_id, ts], select="id", limit=1
        )
        return next(rows, None) is not None

    # --- channel settings -----------------------------------------------------------------------

    async def channel_settings(self, team_id: str, channel_id: str) -> ChannelSettings | None:
        """The channel's saved integration and model, or None when none were set."""
        return await self._run(self._channel_settings, team_id, channel_id)

    def _channel_settings(self, team_id: str, channel_id: str) -> ChannelSettings | None:
        rows = self._db.table("channel_settings").rows_where(
            "team_id = ? AND channel_id = ?", [team_id, channel_id], limit=1
        )
        row = next(rows, None)
        if row is None:
            return None
        return ChannelSettings(
            team_id=row["team_id"],
            channel_id=row["channel_id"],
            integration_id=row["integration_id"],
            model=row["model"],
        )

    async def set_channel_settings(self, settings: ChannelSettings) -> None:
        """Insert or replace the channel's settings."""
        await self._run(self._set_channel_settings, settings)

    def _set_channel_settings(self, s: ChannelSettings) -> None:
        self._db.table("channel_settings").upsert(
            {
                "team_id": s.team_id,
                "channel_id": s.channel_id,
                "integration_id": s.integration_id,
                "model": s.model,
                "updated_at": self._clock(),
            },
            pk=("team_id", "channel_id"),
        )

    # --- the Messages-tab greeting --------------------------------------------------------------

    async def claim_greeting(self, team_id: str, user_id: str) -> bool:
        """True only the first time this person is claimed for the greeting (survives restarts)."""
        return await self._run(self._claim_greeting, team_id, user_id)

    def _claim_greeting(self, team_id: str, user_id: str) -> bool:
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO greeted_users (team_id, user_id, greeted_at) VALUES (?, ?, ?)",
            (team_id, user_id, self._clock()),
        )
        return cursor.rowcount == 1

    async def release_greeting(self, team_id: str, user_id: str) -> None:
        """Forget a claim whose greeting could not be posted, so the next visit tries again."""
        await self._run(self._release_greeting, team_id, user_id)

    def _release_greeting(self, team_id: str, user_id: str) -> None:
        self._db.execute(
            "DELETE FROM greeted_users WHERE team_id = ? AND user_id = ?", (team_id, user_id)
        )

    # --- diagnostics ----------------------------------------------------------------------------

    async def stats(self) -> dict[str, int]:
        """Row counts per table, for diagnostics."""
        return await self._run(self._stats)

    def _stats(self) -> dict[str, int]:
        return {name: self._db.table(name).count for name in TABLES}
