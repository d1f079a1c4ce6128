"""Edits and deletions: the thread in Slack and the chat in Trellis stay the same."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from trellis_slack.bot import lifecycle
from trellis_slack.bot.chats import CHANGE_IN_RETIRED
from trellis_slack.bot.lifecycle import DeletionDecision, EditDecision, Status
from trellis_slack.bot.queue import AnswerQueue
from trellis_slack.bot.seams import MessageDeleter
from trellis_slack.bot.turn import TurnRunner
from trellis_slack.errors import TrellisError
from trellis_slack.logs import log_context
from trellis_slack.slack import blocks
from trellis_slack.slack.events import (
    BotIdentity,
    Deletion,
    Edit,
    mentioned_user_ids,
    question_text,
)
from trellis_slack.slack.web import SlackIO
from trellis_slack.store.base import Store
from trellis_slack.store.records import PostKind, QuestionRecord, ts_order

log = logging.getLogger(__name__)

#: The reaction that marks a question Trellis no longer has (dropped by an earlier edit or deletion).
DROPPED_REACTION = "wastebasket"


@dataclass(frozen=True, slots=True)
class Changes:
    """What edits and deletions of questions do (`lifecycle.decide_edit` / `decide_deletion`).

    * An edited question is re-answered by Trellis (``edit_message`` with the question's *current*
      Trellis id), which drops everything after it: the bot removes its answers to it and to every
      later question of that conversation, and marks those later questions.
    * A deleted question is deleted in Trellis once its answer (and later ones) are stopped; only
      once Trellis confirms does the bot remove its answers. If Trellis cannot delete, the answers
      stay and the thread says why: Slack never shows less than Trellis remembers.
    """

    bot: BotIdentity
    slack: SlackIO
    store: Store
    runner: TurnRunner
    queue: AnswerQueue
    trellis: MessageDeleter
    #: Asks the replica answering in a thread to stop (`Fleet.forward`); None: one process.
    stop_elsewhere: Callable[[QuestionRecord, str], Awaitable[bool]] | None = None

    async def edit(self, edit: Edit, *, as_new: Callable[[Edit, str], Awaitable[None]]) -> None:
        """``as_new(edit, claim)`` takes an edit that makes a message a new question."""
        record = await self.store.question(edit.channel_id, edit.ts)
        names = await self.slack.names(mentioned_user_ids(edit.text, exclude={self.bot.user_id}))
        text = question_text(edit.text, self.bot.user_id, names)
        # One key per edit (Slack stamps each edit): a redelivery is recognised, while editing
        # back to an earlier text is still a new edit.
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        claim = f"{edit.ts}#edit#{edit.edited_ts or digest}"
        decision = lifecycle.decide_edit(
            record.status if record else None,
            asked=record is not None and record.trellis_message_id is not None,
            mentioned=edit.mentioned,
            changed=record is not None and bool(text) and text != record.text,
        )
        if decision is EditDecision.NEW_QUESTION:
            await as_new(edit, claim)
            return
        if decision is EditDecision.IGNORE or record is None:
            log.debug("edit of %s changes nothing the bot answers", edit.ts)
            return
        if not await self.store.claim_event(edit.channel_id, claim):
            log.info("duplicate delivery of the edit of %s ignored", edit.ts)
            return
        if decision is EditDecision.UPDATE_TEXT:
            # Not asked yet (it waits for the answer above it): it will be asked as edited.
            await self.store.update_question(edit.channel_id, edit.ts, text=text)
            return
        with log_context(channel=edit.channel_id, thread=record.thread_ts):
            log.info("question %s was edited", edit.ts)
            if await self.store.question_chat_retired(record.channel_id, record.ts):
                await self._say_retired(record, "edited")
                return
            await self._interrupt_from(record, "The question was edited.")
            # Queued again before it waits for the thread, so no later question overtakes it.
            await self.store.update_question(
                edit.channel_id,
                edit.ts,
                text=text,
                status=Status.QUEUED,
                handler=self.queue.turns.replica,  # ours now, not the (maybe dead) first one's
            )

            keep = await self.answer_message(record)

            async def prepare(current: QuestionRecord) -> None:
                dropped = await self.forget_from(current, include_own_answer=True, keep=keep)
                await self._mark_dropped(current, dropped, because="edited")

            await self.queue.answer(
                record,
                team_id=edit.team_id,
                identity=await self.queue.identity_of(record.owner_id),
                reask=True,
                prepare=prepare,
                in_place_of=keep,
            )

    async def delete(self, deletion: Deletion) -> None:
        """A human deleted a question (or a question that started a thread became a tombstone)."""
        record = await self.store.question(deletion.channel_id, deletion.ts)
        decision = lifecycle.decide_deletion(
            record.status if record else None,
            asked=record is not None and record.trellis_message_id is not None,
        )
        if decision is DeletionDecision.IGNORE or record is None:
            return
        if not await self.store.claim_event(deletion.channel_id, f"{deletion.ts}#delete"):
            return
        if decision is DeletionDecision.FORGET and await self.store.update_question(
            record.channel_id, record.ts, status=Status.DELETED
        ):
            return  # never asked: it simply is not asked now (its wait note goes)
        with log_context(channel=deletion.channel_id, thread=record.thread_ts):
            log.info("question %s was deleted", deletion.ts)
            if await self.store.question_chat_retired(record.channel_id, record.ts):
                await self.store.update_question(
                    record.channel_id, record.ts, status=Status.DELETED
                )
                await self._say_retired(record, "deleted")
                return
            await self._interrupt_from(record, "The question was deleted.")
            async with self.queue.turns.hold(record.channel_id, record.thread_ts, record.ts):
                record = await self.store.question(deletion.channel_id, deletion.ts)
                if record is None or record.status in lifecycle.GONE:
                    return
                if record.trellis_message_id is not None:
                    try:
                        await self.trellis.delete_message(
                            record.trellis_message_id,
                            identity=await self.queue.identity_of(record.owner_id),
                        )
                    except TrellisError as exc:
                        log.warning("Trellis could not delete question %s: %s", record.ts, exc)
                        await self.slack.post(
                            record.channel_id,
                            record.thread_ts,
                            blocks.note(
                                "A question in this thread was deleted, but Trellis could not "
                                f"delete it ({exc}), so its answer still counts in this conversation.",
                                emoji=":warning:",
                            ),
                        )
                        return
                await self.store.update_question(
                    record.channel_id, record.ts, status=Status.DELETED
                )
                dropped = await self.forget_from(record, include_own_answer=True)
                await self._mark_dropped(record, dropped, because="deleted")

    async def _say_retired(self, record: QuestionRecord, done: str) -> None:
        """Its chat was retired (`bot.chats`): Trellis has nothing to change; say so in the thread."""
        log.info(
            "question %s was %s in a retired chat: nothing to change in Trellis", record.ts, done
        )
        await self.slack.post(
            record.channel_id, record.thread_ts, blocks.note(CHANGE_IN_RETIRED.format(done=done))
        )

    async def _interrupt_from(self, record: QuestionRecord, reason: str) -> None:
        """Stop answers in progress to ``record`` or to a later question of its conversation.

        Trellis is about to drop everything from ``record`` on, so those answers are moot.
        """
        for question in await self.later_in_conversation(record, including=True):
            if await self.runner.stop(question.channel_id, question.ts, lifecycle.StopFor(reason)):
                await self.runner.finished(question.channel_id, question.ts)
            elif self.stop_elsewhere is not None:
                # Answered on another replica: it stops; the thread's claim, which this change
                # waits for, is free once it has.
                await self.stop_elsewhere(question, reason)

    async def later_in_conversation(
        self, record: QuestionRecord, *, including: bool = False
    ) -> list[QuestionRecord]:
        """The questions after ``record`` in its thread and conversation that Trellis still has."""
        mine = ts_order(record.ts)
        return [
            q
            for q in await self.store.questions_in_thread(record.channel_id, record.thread_ts)
            if q.owner_id == record.owner_id
            and (ts_order(q.ts) > mine or (including and q.ts == record.ts))
            and (q.status not in lifecycle.GONE or q.ts == record.ts)
        ]

    async def forget_from(
        self, record: QuestionRecord, *, include_own_answer: bool, keep: str | None = None
    ) -> list[QuestionRecord]:
        """Remove the bot's posts for ``record`` and every later question of its conversation.

        ``keep``: one message of ``record``'s answer that stays (the new answer replaces it).
        Returns the later human questions, which Trellis no longer has.
        """
        later = await self.later_in_conversation(record)
        if include_own_answer:
            await self.remove_posts(record, keep=keep)
        for question in later:
            await self.remove_posts(question)
        for question in later:
            await self.store.update_question(
                question.channel_id, question.ts, status=Status.DROPPED
            )
        return later

    async def answer_message(self, question: QuestionRecord) -> str | None:
        """The top message of the bot's answer to ``question`` (where a new answer can go)."""
        for post in await self.store.bot_posts(question.channel_id, question.ts):
            if post.ts is not None and post.kind in (
                PostKind.STATUS,
                PostKind.ANSWER,
                PostKind.ERROR,
            ):
                return post.ts
        return None

    async def remove_posts(self, question: QuestionRecord, *, keep: str | None = None) -> None:
        """Delete everything the bot posted for ``question`` (messages, charts, their shares),
        except the message ``keep``."""
        for post in await self.store.bot_posts(question.channel_id, question.ts):
            if keep is not None and post.ts == keep:
                continue
            removed = True
            if post.file_id is not None:
                # The message that shared the file goes too, not only the file: otherwise the
                # thread keeps a "This file was deleted" stub for every chart.
                for share_ts in await self.slack.file_share_ts(post.file_id, question.channel_id):
                    await self.slack.delete(question.channel_id, share_ts)
                removed = await self.slack.delete_file(post.file_id)
            if post.ts is not None:
                removed = await self.slack.delete(question.channel_id, post.ts) and removed
            if removed:
                await self.store.remove_bot_post(
                    question.channel_id, ts=post.ts, file_id=post.file_id
                )

    async def _mark_dropped(
        self, record: QuestionRecord, dropped: list[QuestionRecord], *, because: str
    ) -> None:
        """React to each dropped question and say once in the thread why they were dropped."""
        if not dropped:
            return
        for question in dropped:
            await self.slack.react(question.channel_id, question.ts, DROPPED_REACTION)
        count = len(dropped)
        if count == 1:
            what, theirs, them = "question", "its answer", "it"
        else:
            what, theirs, them = f"{count} questions", "their answers", "them"
        await self.slack.post(
            record.channel_id,
            record.thread_ts,
            blocks.note(
                f"An earlier question was {because}, so Trellis no longer remembers the later "
                f"{what} marked :{DROPPED_REACTION}: or {theirs}. Ask again if you still "
                f"need {them}.",
                emoji=f":{DROPPED_REACTION}:",
            ),
        )
