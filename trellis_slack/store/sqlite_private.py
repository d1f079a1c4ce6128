"""Answers only their asker saw (``PRIVATE_ANSWERS=ephemeral``), kept in SQLite for Share."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlite_utils import Database

_T = TypeVar("_T")


class PrivateAnswers:
    """Each private answer's message bodies (JSON), and who shared it; `SqliteStore` runs the SQL."""

    _db: Database

    if TYPE_CHECKING:  # provided by SqliteStore

        async def _run(self, fn: Callable[..., _T], /, *args: Any) -> _T: ...

    async def keep_private_answer(self, channel_id: str, question_ts: str, body: str) -> None:
        """Keep the answer shown only to its asker (a new answer replaces it, unshared)."""
        await self._run(self._keep, channel_id, question_ts, body)

    def _keep(self, channel_id: str, question_ts: str, body: str) -> None:
        with self._db.atomic():
            self._db.execute(
                "INSERT INTO private_answers (channel_id, question_ts, body, shared_by)"
                " VALUES (?, ?, ?, NULL) ON CONFLICT (channel_id, question_ts)"
                " DO UPDATE SET body = excluded.body, shared_by = NULL",
                (channel_id, question_ts, body),
            )

    async def private_answer(self, channel_id: str, question_ts: str) -> str | None:
        """The kept private answer of the question, or None."""
        return await self._run(self._private_answer, channel_id, question_ts)

    def _private_answer(self, channel_id: str, question_ts: str) -> str | None:
        row = self._db.execute(
            "SELECT body FROM private_answers WHERE channel_id = ? AND question_ts = ?",
            (channel_id, question_ts),
        ).fetchone()
        return None if row is None else str(row[0])

    async def claim_share(self, channel_id: str, question_ts: str, user_id: str) -> bool:
        """Mark the kept answer shared by ``user_id``; False if it was shared already (or gone)."""
        return await self._run(self._claim_share, channel_id, question_ts, user_id)

    def _claim_share(self, channel_id: str, question_ts: str, user_id: str) -> bool:
        with self._db.atomic():
            cursor = self._db.execute(
                "UPDATE private_answers SET shared_by = ? WHERE channel_id = ?"
                " AND question_ts = ? AND shared_by IS NULL",
                (user_id, channel_id, question_ts),
            )
            return cursor.rowcount == 1

    async def save_files(self, channel_id: str, ts: str, files: str) -> None:
        """Keep the links of the files attached to the question (JSON)."""
        await self._run(
            self._db.execute,
            "INSERT INTO question_files (channel_id, ts, files) VALUES (?, ?, ?)"
            " ON CONFLICT (channel_id, ts) DO UPDATE SET files = excluded.files",
            (channel_id, ts, files),
        )

    async def files_of(self, channel_id: str, ts: str) -> str | None:
        """The links kept for the question's files (JSON), or None."""
        return await self._run(self._files_of, channel_id, ts)

    def _files_of(self, channel_id: str, ts: str) -> str | None:
        row = self._db.execute(
            "SELECT files FROM question_files WHERE channel_id = ? AND ts = ?", (channel_id, ts)
        ).fetchone()
        return None if row is None else str(row[0])

    async def release_share(self, channel_id: str, question_ts: str) -> None:
        """Undo `claim_share` (Slack refused to post the shared answer)."""
        await self._run(self._release_share, channel_id, question_ts)

    def _release_share(self, channel_id: str, question_ts: str) -> None:
        with self._db.atomic():
            self._db.execute(
                "UPDATE private_answers SET shared_by = NULL WHERE channel_id = ? AND question_ts = ?",
                (channel_id, question_ts),
            )
