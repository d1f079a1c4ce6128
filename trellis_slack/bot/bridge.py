"""Decides which Slack events become Trellis turns, one at a time per thread, and shuts down cleanly."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from trellis_slack.bot.turn import Ask, TurnRunner
from trellis_slack.errors import TrellisError
from trellis_slack.logs import log_context
from trellis_slack.slack import blocks
from trellis_slack.slack.events import (
    BotIdentity,
    Deletion,
    Edit,
    Meaning,
    Question,
    classify_app_mention,
    classify_message,
    mentioned_user_ids,
    question_text,
)
from trellis_slack.slack.web import SlackIO
from trellis_slack.store.sqlite import BotPost, QuestionRecord, Store

log = logging.getLogger(__name__)

#: What a question cut short by a restart says (beside its Retry button).
RESTARTED = "I was restarted before I could finish this answer. Click Retry to ask again."

#: The reaction that marks a question Trellis no longer has (dropped by an earlier edit or deletion).
DROPPED_REACTION = "wastebasket"


def _ts_key(ts: str) -> Decimal:
    """Slack timestamps compared as numbers ("1700000000.000100")."""
    try:
        return Decimal(ts)
    except InvalidOperation:
        return Decimal(0)


from trellis_slack.bot.access import Access  # noqa: E402  (moved to bot/access.py)


class Bridge:
    """Turns Slack events into answered questions.

    * Exactly one answer per question: every candidate is claimed by (channel, ts) in the state
      file before anything is sent, so ``app_mention`` + ``message`` for one mention, redeliveries
      (also after a restart) and re-sent mentions of an edited message produce one turn.
    * Answers in one thread never interleave: a thread has a lock; a follow-up that must wait says
      so in the thread at once and starts when the answer above it is done.
    * Users from other workspaces (Slack Connect) are refused politely unless allowed; nothing of
      theirs is sent to Trellis.
    """

    def __init__(
        self,
        *,
        bot: BotIdentity,
        slack: SlackIO,
        store: Store,
        runner: TurnRunner,
        access: Access,
    ) -> None:
        self.bot = bot
        self.slack = slack
        self.store = store
        self.runner = runner
        self.access = access
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._waiting: dict[tuple[str, str], int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    # -- entry points for the Slack listeners (they return at once; the work runs in a task) --

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background, tracked for shutdown; failures are logged, not raised."""
        if self._closing:
            work.close()
            return
        task = asyncio.create_task(self._guard(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guard(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handling a Slack event failed")

    async def on_message(self, event: Mapping[str, Any]) -> None:
        """A ``message`` event of any subtype."""
        await self._consider(classify_message(event, self.bot))

    async def on_app_mention(self, event: Mapping[str, Any]) -> None:
        """An ``app_mention`` event (a channel mention also arrives as ``message``)."""
        await self._consider(classify_app_mention(event, self.bot))

    async def _consider(self, meaning: Meaning) -> None:
        if isinstance(meaning, Question):
            await self._question(meaning)
        elif isinstance(meaning, Edit):
            await self._edit(meaning)
        elif isinstance(meaning, Deletion):
            await self._delete(meaning)
        else:
            log.debug("event ignored: %s", getattr(meaning, "reason", type(meaning).__name__))

    # -- edits and deletions: the thread in Slack and the chat in Trellis stay the same --

    async def _edit(self, edit: Edit) -> None:
        """A human changed the text of a message.

        * A question the bot handled: Trellis re-answers it (``edit_message`` with the question's
          *current* Trellis id) and drops everything after it, so the bot removes its answers to it
          and to every later question of that conversation, and marks those later questions.
        * A message the bot never handled, edited to mention it: a new question.
        * Anything else (edits of other messages, an edit that only touched the mention): ignored.
        """
        record = await self.store.question(edit.channel_id, edit.ts)
        names = await self.slack.names(mentioned_user_ids(edit.text, exclude={self.bot.user_id}))
        text = question_text(edit.text, self.bot.user_id, names)
        # One key per edit (Slack stamps each edit): a redelivery is recognised, while editing
        # back to an earlier text is still a new edit.
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        claim = f"{edit.ts}#edit#{edit.edited_ts or digest}"
        if record is None or record.status in ("deleted", "dropped"):
            if edit.mentioned or (record is not None and record.status == "dropped"):
                await self._question(self._as_question(edit), claim=claim)
            return
        if not text or text == record.text:
            log.debug("edit of %s left the question unchanged", edit.ts)
            return
        if not await self.store.claim_event(edit.channel_id, claim):
            log.info("duplicate delivery of the edit of %s ignored", edit.ts)
            return
        if record.status == "queued" and record.trellis_message_id is None:
            # Not asked yet (it waits for the answer above it): it will be asked as edited.
            await self.store.update_question(edit.channel_id, edit.ts, text=text)
            return
        with log_context(channel=edit.channel_id, thread=record.thread_ts):
            log.info("question %s was edited", edit.ts)
            await self._interrupt_from(record, "The question was edited.")
            async with self._thread(edit.channel_id, record.thread_ts):
                record = await self.store.question(edit.channel_id, edit.ts)
                if record is None:
                    return
                await self.store.update_question(edit.channel_id, edit.ts, text=text)
                dropped = await self._forget_from(record, include_own_answer=True)
                await self._mark_dropped(record, dropped, because="edited")
                identity = await self._identity_of(record.owner_id)
                await self.runner.run(
                    Ask(
                        team_id=edit.team_id,
                        channel_id=edit.channel_id,
                        thread_ts=record.thread_ts,
                        question_ts=record.ts,
                        user_id=record.user_id,
                        text=text,
                        owner_id=record.owner_id,
                        identity=identity,
                        edit_message_id=record.trellis_message_id,
                    )
                )

    async def _delete(self, deletion: Deletion) -> None:
        """A human deleted a question (or a question that started a thread became a tombstone).

        The answer in progress is stopped first; then Trellis deletes the question and everything
        after it, and only once Trellis confirms does the bot remove its answers and mark later
        questions. If Trellis cannot delete, the answers stay (they are still in the chat) and
        the thread says so: Slack never shows less than Trellis remembers.
        """
        record = await self.store.question(deletion.channel_id, deletion.ts)
        if record is None or record.status in ("deleted", "dropped"):
            return
        if not await self.store.claim_event(deletion.channel_id, f"{deletion.ts}#delete"):
            return
        if record.status == "queued" and record.trellis_message_id is None:
            # Still waiting for its turn: mark it now so it is never asked.
            await self.store.update_question(record.channel_id, record.ts, status="deleted")
        with log_context(channel=deletion.channel_id, thread=record.thread_ts):
            log.info("question %s was deleted", deletion.ts)
            await self._interrupt_from(record, "The question was deleted.")
            async with self._thread(deletion.channel_id, record.thread_ts):
                record = await self.store.question(deletion.channel_id, deletion.ts)
                if record is None:
                    return
                if record.trellis_message_id is not None:
                    try:
                        await self.runner.trellis.delete_message(
                            record.trellis_message_id,
                            identity=await self._identity_of(record.owner_id),
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
                await self.store.update_question(record.channel_id, record.ts, status="deleted")
                dropped = await self._forget_from(record, include_own_answer=True)
                await self._mark_dropped(record, dropped, because="deleted")

    async def _interrupt_from(self, record: QuestionRecord, reason: str) -> None:
        """Stop answers in progress to ``record`` or to a later question of its conversation.

        Trellis is about to drop everything from ``record`` on, so those answers are moot.
        """
        for question in await self.store.questions_in_thread(record.channel_id, record.thread_ts):
            if question.owner_id != record.owner_id or _ts_key(question.ts) < _ts_key(record.ts):
                continue
            if await self.runner.stop(question.channel_id, question.ts, None, reason=reason):
                await self.runner.finished(question.channel_id, question.ts)

    async def _forget_from(
        self, record: QuestionRecord, *, include_own_answer: bool
    ) -> list[QuestionRecord]:
        """Remove the bot's posts for ``record`` and every later question of its conversation.

        Returns the later human questions, which Trellis no longer has.
        """
        thread = await self.store.questions_in_thread(record.channel_id, record.thread_ts)
        later = [
            q
            for q in thread
            if q.owner_id == record.owner_id
            and _ts_key(q.ts) > _ts_key(record.ts)
            and q.status not in ("deleted", "dropped")
        ]
        for question in ([record] if include_own_answer else []) + later:
            await self._remove_posts(question)
        for question in later:
            await self.store.update_question(question.channel_id, question.ts, status="dropped")
        return later

    async def _remove_posts(self, question: QuestionRecord) -> None:
        for post in await self.store.bot_posts(question.channel_id, question.ts):
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

    async def _identity_of(self, owner_id: str) -> str | None:
        if not owner_id:
            return None
        user = await self.slack.user(owner_id)
        return user.email if user else None

    @staticmethod
    def _as_question(edit: Edit) -> Question:
        return Question(
            team_id=edit.team_id,
            channel_id=edit.channel_id,
            ts=edit.ts,
            thread_ts=edit.thread_ts,
            user_id=edit.user_id,
            user_team_id=edit.user_team_id,
            text=edit.text,
            mentioned=edit.mentioned,
            is_dm=edit.is_dm,
        )

    async def _question(self, q: Question, *, claim: str | None = None) -> None:
        """``claim`` is the dedupe key (default: the message's ts; an edit has its own)."""
        thread_ts = q.reply_thread_ts
        with log_context(channel=q.channel_id, thread=thread_ts):
            if not await self._should_answer(q, thread_ts):
                log.debug("%s is not for the bot (no mention, not in one of its threads)", q.ts)
                return
            if not await self.store.claim_event(q.channel_id, claim or q.ts):
                log.info("duplicate delivery of %s ignored", q.ts)
                return
            try:
                if not await self._allowed(q, thread_ts):
                    return
                await self._answer(q, thread_ts)
            except Exception:
                # Claimed, so Slack's redelivery will not bring it back: never leave it unanswered.
                log.exception("answering %s failed", q.ts)
                await self.slack.post(
                    q.channel_id,
                    thread_ts,
                    blocks.failure(
                        "Something went wrong on my side before I could answer. Please ask again.",
                        retry_value=None,
                    ),
                )

    async def _should_answer(self, q: Question, thread_ts: str) -> bool:
        if q.is_dm or q.mentioned:
            return True
        if q.thread_ts is None or self.access.follow_ups != "all":
            return False
        # A thread is the bot's once it took a question there, even before Trellis named the chat
        # (every conversation starts with a recorded question, so this one lookup covers both).
        # It runs for every reply in every thread of the bot's channels: keep it one query.
        return await self.store.thread_has_questions(q.channel_id, thread_ts)

    async def _allowed(self, q: Question, thread_ts: str) -> bool:
        reason = None
        if q.user_team_id and q.user_team_id != self.bot.team_id:
            if not self.access.allow_external_users:
                reason = (
                    "Sorry, I can only answer people from this workspace. "
                    "Your question was not sent to Trellis."
                )
        elif self.access.allowed_users is not None and q.user_id not in self.access.allowed_users:
            reason = "Sorry, you are not on the list of people who can ask me questions."
        if (
            reason is None
            and self.access.allowed_channels is not None
            and q.channel_id not in self.access.allowed_channels
        ):
            reason = (
                "Sorry, I am not set up to answer direct messages here: mention me in one of "
                "the channels I answer in."
                if q.is_dm
                else "Sorry, I am not set up to answer questions in this channel."
            )
        if reason is None:
            return True
        log.info("question from %s refused: %s", q.user_id, reason)
        if not await self.slack.ephemeral(q.channel_id, q.user_id, reason, thread_ts):
            await self.slack.post(q.channel_id, thread_ts, blocks.note(reason))
        return False

    async def _answer(self, q: Question, thread_ts: str) -> None:
        names = await self.slack.names(mentioned_user_ids(q.text, exclude={self.bot.user_id}))
        text = question_text(q.text, self.bot.user_id, names)
        if not text:
            await self.slack.post(
                q.channel_id,
                thread_ts,
                blocks.note(
                    "Ask me a question about your data, for example “orders by region last month”."
                ),
            )
            return
        owner_id, identity = "", None
        if self.access.per_user_identity:
            user = await self.slack.user(q.user_id)
            if user is None or user.email is None:
                refusal = (
                    "Sorry, I ask Trellis as you, and for that I need the e-mail address of your "
                    "Slack profile, which I cannot see. Ask your Slack admin to check that the app "
                    "has the `users:read.email` scope and that your profile shows an e-mail."
                )
                if not await self.slack.ephemeral(q.channel_id, q.user_id, refusal, thread_ts):
                    await self.slack.post(
                        q.channel_id, thread_ts, blocks.note(refusal, emoji=":warning:")
                    )
                return
            owner_id, identity = q.user_id, user.email
            await self._say_if_own_chat(q, thread_ts, owner_id)
        await self.store.add_question(
            QuestionRecord(
                channel_id=q.channel_id,
                ts=q.ts,
                thread_ts=thread_ts,
                user_id=q.user_id,
                text=text,
                trellis_message_id=None,
                status="queued",
                owner_id=owner_id,
            )
        )
        ask = Ask(
            team_id=q.team_id,
            channel_id=q.channel_id,
            thread_ts=thread_ts,
            question_ts=q.ts,
            user_id=q.user_id,
            text=text,
            owner_id=owner_id,
            identity=identity,
        )
        await self.run_in_thread(ask)

    @asynccontextmanager
    async def _thread(
        self,
        channel_id: str,
        thread_ts: str,
        on_wait: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[None]:
        """Hold the thread: one answer, edit or deletion at a time in it, in arrival order.

        Everyone who wants the thread is counted *before* the first await, so the lock is only
        forgotten when nobody holds it or waits for it. ``on_wait`` runs when the thread is busy.
        """
        key = (channel_id, thread_ts)
        lock = self._locks.setdefault(key, asyncio.Lock())
        busy = self._waiting.get(key, 0) > 0
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            if busy and on_wait is not None:
                await on_wait()
            async with lock:
                yield
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                self._locks.pop(key, None)

    async def _say_if_own_chat(self, q: Question, thread_ts: str, owner_id: str) -> None:
        """Per-user identity: a thread's chat belongs to whoever started it.

        Someone else asking in that thread asks as themselves, so Trellis answers in a new chat of
        theirs that does not see the earlier answers; the thread says so, once per person.
        """
        chats = await self.store.conversations_in_thread(q.team_id, q.channel_id, thread_ts)
        if not chats or any(c.owner_id == owner_id for c in chats):
            return
        await self.slack.post(
            q.channel_id,
            thread_ts,
            blocks.note(
                f"<@{q.user_id}>, I ask Trellis as you, so this starts your own conversation: "
                "it does not see the earlier answers in this thread."
            ),
        )

    async def run_in_thread(self, ask: Ask) -> None:
        """Run ``ask`` once every earlier answer in its thread is done, saying so if it must wait."""
        waiting: list[str] = []

        async def say_it_waits() -> None:
            ts = await self.slack.post(
                ask.channel_id,
                ask.thread_ts,
                blocks.waiting("I'll answer this as soon as I've finished the answer above."),
            )
            if ts is not None:
                waiting.append(ts)
                # Recorded at once, so a crash while it waits cannot leave it behind unexplained.
                await self.store.add_bot_post(
                    BotPost(
                        channel_id=ask.channel_id,
                        question_ts=ask.question_ts,
                        ts=ts,
                        file_id=None,
                        kind="status",
                    )
                )

        async with self._thread(ask.channel_id, ask.thread_ts, on_wait=say_it_waits):
            status_ts = waiting[0] if waiting else None
            record = await self.store.question(ask.channel_id, ask.question_ts)
            if record is not None and record.status in ("deleted", "dropped"):
                # Deleted (or dropped by an edit) while it waited: nothing to answer.
                if status_ts is not None:
                    await self.slack.delete(ask.channel_id, status_ts)
                return
            if self._closing:
                await self.store.update_question(ask.channel_id, ask.question_ts, status="failed")
                await self._show_restarted(
                    ask.channel_id, ask.thread_ts, ask.question_ts, status_ts
                )
                return
            if record is not None and record.text != ask.text and ask.edit_message_id is None:
                ask = replace(ask, text=record.text)  # edited while it waited
            await self.runner.run(ask, status_ts=status_ts)

    async def _show_restarted(
        self, channel_id: str, thread_ts: str, question_ts: str, status_ts: str | None
    ) -> None:
        """Say a question was not answered because of a restart, with Retry (nothing is retyped)."""
        note = blocks.failure(RESTARTED, retry_value=question_ts)
        if status_ts is None or not await self.slack.update(channel_id, status_ts, note):
            ts = await self.slack.post(channel_id, thread_ts, note)
            if ts is not None:
                await self.store.add_bot_post(
                    BotPost(
                        channel_id=channel_id,
                        question_ts=question_ts,
                        ts=ts,
                        file_id=None,
                        kind="error",
                    )
                )

    async def recover(self) -> int:
        """At start-up: questions a previous run left unanswered (a crash, a kill) end visibly.

        Each becomes a failure with Retry on its working (or waiting) message, so no thread keeps
        a "Thinking…" and a Stop button that nothing will ever finish. A message the process
        posted but died before recording (a window of milliseconds) cannot be found; the failure
        is then posted as a new message instead. Returns how many.
        """
        unfinished = await self.store.unfinished_questions()
        for question in unfinished:
            await self.store.update_question(question.channel_id, question.ts, status="failed")
            posts = await self.store.bot_posts(question.channel_id, question.ts)
            status = [p.ts for p in posts if p.kind == "status" and p.ts is not None]
            for extra in status[:-1]:
                await self.slack.delete(question.channel_id, extra)
            await self._show_restarted(
                question.channel_id,
                question.thread_ts,
                question.ts,
                status[-1] if status else None,
            )
        if unfinished:
            log.info(
                "%d question(s) left unanswered by the last run now offer Retry", len(unfinished)
            )
        return len(unfinished)

    # -- buttons --

    async def on_stop(self, *, channel_id: str, question_ts: str, user_id: str) -> None:
        """The Stop button: interrupt that answer, or tell the clicker it is already over."""
        if not await self.runner.stop(channel_id, question_ts, user_id):
            await self.slack.ephemeral(
                channel_id,
                user_id,
                "That answer has already finished or is being stopped.",
                await self._thread_of(channel_id, question_ts),
            )

    async def _thread_of(self, channel_id: str, question_ts: str) -> str | None:
        """The thread a question lives in, so a private reply shows up where the click was."""
        record = await self.store.question(channel_id, question_ts)
        return record.thread_ts if record else None

    async def on_retry(
        self, *, channel_id: str, question_ts: str, user_id: str, message_ts: str | None
    ) -> None:
        """The Retry button: ask the same question again in its thread."""
        # One Retry per failed answer, however often (or by how many people) it is clicked.
        claimed = message_ts is None or await self.store.claim_event(
            channel_id, f"{message_ts}#retry"
        )
        record = await self.store.question(channel_id, question_ts)
        if (
            not claimed
            or record is None
            or record.status != "failed"
            or self.runner.is_active(channel_id, question_ts)
        ):
            await self.slack.ephemeral(
                channel_id,
                user_id,
                "There is nothing to retry here any more.",
                record.thread_ts if record else None,
            )
            return
        # The failed answer goes away; the new one takes its place.
        if message_ts and await self.slack.delete(channel_id, message_ts):
            await self.store.remove_bot_post(channel_id, ts=message_ts)
        identity = await self._identity_of(record.owner_id)
        later = [
            q
            for q in await self.store.questions_in_thread(channel_id, record.thread_ts)
            if q.owner_id == record.owner_id
            and _ts_key(q.ts) > _ts_key(record.ts)
            and q.status not in ("deleted", "dropped")
        ]
        await self.run_in_thread(
            Ask(
                team_id=self.bot.team_id,
                channel_id=channel_id,
                thread_ts=record.thread_ts,
                question_ts=record.ts,
                user_id=record.user_id,
                text=record.text,
                owner_id=record.owner_id,
                identity=identity,
                # Trellis already holds the question: re-asking it by edit regenerates the answer
                # without a duplicate question in the chat. But an edit would also drop every
                # later turn, so with later questions it is asked again as a new message.
                edit_message_id=None if later else record.trellis_message_id,
            )
        )

    # -- shutdown --

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop taking questions, give answers in progress ``grace`` seconds, then stop them with a note."""
        self._closing = True
        pending = set(self._tasks)
        if pending:
            log.info("waiting up to %.0f s for %d answer(s) in progress", grace, len(pending))
            _, pending = await asyncio.wait(pending, timeout=grace)
        for active in list(self.runner.active.values()):
            await self.runner.stop(
                active.ask.channel_id,
                active.ask.question_ts,
                None,
                reason=RESTARTED,
                offer_retry=True,
            )
        if pending:
            _, pending = await asyncio.wait(pending, timeout=max(grace / 2, 1.0))
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
