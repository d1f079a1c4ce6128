"""The PostgreSQL store's conversations, posts, settings, greetings, votes and steps."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import psycopg
from psycopg.rows import TupleRow

from trellis_slack.store.base import AnswerStep
from trellis_slack.store.postgres_schema import CHANNEL, TABLES
from trellis_slack.store.records import BotPost, ChannelSettings, Conversation, PostKind

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

Conn = psycopg.AsyncConnection[TupleRow]

#: The columns of a conversation, in the order `conversation_of` reads them.
C_COLUMNS = "team_id, channel_id, thread_ts, owner_id, chat_id, integration_id, model"


def conversation_of(row: TupleRow) -> Conversation:
    """A conversation from a row of `C_COLUMNS`."""
    return Conversation(*row[:7])


class PgRecords:
    """What the store keeps besides questions and claims; `PostgresStore` runs these."""

    _clock: Callable[[], float]

    if TYPE_CHECKING:  # provided by PostgresStore

        def _tx(self, wait: float | None = None) -> AbstractAsyncContextManager[Conn]: ...

    # --- conversations --------------------------------------------------------------------------

    async def conversation(
        self, team_id: str, channel_id: str, thread_ts: str, owner_id: str = ""
    ) -> Conversation | None:
        """The Trellis chat saved for this thread (and owner), or None."""
        async with self._tx() as conn:
            cur = await conn.execute(
                f"SELECT {C_COLUMNS} FROM conversations WHERE team_id = %s AND channel_id = %s"
                " AND thread_ts = %s AND owner_id = %s",
                (team_id, channel_id, thread_ts, owner_id),
            )
            row = await cur.fetchone()
        return None if row is None else conversation_of(row)

    async def save_conversation(self, conversation: Conversation) -> None:
        """Insert or replace the chat for (team, channel, thread, owner)."""
        c = conversation
        async with self._tx() as conn:
            await conn.execute(
                f"INSERT INTO conversations ({C_COLUMNS}, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (team_id, channel_id, thread_ts, owner_id) DO UPDATE SET"
                " chat_id = excluded.chat_id, integration_id = excluded.integration_id,"
                " model = excluded.model, updated_at = excluded.updated_at",
                (*_conversation_key(c), c.chat_id, c.integration_id, c.model, self._clock()),
            )

    async def conversations_in_thread(
        self, team_id: str, channel_id: str, thread_ts: str
    ) -> list[Conversation]:
        """Every owner's chat in this thread, in the order they were first saved."""
        async with self._tx() as conn:
            cur = await conn.execute(
                f"SELECT {C_COLUMNS} FROM conversations WHERE team_id = %s AND channel_id = %s"
                " AND thread_ts = %s ORDER BY seq",
                (team_id, channel_id, thread_ts),
            )
            rows = await cur.fetchall()
        return [conversation_of(row) for row in rows]

    # --- the bot's own posts --------------------------------------------------------------------

    async def add_bot_post(self, post: BotPost) -> None:
        """Record a message or file posted for a question.

        Re-adding a post with the same ts (or, without a ts, the same file id) in the channel
        updates that record in place. A working message tells every replica its thread changed
        (the questions waiting behind it may now say they wait).
        """
        values = (post.channel_id, post.question_ts, post.ts, post.file_id, str(post.kind))
        async with self._tx() as conn:
            # One writer per channel at a time, so two replicas cannot both insert one post.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('post ' || %s::text))", (post.channel_id,)
            )
            cur = await conn.execute(
                "SELECT id FROM bot_posts WHERE channel_id = %s AND (ts = %s OR file_id = %s)"
                " ORDER BY id LIMIT 1",
                (post.channel_id, post.ts, post.file_id),
            )
            row = await cur.fetchone()
            if row is None:
                await conn.execute(
                    "INSERT INTO bot_posts (channel_id, question_ts, ts, file_id, kind, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (*values, self._clock()),
                )
            else:
                await conn.execute(
                    "UPDATE bot_posts SET channel_id = %s, question_ts = %s, ts = %s,"
                    " file_id = %s, kind = %s WHERE id = %s",
                    (*values, row[0]),
                )
            if post.kind is PostKind.STATUS:
                await conn.execute(
                    "SELECT pg_notify(%s, json_build_array('t', channel_id, thread_ts)::text)"
                    " FROM questions WHERE channel_id = %s AND ts = %s",
                    (CHANNEL, post.channel_id, post.question_ts),
                )

    async def bot_posts(self, channel_id: str, question_ts: str) -> list[BotPost]:
        """What the bot posted for the question (channel, question_ts), in the order posted."""
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT channel_id, question_ts, ts, file_id, kind FROM bot_posts"
                " WHERE channel_id = %s AND question_ts = %s ORDER BY id",
                (channel_id, question_ts),
            )
            rows = await cur.fetchall()
        return [BotPost(*row) for row in rows]

    async def remove_bot_post(
        self, channel_id: str, *, ts: str | None = None, file_id: str | None = None
    ) -> None:
        """Forget the bot post with this ts and/or file id (both must match when both are given)."""
        if ts is None and file_id is None:
            raise ValueError("remove_bot_post needs a ts or a file_id")
        async with self._tx() as conn:
            await conn.execute(
                "DELETE FROM bot_posts WHERE channel_id = %s"
                " AND (%s::text IS NULL OR ts = %s) AND (%s::text IS NULL OR file_id = %s)",
                (channel_id, ts, ts, file_id, file_id),
            )

    async def is_bot_post(self, channel_id: str, ts: str) -> bool:
        """Whether the message (channel, ts) is one the bot recorded as its own."""
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM bot_posts WHERE channel_id = %s AND ts = %s LIMIT 1",
                (channel_id, ts),
            )
            return await cur.fetchone() is not None

    # --- channel settings and the Messages-tab greeting ---------------------------------------

    async def channel_settings(self, team_id: str, channel_id: str) -> ChannelSettings | None:
        """The channel's saved integration and model, or None when none were set."""
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT team_id, channel_id, integration_id, model FROM channel_settings"
                " WHERE team_id = %s AND channel_id = %s",
                (team_id, channel_id),
            )
            row = await cur.fetchone()
        return None if row is None else ChannelSettings(*row)

    async def set_channel_settings(self, settings: ChannelSettings) -> None:
        """Insert or replace the channel's settings."""
        s = settings
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO channel_settings (team_id, channel_id, integration_id, model,"
                " updated_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (team_id, channel_id)"
                " DO UPDATE SET integration_id = excluded.integration_id,"
                " model = excluded.model, updated_at = excluded.updated_at",
                (s.team_id, s.channel_id, s.integration_id, s.model, self._clock()),
            )

    async def claim_greeting(self, team_id: str, user_id: str) -> bool:
        """True only the first time this person is claimed for the greeting, by any replica."""
        async with self._tx() as conn:
            cur = await conn.execute(
                "INSERT INTO greeted_users (team_id, user_id, greeted_at) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (team_id, user_id, self._clock()),
            )
        return cur.rowcount == 1

    async def release_greeting(self, team_id: str, user_id: str) -> None:
        """Forget a claim whose greeting could not be posted, so the next visit tries again."""
        async with self._tx() as conn:
            await conn.execute(
                "DELETE FROM greeted_users WHERE team_id = %s AND user_id = %s", (team_id, user_id)
            )

    async def stats(self) -> dict[str, int]:
        """Row counts per table, for diagnostics."""
        counts = " UNION ALL ".join(f"SELECT '{name}', count(*) FROM {name}" for name in TABLES)
        async with self._tx() as conn:
            cur = await conn.execute(counts)
            rows = await cur.fetchall()
        return {str(name): int(count) for name, count in rows}

    # --- feedback -------------------------------------------------------------------------------

    async def save_answer_message(self, channel_id: str, question_ts: str, message_id: str) -> None:
        """Remember the Trellis message that answers the question; a new one forgets old votes."""
        async with self._tx() as conn:
            await conn.execute(
                "DELETE FROM votes v USING answers a WHERE v.channel_id = %s"
                " AND v.question_ts = %s AND a.channel_id = v.channel_id"
                " AND a.question_ts = v.question_ts AND a.message_id <> %s",
                (channel_id, question_ts, message_id),
            )
            await conn.execute(
                "INSERT INTO answers (channel_id, question_ts, message_id, saved_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (channel_id, question_ts)"
                " DO UPDATE SET message_id = excluded.message_id, saved_at = excluded.saved_at",
                (channel_id, question_ts, message_id, self._clock()),
            )

    async def answer_message(self, channel_id: str, question_ts: str) -> str | None:
        """The Trellis assistant message id of the question's answer, or None."""
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT message_id FROM answers WHERE channel_id = %s AND question_ts = %s",
                (channel_id, question_ts),
            )
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def record_vote(
        self, channel_id: str, question_ts: str, user_id: str, rating: str | None
    ) -> str | None:
        """Set the person's vote on the answer (None removes it); return their previous vote."""
        key = (channel_id, question_ts, user_id)
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT rating FROM votes WHERE channel_id = %s AND question_ts = %s"
                " AND user_id = %s FOR UPDATE",
                key,
            )
            row = await cur.fetchone()
            if rating is None:
                await conn.execute(
                    "DELETE FROM votes WHERE channel_id = %s AND question_ts = %s AND user_id = %s",
                    key,
                )
            else:
                await conn.execute(
                    "INSERT INTO votes (channel_id, question_ts, user_id, rating, voted_at)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (channel_id, question_ts, user_id)"
                    " DO UPDATE SET rating = excluded.rating, voted_at = excluded.voted_at",
                    (*key, rating, self._clock()),
                )
        return None if row is None else str(row[0])

    # --- the steps of each answer ---------------------------------------------------------------

    async def save_steps(
        self, channel_id: str, question_ts: str, steps: Sequence[AnswerStep]
    ) -> None:
        """Replace the question's steps with ``steps`` (none forgets them)."""
        async with self._tx() as conn:
            await conn.execute(
                "DELETE FROM answer_steps WHERE channel_id = %s AND question_ts = %s",
                (channel_id, question_ts),
            )
            if not steps:
                return
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO answer_steps (channel_id, question_ts, position, kind, title,"
                    " sql, tables, row_count, text) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (
                            channel_id,
                            question_ts,
                            position,
                            s.kind,
                            s.title,
                            s.sql,
                            json.dumps(list(s.tables)),
                            s.row_count,
                            s.text,
                        )
                        for position, s in enumerate(steps)
                    ],
                )

    async def answer_steps(self, channel_id: str, question_ts: str) -> list[AnswerStep]:
        """The steps of the question's latest answer, in order; empty when none were kept."""
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT kind, title, sql, tables, row_count, text FROM answer_steps"
                " WHERE channel_id = %s AND question_ts = %s ORDER BY position",
                (channel_id, question_ts),
            )
            rows = await cur.fetchall()
        return [
            AnswerStep(kind, title, sql, tuple(json.loads(tables)), row_count, text)
            for kind, title, sql, tables, row_count, text in rows
        ]


def _conversation_key(c: Conversation) -> tuple[str, str, str, str]:
    return (c.team_id, c.channel_id, c.thread_ts, c.owner_id)
