"""The SQLite store's feedback: each answer's Trellis message, and one vote per person per answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlite_utils import Database

_T = TypeVar("_T")


class Votes:
    """Answers' Trellis message ids and people's votes on them; `SqliteStore` runs the SQL."""

    _db: Database
    _clock: Callable[[], float]

    if TYPE_CHECKING:  # provided by SqliteStore

        async def _run(self, fn: Callable[..., _T], /, *args: Any) -> _T: ...

    async def save_answer_message(self, channel_id: str, question_ts: str, message_id: str) -> None:
        """Remember the Trellis assistant message that answers the question (channel, ts).

        A different message (the question was edited, or retried, and answered anew) forgets
        the votes on the old answer: they were about words nobody sees any more.
        """
        await self._run(self._save_answer_message, channel_id, question_ts, message_id)

    def _save_answer_message(self, channel_id: str, question_ts: str, message_id: str) -> None:
        with self._db.atomic():
            if self._answer_message(channel_id, question_ts) not in (None, message_id):
                self._db.execute(
                    "DELETE FROM votes WHERE channel_id = ? AND question_ts = ?",
                    (channel_id, question_ts),
                )
            self._db.execute(
                "INSERT INTO answers (channel_id, question_ts, message_id, saved_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (channel_id, question_ts)"
                " DO UPDATE SET message_id = excluded.message_id, saved_at = excluded.saved_at",
                (channel_id, question_ts, message_id, self._clock()),
            )

    async def answer_message(self, channel_id: str, question_ts: str) -> str | None:
        """The Trellis assistant message id of the question's answer, or None."""
        return await self._run(self._answer_message, channel_id, question_ts)

    def _answer_message(self, channel_id: str, question_ts: str) -> str | None:
        row = self._db.execute(
            "SELECT message_id FROM answers WHERE channel_id = ? AND question_ts = ?",
            (channel_id, question_ts),
        ).fetchone()
        return None if row is None else str(row[0])

    async def record_vote(
        self, channel_id: str, question_ts: str, user_id: str, rating: str | None
    ) -> str | None:
        """Set the person's vote on the question's answer, in one transaction; None removes it.

        Returns the vote it replaced (None when there was none), so the caller can tell a
        repeated vote from a changed one and put the old vote back when Trellis refuses.
        """
        return await self._run(self._record_vote, channel_id, question_ts, user_id, rating)

    def _record_vote(
        self, channel_id: str, question_ts: str, user_id: str, rating: str | None
    ) -> str | None:
        key = (channel_id, question_ts, user_id)
        with self._db.atomic():
            row = self._db.execute(
                "SELECT rating FROM votes WHERE channel_id = ? AND question_ts = ? AND user_id = ?",
                key,
            ).fetchone()
            if rating is None:
                self._db.execute(
                    "DELETE FROM votes WHERE channel_id = ? AND question_ts = ? AND user_id = ?",
                    key,
                )
            else:
                self._db.execute(
                    "INSERT INTO votes (channel_id, question_ts, user_id, rating, voted_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel_id, question_ts, user_id)"
                    " DO UPDATE SET rating = excluded.rating, voted_at = excluded.voted_at",
                    (*key, rating, self._clock()),
                )
        return None if row is None else str(row[0])
