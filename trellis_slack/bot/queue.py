"""Answers each queued question once its thread is free, saying so in the thread if it must wait."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from trellis_slack.bot.asks import Ask
from trellis_slack.bot.lifecycle import Status
from trellis_slack.bot.posting import ThreadPoster
from trellis_slack.bot.threads import ThreadTurns
from trellis_slack.bot.turn import RESTARTED, TurnRunner
from trellis_slack.slack import blocks
from trellis_slack.slack.web import SlackIO
from trellis_slack.store.base import Store
from trellis_slack.store.records import PostKind, QuestionRecord

log = logging.getLogger(__name__)

#: What a question that must wait for the answer above it says meanwhile.
WAITING = "I'll answer this as soon as I've finished the answer above."


class AnswerQueue:
    """Runs the turn of each queued question when `ThreadTurns` gives it the thread."""

    def __init__(
        self, *, slack: SlackIO, store: Store, runner: TurnRunner, turns: ThreadTurns
    ) -> None:
        self.slack = slack
        self.store = store
        self.runner = runner
        self.turns = turns
        #: Set at shutdown: a question that gets its thread now is not asked, it offers Retry.
        self.closing = False

    async def identity_of(self, owner_id: str) -> str | None:
        """The Trellis identity (e-mail) a conversation's owner asks with; None: shared token."""
        if not owner_id:
            return None
        user = await self.slack.user(owner_id)
        return user.email if user else None

    async def answer(
        self,
        question: QuestionRecord,
        *,
        team_id: str,
        identity: str | None,
        reask: bool = False,
        prepare: Callable[[QuestionRecord], Awaitable[None]] | None = None,
        in_place_of: str | None = None,
    ) -> None:
        """Answer a ``queued`` question after every earlier one of its thread.

        ``in_place_of``: the bot message the answer replaces (an edit's or Retry's old answer),
        so it keeps its place in the thread instead of landing below later questions.
        ``prepare`` runs once the thread is held, before Trellis is asked (an edit removes the
        old answers there). A question deleted or dropped while it waited is not asked.
        """
        waiting: list[str] = []
        poster = _poster(self, question)

        async def say_it_waits() -> None:
            # Recorded at once, so a crash while it waits cannot leave it behind unexplained.
            ts = await poster.post(blocks.waiting(WAITING), PostKind.STATUS)
            if ts is not None:
                waiting.append(ts)

        async with self.turns.hold(
            question.channel_id, question.thread_ts, question.ts, on_wait=say_it_waits
        ):
            status_ts = waiting[0] if waiting else None
            record = await self.store.question(question.channel_id, question.ts)
            if record is None or record.status is not Status.QUEUED:
                # Deleted (or dropped by an edit) while it waited: nothing to answer.
                if status_ts is not None:
                    await poster.forget(status_ts)
                return
            if self.closing:
                await self.store.update_question(record.channel_id, record.ts, status=Status.FAILED)
                await self.show_restarted(record, status_ts)
                return
            if prepare is not None:
                await prepare(record)
                record = await self.store.question(record.channel_id, record.ts) or record
            if in_place_of is not None:
                if status_ts is not None:
                    await poster.forget(status_ts)
                status_ts = in_place_of
            await self.runner.run(
                Ask(record, team_id=team_id, identity=identity, reask=reask), status_ts=status_ts
            )

    async def show_restarted(self, question: QuestionRecord, status_ts: str | None) -> None:
        """Say a question was not answered because of a restart, with Retry (nothing is retyped)."""
        note = blocks.failure(RESTARTED, retry_value=question.ts)
        if status_ts is None or not await self.slack.update(question.channel_id, status_ts, note):
            await _poster(self, question).post(note, PostKind.ERROR)


def _poster(queue: AnswerQueue, question: QuestionRecord) -> ThreadPoster:
    """Posts for ``question`` in its thread, each recorded against it."""
    return ThreadPoster(
        queue.slack, queue.store, question.channel_id, question.thread_ts, question.ts
    )
