"""Answers only their asker saw (``PRIVATE_ANSWERS=ephemeral``), kept in PostgreSQL for Share."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg
from psycopg.rows import TupleRow

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

Conn = psycopg.AsyncConnection[TupleRow]


class PgPrivateAnswers:
    """Each private answer's message bodies (JSON), and who shared it (as `sqlite_private`)."""

    if TYPE_CHECKING:  # provided by PostgresStore

        def _tx(self, wait: float | None = None) -> AbstractAsyncContextManager[Conn]: ...

    async def keep_private_answer(self, channel_id: str, question_ts: str, body: str) -> None:
        """Keep the answer shown only to its asker (a new answer replaces it, unshared)."""
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO private_answers (channel_id, question_ts, body, shared_by)"
                " VALUES (%s, %s, %s, NULL) ON CONFLICT (channel_id, question_ts)"
                " DO UPDATE SET body = excluded.body, shared_by = NULL",
                (channel_id, question_ts, body),
            )

    async def save_files(self, channel_id: str, ts: str, files: str) -> None:
        """Keep the links of the files attached to the question (JSON)."""
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO question_files (channel_id, ts, files) VALUES (%s, %s, %s)"
                " ON CONFLICT (channel_id, ts) DO UPDATE SET files = excluded.files",
                (channel_id, ts, files),
            )

    async def files_of(self, channel_id: str, ts: str) -> str | None:
        """The links kept for the question's files (JSON), or None."""
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT files FROM question_files WHERE channel_id = %s AND ts = %s",
                (channel_id, ts),
            )
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def private_answer(self, channel_id: str, question_ts: str) -> str | None:
        """The kept private answer of the question, or None."""
        async with self._tx() as conn:
            cur = await conn.execute(
                "SELECT body FROM private_answers WHERE channel_id = %s AND question_ts = %s",
                (channel_id, question_ts),
            )
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def claim_share(self, channel_id: str, question_ts: str, user_id: str) -> bool:
        """Mark the kept answer shared by ``user_id``; False if shared already (by any replica)."""
        async with self._tx() as conn:
            cur = await conn.execute(
                "UPDATE private_answers SET shared_by = %s WHERE channel_id = %s"
                " AND question_ts = %s AND shared_by IS NULL",
                (user_id, channel_id, question_ts),
            )
        return cur.rowcount == 1

    async def release_share(self, channel_id: str, question_ts: str) -> None:
        """Undo `claim_share` (Slack refused to post the shared answer)."""
        async with self._tx() as conn:
            await conn.execute(
                "UPDATE private_answers SET shared_by = NULL"
                " WHERE channel_id = %s AND question_ts = %s",
                (channel_id, question_ts),
            )
