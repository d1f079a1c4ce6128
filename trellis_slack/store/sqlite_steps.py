"""The steps of each answer (the queries Trellis ran for it), in SQLite."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlite_utils import Database

from trellis_slack.store.base import AnswerStep

_T = TypeVar("_T")


class Steps:
    """Each answer's steps, ordered; `SqliteStore` runs the SQL."""

    _db: Database

    if TYPE_CHECKING:  # provided by SqliteStore

        async def _run(self, fn: Callable[..., _T], /, *args: Any) -> _T: ...

    async def save_steps(
        self, channel_id: str, question_ts: str, steps: Sequence[AnswerStep]
    ) -> None:
        """Replace the question's steps (an edited or retried question is answered anew)."""
        await self._run(self._save_steps, channel_id, question_ts, tuple(steps))

    def _save_steps(self, channel_id: str, question_ts: str, steps: tuple[AnswerStep, ...]) -> None:
        with self._db.atomic():
            self._db.execute(
                "DELETE FROM answer_steps WHERE channel_id = ? AND question_ts = ?",
                (channel_id, question_ts),
            )
            for position, step in enumerate(steps):
                self._db.execute(
                    "INSERT INTO answer_steps (channel_id, question_ts, position, kind, title,"
                    " sql, tables, row_count, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        channel_id,
                        question_ts,
                        position,
                        step.kind,
                        step.title,
                        step.sql,
                        json.dumps(list(step.tables)),
                        step.row_count,
                        step.text,
                    ),
                )

    async def answer_steps(self, channel_id: str, question_ts: str) -> list[AnswerStep]:
        """The question's steps in the order Trellis took them."""
        return await self._run(self._answer_steps, channel_id, question_ts)

    def _answer_steps(self, channel_id: str, question_ts: str) -> list[AnswerStep]:
        rows = self._db.execute(
            "SELECT kind, title, sql, tables, row_count, text FROM answer_steps"
            " WHERE channel_id = ? AND question_ts = ? ORDER BY position",
            (channel_id, question_ts),
        ).fetchall()
        return [
            AnswerStep(kind, title, sql, tuple(json.loads(tables)), row_count, text)
            for kind, title, sql, tables, row_count, text in rows
        ]
