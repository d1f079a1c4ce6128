"""New questions: recorded on arrival, checked against the access policy, then queued in order."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from trellis_slack.bot import access as policy
from trellis_slack.bot.access import Access
from trellis_slack.bot.lifecycle import Status
from trellis_slack.bot.queue import AnswerQueue
from trellis_slack.bot.storing import best_effort
from trellis_slack.errors import StateError
from trellis_slack.logs import log_context
from trellis_slack.slack import blocks
from trellis_slack.slack.events import BotIdentity, Question, mentioned_user_ids, question_text
from trellis_slack.slack.web import SlackIO
from trellis_slack.store.base import Store
from trellis_slack.store.records import QuestionRecord, Receipt

log = logging.getLogger(__name__)

#: What an empty question (a bare mention) gets.
EMPTY = "Ask me a question about your data, for example “orders by region last month”."
#: Per-user identity without the asker's e-mail.
NO_EMAIL = (
    "Sorry, I ask Trellis as you, and for that I need the e-mail address of your Slack profile, "
    "which I cannot see. Ask your Slack admin to check that the app has the `users:read.email` "
    "scope and that your profile shows an e-mail."
)
#: Something unexpected broke before the question could be queued.
BROKE = "Something went wrong on my side before I could answer. Please ask again."


#: Settled once an arriving question is recorded: Slack's delivery is acked only then.
Recorded = asyncio.Future[None]


def settle(recorded: Recorded | None, error: BaseException | None = None) -> None:
    """Say the delivery is recorded (or, with ``error``, could not be); once, and only once."""
    if recorded is None or recorded.done():
        return
    if error is None:
        recorded.set_result(None)
    else:
        recorded.set_exception(error)


@dataclass(frozen=True, slots=True)
class Intake:
    """Takes each candidate question from Slack to the thread's queue, exactly once.

    * **Recorded first.** The delivery is claimed and the question recorded (``received``) in one
      store call before any Slack call, so ``app_mention`` + ``message`` for one mention,
      redeliveries (also after a restart) and re-sent mentions of an edited message make one
      question, and a follow-up delivered right behind its question finds the thread the bot's.
    * **In order.** The thread's queue (`AnswerQueue`) answers the earliest waiting question
      first, so the access check and name look-ups of one question never let a later one
      overtake it.
    * Declined questions (refused by the access policy, empty, no e-mail in per-user mode) are
      told why, privately where Slack allows, and never reach Trellis. A follow-up in a thread
      whose only question was declined a moment before is still answered: by then it was
      recorded as a reply to the bot, which is what its asker meant.
    """

    bot: BotIdentity
    slack: SlackIO
    store: Store
    access: Access
    queue: AnswerQueue
    #: This replica: it handles the questions it records (`bot.fleet`).
    replica: str = ""

    async def take(
        self, q: Question, *, claim: str | None = None, recorded: Recorded | None = None
    ) -> None:
        """``claim`` is the dedupe key (default: the message's ts; an edit has its own).

        ``recorded`` is settled as soon as the question is recorded (or found not to be one), so
        Slack's delivery is acked only then; with the store's error when it could not be, so the
        delivery is not acked and Slack brings it again (here or to another replica).
        """
        thread_ts = q.reply_thread_ts
        follow_up = not (q.is_dm or q.mentioned)
        with log_context(channel=q.channel_id, thread=thread_ts):
            if follow_up and (q.thread_ts is None or self.access.follow_ups != "all"):
                log.debug("%s is not for the bot (no mention, not in one of its threads)", q.ts)
                settle(recorded)
                return
            record = QuestionRecord(
                channel_id=q.channel_id,
                ts=q.ts,
                thread_ts=thread_ts,
                user_id=q.user_id,
                # Readable at once; other people's names are filled in below.
                text=question_text(q.text, self.bot.user_id, {}),
                trellis_message_id=None,
                status=Status.RECEIVED,
                owner_id=q.user_id if self.access.per_user_identity else "",
                handler=self.replica,
            )
            try:
                receipt = await self.store.receive_question(
                    record, claim=claim or q.ts, follow_up=follow_up
                )
            except StateError as exc:
                settle(recorded, exc)
                raise
            settle(recorded)
            if receipt is Receipt.NOT_OURS:
                log.debug("%s is not for the bot (no mention, not in one of its threads)", q.ts)
                return
            if receipt is Receipt.DUPLICATE:
                log.info("duplicate delivery of %s ignored", q.ts)
                return
            try:
                await self._accept(q, record)
            except Exception:
                # Claimed, so Slack's redelivery will not bring it back: never leave it unanswered.
                log.exception("answering %s failed", q.ts)
                # Said first: the store may be what failed.
                await self.slack.post(
                    q.channel_id, thread_ts, blocks.failure(BROKE, retry_value=None)
                )
                failed = self.store.update_question(q.channel_id, q.ts, status=Status.FAILED)
                await best_effort(failed, "the failed question", False)

    async def _accept(self, q: Question, record: QuestionRecord) -> None:
        refusal = policy.refusal(
            self.access,
            user_id=q.user_id,
            user_team_id=q.user_team_id,
            bot_team_id=self.bot.team_id,
            channel_id=q.channel_id,
            is_dm=q.is_dm,
        )
        if refusal is not None:
            log.info("question from %s refused: %s", q.user_id, refusal.value)
            await self._decline(q, record, refusal.value, emoji=":information_source:")
            return
        names = await self.slack.names(mentioned_user_ids(q.text, exclude={self.bot.user_id}))
        text = question_text(q.text, self.bot.user_id, names)
        if not text:
            await self.store.update_question(q.channel_id, q.ts, status=Status.DECLINED)
            await self.slack.post(q.channel_id, record.thread_ts, blocks.note(EMPTY))
            return
        identity = None
        if self.access.per_user_identity:
            user = await self.slack.user(q.user_id)
            if user is None or user.email is None:
                await self._decline(q, record, NO_EMAIL, emoji=":warning:")
                return
            identity = user.email
            await self._say_if_own_chat(q, record.thread_ts)
        if not await self.store.update_question(
            q.channel_id, q.ts, text=text, status=Status.QUEUED, handler=self.replica
        ):
            return  # deleted (or dropped) while it was being checked: nothing to ask
        queued = await self.store.question(q.channel_id, q.ts)
        if queued is not None:
            await self.queue.runner.attachments.hold(q.channel_id, q.ts, q.files)
            await self.queue.answer(queued, team_id=q.team_id, identity=identity)

    async def _decline(self, q: Question, record: QuestionRecord, text: str, *, emoji: str) -> None:
        await self.store.update_question(q.channel_id, q.ts, status=Status.DECLINED)
        if not await self.slack.ephemeral(q.channel_id, q.user_id, text, record.thread_ts):
            await self.slack.post(q.channel_id, record.thread_ts, blocks.note(text, emoji=emoji))

    async def _say_if_own_chat(self, q: Question, thread_ts: str) -> None:
        """Per-user identity: a thread's chat belongs to whoever started it.

        Someone else asking in that thread asks as themselves, so Trellis answers in a new chat of
        theirs that does not see the earlier answers; the thread says so, once per person.
        """
        chats = await self.store.conversations_in_thread(q.team_id, q.channel_id, thread_ts)
        if not chats or any(c.owner_id == q.user_id for c in chats):
            return
        await self.slack.post(
            q.channel_id,
            thread_ts,
            blocks.note(
                f"<@{q.user_id}>, I ask Trellis as you, so this starts your own conversation: "
                "it does not see the earlier answers in this thread."
            ),
        )
