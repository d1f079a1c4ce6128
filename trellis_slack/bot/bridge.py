"""Which Slack events become questions, edits, deletions, Stops and Retries; start-up and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Mapping
from typing import Any

from trellis_slack.bot import lifecycle
from trellis_slack.bot.access import Access
from trellis_slack.bot.changes import Changes
from trellis_slack.bot.fleet import AGENT_STOP, STOP, STOP_FOR, Fleet
from trellis_slack.bot.intake import Intake, Recorded, settle
from trellis_slack.bot.lifecycle import Status
from trellis_slack.bot.queue import AnswerQueue
from trellis_slack.bot.seams import MessageDeleter
from trellis_slack.bot.threads import ThreadTurns
from trellis_slack.bot.turn import RESTARTED, TurnRunner
from trellis_slack.slack.events import (
    BotIdentity,
    Deletion,
    Edit,
    Meaning,
    Question,
    classify_app_mention,
    classify_message,
)
from trellis_slack.slack.web import SlackIO
from trellis_slack.store.base import Store
from trellis_slack.store.records import Command, PostKind, QuestionRecord

log = logging.getLogger(__name__)

#: What a Retry click says when there is nothing (any more) to retry.
#: Seconds an edit or deletion waits for another replica to stop the answer it runs.
STOP_ELSEWHERE_WAIT = 30.0
NOTHING_TO_RETRY = "There is nothing to retry here any more."


class Bridge:
    """Turns Slack events into answered questions: the entry points of the Slack listeners.

    The listeners return at once; the work runs in tracked tasks so that shutdown can wait for
    it. New questions go to `Intake`, edits and deletions to `Changes`, answers are run by the
    thread's `AnswerQueue`, one at a time per thread through a claim in the store.
    """

    def __init__(
        self,
        *,
        bot: BotIdentity,
        slack: SlackIO,
        store: Store,
        runner: TurnRunner,
        access: Access,
        trellis: MessageDeleter,
        fleet: Fleet | None = None,
    ) -> None:
        self.bot = bot
        self.slack = slack
        self.store = store
        self.runner = runner
        #: This replica among those sharing the store (one, unless the store is PostgreSQL).
        self.fleet = fleet or Fleet(store)
        replica = self.fleet.replica
        turns = ThreadTurns(store, replica=replica)
        self.queue = AnswerQueue(slack=slack, store=store, runner=runner, turns=turns)
        self.intake = Intake(
            bot=bot, slack=slack, store=store, access=access, queue=self.queue, replica=replica
        )
        self.changes = Changes(
            bot=bot,
            slack=slack,
            store=store,
            runner=runner,
            queue=self.queue,
            trellis=trellis,
            stop_elsewhere=self._stop_elsewhere,
        )
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background, tracked for shutdown; failures are logged, not raised."""
        if self.queue.closing:
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

    async def on_message(self, event: Mapping[str, Any], recorded: Recorded | None = None) -> None:
        """A ``message`` event of any subtype; ``recorded``: see `Intake.take`."""
        await self._consider(classify_message(event, self.bot), recorded)

    async def on_app_mention(
        self, event: Mapping[str, Any], recorded: Recorded | None = None
    ) -> None:
        """An ``app_mention`` event (a channel mention also arrives as ``message``)."""
        await self._consider(classify_app_mention(event, self.bot), recorded)

    async def _consider(self, meaning: Meaning, recorded: Recorded | None = None) -> None:
        try:
            if isinstance(meaning, Question):
                await self.intake.take(meaning, recorded=recorded)
            else:
                settle(recorded)  # edits and deletions claim their own deliveries
                await self._change(meaning)
        except BaseException as exc:
            settle(recorded, exc)  # failed before it was recorded: not acked (no-op if it was)
            raise
        settle(recorded)

    async def _change(self, meaning: Meaning) -> None:
        if isinstance(meaning, Edit):
            await self.changes.edit(meaning, as_new=self._edit_as_question)
        elif isinstance(meaning, Deletion):
            await self.changes.delete(meaning)
        else:
            log.debug("event ignored: %s", getattr(meaning, "reason", type(meaning).__name__))

    async def _edit_as_question(self, edit: Edit, claim: str) -> None:
        question = Question(
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
        await self.intake.take(question, claim=claim)

    # -- buttons --

    async def on_stop(self, *, channel_id: str, question_ts: str, user_id: str) -> None:
        """The Stop button: interrupt that answer, or tell the clicker it is already over."""
        if not await self.runner.stop(channel_id, question_ts, lifecycle.StopClicked(user_id)):
            record = await self.store.question(channel_id, question_ts)
            if record is not None and await self.fleet.forward(
                channel_id, record.thread_ts, Command(STOP, channel_id, question_ts, user_id)
            ):
                return  # the replica answering it stops it (and tells the clicker if too late)
            await self.slack.ephemeral(
                channel_id, user_id, lifecycle.ALREADY_OVER, record.thread_ts if record else None
            )

    async def on_agent_stopped(self, *, channel_id: str, thread_ts: str, user_id: str) -> None:
        """Slack's own stop control (agent view): stop every answer in progress in that thread,
        as the Stop button would. Nothing in progress: nothing to do (Slack already shows it)."""
        stopped = False
        for active in list(self.runner.active.values()):
            ask = active.ask
            if ask.channel_id == channel_id and ask.thread_ts == thread_ts:
                stopped = True
                await self.runner.stop(channel_id, ask.question_ts, lifecycle.StopClicked(user_id))
        if not stopped:
            await self.fleet.forward(
                channel_id, thread_ts, Command(AGENT_STOP, channel_id, thread_ts, user_id)
            )

    async def perform(self, command: Command) -> None:
        """A command another replica left for this one, about an answer running here."""
        if command.kind == STOP:
            await self.on_stop(
                channel_id=command.channel_id, question_ts=command.ts, user_id=command.user_id
            )
        elif command.kind == AGENT_STOP:
            await self.on_agent_stopped(
                channel_id=command.channel_id, thread_ts=command.ts, user_id=command.user_id
            )
        elif command.kind == STOP_FOR:
            await self.runner.stop(
                command.channel_id, command.ts, lifecycle.StopFor(command.payload)
            )
        else:
            log.warning("a command of unknown kind %r was ignored", command.kind)

    async def _stop_elsewhere(self, question: QuestionRecord, reason: str) -> bool:
        """Ask the replica answering ``question`` to stop; wait (a while) until it has."""
        command = Command(STOP_FOR, question.channel_id, question.ts, payload=reason)
        if not await self.fleet.forward(question.channel_id, question.thread_ts, command):
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_ELSEWHERE_WAIT):
                while True:
                    changed = self.store.watch_thread(question.channel_id, question.thread_ts)
                    current = await self.store.question(question.channel_id, question.ts)
                    if current is None or current.status is not Status.ANSWERING:
                        return True
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.fleet.poll):
                            await changed.wait()
        log.warning("the replica answering %s did not stop it in time", question.ts)
        return True

    async def on_retry(
        self, *, channel_id: str, question_ts: str, user_id: str, message_ts: str | None
    ) -> None:
        """The Retry button: ask the same question again, in place of what its failure left."""
        # One Retry per failed answer, however often (or by how many people) it is clicked.
        first_click = message_ts is None or await self.store.claim_event(
            channel_id, f"{message_ts}#retry"
        )
        record = await self.store.question(channel_id, question_ts)
        if record is None or not lifecycle.may_retry(
            record.status,
            answering=self.runner.is_active(channel_id, question_ts),
            first_click=first_click,
        ):
            await self.slack.ephemeral(
                channel_id, user_id, NOTHING_TO_RETRY, record.thread_ts if record else None
            )
            return
        # Ours now: no other replica (nor our own adoption) takes it for a dead one's.
        if not await self.store.update_question(
            channel_id, question_ts, status=Status.QUEUED, handler=self.fleet.replica
        ):
            await self.slack.ephemeral(channel_id, user_id, NOTHING_TO_RETRY, record.thread_ts)
            return
        # Everything the cut-short turn left goes (any chart or table it had posted), so the new
        # answer takes its place as an edit's does: never a chart twice. The failure message
        # itself becomes the new answer, where it is.
        keep = await self.changes.answer_message(record)
        await self.changes.remove_posts(record, keep=keep)
        later = await self.changes.later_in_conversation(record)
        await self.queue.answer(
            record,
            team_id=self.bot.team_id,
            identity=await self.queue.identity_of(record.owner_id),
            # Trellis already holds the question: re-asking it by edit regenerates the answer
            # without a duplicate question in the chat. But an edit would also drop every
            # later turn, so with later questions it is asked again as a new message.
            reask=not later,
            in_place_of=keep,
        )

    # -- start-up and shutdown --

    async def recover(self) -> int:
        """At start-up: what a previous run (or a replica that died) left unfinished ends well.

        See `take_over`. Returns how many questions were taken over.
        """
        await self.fleet.beat()
        orphans = await self.fleet.adopt()
        await self.take_over(orphans)
        return len(orphans)

    async def take_over(self, questions: list[QuestionRecord]) -> None:
        """Questions adopted from a process that is gone (a crash, a kill, a lost node).

        A question that was already queued for an answer (checked, waiting for its turn) is
        answered here, in its waiting message's place. One that was being answered, or not yet
        checked, becomes a failure with Retry on its working (or waiting) message, so no thread
        keeps a "Thinking…" and a Stop button that nothing will ever finish; a message the dead
        process posted but had not recorded (a window of milliseconds) cannot be found, and the
        failure is then posted as a new message instead.
        """
        if self.queue.closing:
            # Shutting down: left to the replicas still running, which adopt them once this
            # one has retired.
            return
        cut_short = 0
        for question in questions:
            try:
                cut_short += await self._take_over_one(question)
            except Exception:
                log.exception("taking over question %s failed", question.ts)
        if cut_short:
            log.info(
                "%d question(s) left unanswered by a process that stopped now offer Retry",
                cut_short,
            )
        if len(questions) > cut_short:
            log.info(
                "%d queued question(s) left by a process that stopped are answered now",
                len(questions) - cut_short,
            )

    async def _take_over_one(self, question: QuestionRecord) -> int:
        """One adopted question: answered (queued), or ended with Retry; 1 when ended."""
        posts = await self.store.bot_posts(question.channel_id, question.ts)
        status = [p.ts for p in posts if p.kind is PostKind.STATUS and p.ts is not None]
        for extra in status[:-1]:
            await self.slack.delete(question.channel_id, extra)
        if question.status is Status.QUEUED:
            self.spawn(
                self.queue.answer(
                    question,
                    team_id=self.bot.team_id,
                    identity=await self.queue.identity_of(question.owner_id),
                    in_place_of=status[-1] if status else None,
                )
            )
            return 0
        await self.store.update_question(question.channel_id, question.ts, status=Status.FAILED)
        await self.queue.show_restarted(question, status[-1] if status else None)
        return 1

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop taking questions, give answers in progress ``grace`` seconds, then stop them."""
        self.queue.closing = True
        pending = set(self._tasks)
        if pending:
            log.info("waiting up to %.0f s for %d answer(s) in progress", grace, len(pending))
            _, pending = await asyncio.wait(pending, timeout=grace)
        for active in list(self.runner.active.values()):
            await self.runner.stop(
                active.ask.channel_id,
                active.ask.question_ts,
                lifecycle.StopFor(RESTARTED, offers_retry=True),
            )
        if pending:
            _, pending = await asyncio.wait(pending, timeout=max(grace / 2, 1.0))
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
