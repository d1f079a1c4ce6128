"""The glue: run one conversation turn — a question to Trellis, and what the user sees in Slack.

The decisions are `lifecycle.step`'s; this module performs the effects it returns.

Choices made here (the docs leave them open):

* The working message is a thread reply posted before Trellis is even asked, so the user sees a
  sign of work at once; it carries the Stop button and the answer streamed so far.
* Visualizations are rendered concurrently but posted strictly in the order Trellis sent them,
  and the answer text after them (see `posting.ThreadPoster.answer`).
* Errors are answers: the working message becomes the error in plain words, with Retry when
  asking again can help. Anything unexpected is logged with its traceback and still answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace

from trellis_slack.bot import lifecycle
from trellis_slack.bot.asks import Ask, Defaults
from trellis_slack.bot.attachments import Attachments
from trellis_slack.bot.chats import RETIRED_FOLLOW_UP, ChatDeleter, Chats
from trellis_slack.bot.lifecycle import Status
from trellis_slack.bot.posting import ThreadPoster, VisualPoster
from trellis_slack.bot.private import open_private, private_mode
from trellis_slack.bot.seams import TurnHandle, TurnSource, VisualizationRenderer
from trellis_slack.bot.storing import best_effort, until_stored
from trellis_slack.bot.streaming import Streaming
from trellis_slack.bot.views import (
    STATUS_AFTER,
    STATUS_REFRESH,
    WORKING,
    AnswerView,
    EditedView,
    open_view,
)
from trellis_slack.errors import TrellisError
from trellis_slack.logs import add_log_context, log_context
from trellis_slack.ops.metrics import Metrics
from trellis_slack.settings import PrivateAnswers
from trellis_slack.slack import blocks
from trellis_slack.slack.web import LiveMessage, SlackIO
from trellis_slack.store.base import Store
from trellis_slack.store.records import Conversation, PostKind
from trellis_slack.trellis.client import EditMessage, SendMessage
from trellis_slack.trellis.protocol import ChatMetadata

log = logging.getLogger(__name__)

#: Tries, ``OUTCOME_RETRY`` seconds apart, to record how an answer ended while the store is away.
OUTCOME_TRIES = 60
OUTCOME_RETRY = 1.0
#: What an answer cut short by a restart says (beside its Retry button).
RESTARTED = "I was restarted before I could finish this answer. Click Retry to ask again."


@dataclass
class ActiveTurn:
    """A turn in progress: its pure state (`lifecycle.Turn`), and what Stop needs to reach it."""

    ask: Ask
    state: lifecycle.Turn = field(default_factory=lifecycle.Turn)
    handle: TurnHandle | None = None
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = field(default_factory=time.monotonic)

    def feed(self, event: lifecycle.TurnEvent) -> tuple[lifecycle.Effect, ...]:
        """Advance the state machine by one event; the effects are the caller's to perform."""
        self.state, effects = lifecycle.step(self.state, event)
        if self.state.stop is not None:
            self.stop_requested.set()
        return effects


class TurnRunner:
    """Runs turns: posts the working message, streams Trellis events into Slack, records it all."""

    def __init__(
        self,
        *,
        slack: SlackIO,
        trellis: TurnSource,
        store: Store,
        renderer: VisualizationRenderer,
        defaults: Defaults,
        update_interval: float = 1.0,
        metrics: Metrics | None = None,
        native: bool = False,
        status_refresh: float = STATUS_REFRESH,
        status_after: float = STATUS_AFTER,
        chats: Chats | None = None,
        private_answers: PrivateAnswers = "off",
    ) -> None:
        self.metrics = metrics or Metrics()
        #: Retires chats under Trellis's open-chat cap (deleting them through ``trellis``).
        self.chats = chats or Chats(store, trellis if isinstance(trellis, ChatDeleter) else None)
        self.slack = slack
        self.trellis = trellis
        self.store = store
        self.renderer = renderer
        self.defaults = defaults
        self.update_interval = update_interval
        #: Stream answers with Slack's streaming methods (``SLACK_STREAMING=native``).
        self.native = native
        self.status_refresh = status_refresh
        self.status_after = status_after
        #: Where answers to channel questions go (``PRIVATE_ANSWERS``, `bot.private`).
        self.private_answers: PrivateAnswers = private_answers
        #: The links of each question's files, kept in the store for its turn (and any Retry).
        self.attachments = Attachments(store)
        #: Channels where Slack refused to start a stream: edited messages there, no retries.
        self.no_streams: set[str] = set()
        self.active: dict[tuple[str, str], ActiveTurn] = {}

    async def finished(self, channel_id: str, question_ts: str) -> None:
        """Wait until the answer to that question (if one is in progress) has ended."""
        active = self.active.get((channel_id, question_ts))
        if active is not None:
            await active.done.wait()

    def is_active(self, channel_id: str, question_ts: str) -> bool:
        """Whether an answer to that question is in progress."""
        return (channel_id, question_ts) in self.active

    async def stop(
        self, channel_id: str, question_ts: str, event: lifecycle.StopClicked | lifecycle.StopFor
    ) -> bool:
        """Stop the answer to that question; False if no answer to it is in progress.

        A click on an answer that is ending or already stopping changes nothing, and the clicker
        is told so (only them).
        """
        active = self.active.get((channel_id, question_ts))
        if active is None:
            return False
        await self.perform_now(active, active.feed(event))
        return True

    async def run(self, ask: Ask, *, status_ts: str | None = None) -> Status:
        """Answer ``ask`` in its thread; never raises for Trellis or Slack failures."""
        with log_context(channel=ask.channel_id, thread=ask.thread_ts):
            ask = replace(ask, private=private_mode(self.private_answers, ask.channel_id))
            key = (ask.channel_id, ask.question_ts)
            active = ActiveTurn(ask)
            self.active[key] = active
            try:
                return await self._run(active, status_ts)
            finally:
                self.active.pop(key, None)
                active.done.set()

    async def _run(self, active: ActiveTurn, status_ts: str | None) -> Status:
        ask = active.ask
        self.metrics.count_question()
        opened = await self._surface(ask, status_ts)
        if opened is None:
            log.error("could not post in the thread; is the bot a member of the channel?")
            self.metrics.count_error("slack_post")
            # Never silence: tell the asker, privately, if Slack lets us say anything at all.
            await self.slack.ephemeral(
                ask.channel_id,
                ask.question.user_id,
                "Sorry, Slack did not let me post in this thread, so your question was not "
                "answered. Please try again in a moment.",
                ask.thread_ts,
            )
            await self.store.update_question(ask.channel_id, ask.question_ts, status=Status.FAILED)
            return Status.FAILED
        poster, view = opened
        self.metrics.observe_first_sign(time.monotonic() - active.started)
        status_ts = view.ts
        if await self.store.conversation_retired(
            ask.team_id, ask.channel_id, ask.thread_ts, ask.question.owner_id
        ):
            await self._say_retired(ask, poster)
        await poster.record(PostKind.STATUS, ts=status_ts)
        if not await self.store.update_question(
            ask.channel_id, ask.question_ts, status=Status.ANSWERING
        ):
            # Deleted or dropped the moment it got its turn: it is not asked after all.
            await view.finish(None, failed=True)
            await view.close()
            await poster.forget(status_ts)
            current = await self.store.question(ask.channel_id, ask.question_ts)
            return current.status if current else Status.DELETED
        # A private answer carries its charts inline: a chart posted as a file would be public.
        inline = self.native or not poster.attaches_files
        visuals = VisualPoster(poster, self.renderer, inline=inline, on_blocks=view.visual)
        streaming = Streaming(self, active, view, visuals)
        try:
            ending = await streaming.run()
        except TrellisError as exc:
            log.warning("turn failed: %s", exc)
            self.metrics.count_error(exc)
            ending = active.feed(lifecycle.Failed(blocks.explain_error(exc), exc.retryable))
        except asyncio.CancelledError:
            # Shut down before the answer ended: the working message must not keep a Stop button
            # that no longer works. Finish it (shielded from the cancellation), then go.
            visuals.cancel()
            await asyncio.shield(self._abandon(ask, view))
            raise
        except Exception:
            log.exception("turn failed unexpectedly")
            self.metrics.count_error("internal")
            ending = active.feed(
                lifecycle.Failed(
                    "Something went wrong on my side while answering. Please try again.", True
                )
            )
        try:
            return await self._finish(
                active,
                view,
                poster,
                visuals,
                effects=ending,
                final_frame_at=streaming.final_frame_at,
            )
        finally:
            await view.close()

    async def _finish(
        self,
        active: ActiveTurn,
        view: AnswerView,
        poster: ThreadPoster,
        visuals: VisualPoster,
        *,
        effects: tuple[lifecycle.Effect, ...],
        final_frame_at: float | None,
    ) -> Status:
        """Show how the turn ended — the answer, the stop, or the failure — and record it."""
        ask, outcome = active.ask, Status.FAILED
        await view.close()  # the outcome is known: Slack's status line goes before it shows

        def observe() -> None:
            """How long the final frame took to become a Slack call (issued right after this)."""
            if final_frame_at is not None:
                self.metrics.observe_overhead(time.monotonic() - final_frame_at)

        for effect in effects:
            if isinstance(effect, lifecycle.ShowAnswer):
                for held in effect.held:
                    visuals.add(held)
                await visuals.drain()
                observe()
                if effect.message_id:
                    saved = self.store.save_answer_message(
                        ask.channel_id, ask.question_ts, effect.message_id
                    )
                    await best_effort(saved, "the answer's Trellis message", None)
                await poster.answer(view, effect.content, visuals=visuals)
            elif isinstance(effect, lifecycle.ShowStopped):
                visuals.cancel()
                observe()
                retry = ask.button_value if effect.retry else None
                await view.finish(
                    blocks.stopped(effect.by, effect.reason, retry_value=retry), failed=True
                )
            elif isinstance(effect, lifecycle.ShowFailure):
                stop = active.state.stop
                if stop is not None and stop.offers_retry:
                    visuals.cancel()  # cut short by a restart: nothing more is posted
                else:
                    await visuals.drain()
                observe()
                retry = ask.button_value if effect.retry else None
                await view.finish(blocks.failure(effect.message, retry_value=retry), failed=True)
            elif isinstance(effect, lifecycle.Finish):
                outcome = effect.status
            else:
                await self.perform_now(active, (effect,))
        self.metrics.count(outcome)
        self.metrics.observe_answer(outcome, time.monotonic() - active.started)
        await self._record_outcome(ask, outcome)
        return outcome

    async def _record_outcome(self, ask: Ask, outcome: Status) -> None:
        """Record how the answer ended; while the store is away, again until it takes it.

        A question left "answering" would be taken for a cut-short one at the next takeover
        (a restart, another replica), and its answer, already in Slack, replaced by Retry.
        """
        await until_stored(
            lambda: self.store.update_question(ask.channel_id, ask.question_ts, status=outcome),
            f"how the answer to {ask.question_ts} ended",
            every=OUTCOME_RETRY,
            tries=OUTCOME_TRIES,
        )

    async def _say_retired(self, ask: Ask, poster: ThreadPoster) -> None:
        """One line in the thread: its earlier chat is gone, so this answer starts afresh."""
        ts = await self.slack.post(ask.channel_id, ask.thread_ts, blocks.note(RETIRED_FOLLOW_UP))
        if ts is not None:
            await poster.record(PostKind.NOTE, ts=ts)

    async def perform_now(self, active: ActiveTurn, effects: tuple[lifecycle.Effect, ...]) -> None:
        """The effects that take place at once, wherever the event came from."""
        for effect in effects:
            if isinstance(effect, lifecycle.Interrupt):
                if active.handle is not None:
                    await active.handle.interrupt()
            elif isinstance(effect, lifecycle.Tell):
                await self.slack.ephemeral(
                    active.ask.channel_id, effect.user_id, effect.text, active.ask.thread_ts
                )

    async def _abandon(self, ask: Ask, view: AnswerView) -> None:
        await view.finish(blocks.failure(RESTARTED, retry_value=ask.button_value), failed=True)
        await view.close()
        await self.store.update_question(ask.channel_id, ask.question_ts, status=Status.FAILED)

    async def _surface(
        self, ask: Ask, status_ts: str | None
    ) -> tuple[ThreadPoster, AnswerView] | None:
        """Where the answer shows: its thread, or only to its asker (``PRIVATE_ANSWERS``)."""
        if ask.private != "off":
            return await open_private(self, ask, status_ts)
        view = await self._open(ask, status_ts)
        if view is None:
            return None
        poster = ThreadPoster(
            self.slack, self.store, ask.channel_id, ask.thread_ts, ask.question_ts
        )
        return poster, view

    async def _open(self, ask: Ask, status_ts: str | None) -> AnswerView | None:
        """The answer's message: a new stream or working message, or the waiting note reused.

        A question that waited keeps its waiting note's place in the thread: it becomes the
        working message (edited, since a stream cannot start on an existing message).
        """
        if status_ts is not None:
            first = blocks.working(WORKING, question_ts=ask.question_ts)
            if await self.slack.update(ask.channel_id, status_ts, first):
                live = LiveMessage(
                    self.slack, ask.channel_id, status_ts, interval=self.update_interval
                )
                return EditedView(live, ask.question_ts)
        in_dm = ask.channel_id.startswith("D")
        return await open_view(
            self.slack,
            channel=ask.channel_id,
            thread_ts=ask.thread_ts,
            question_ts=ask.question_ts,
            recipient=None if in_dm else (ask.question.user_id, ask.team_id),
            native=self.native and ask.channel_id not in self.no_streams,
            interval=self.update_interval,
            refused=self.no_streams,
            status_refresh=self.status_refresh,
            status_after=self.status_after,
        )

    async def channel_defaults(self, team_id: str, channel_id: str) -> Defaults:
        """The channel's ``/trellis`` choices, each falling back to the bot's defaults."""
        chosen = await self.store.channel_settings(team_id, channel_id)
        if chosen is None:
            return self.defaults
        return Defaults(
            chosen.integration_id or self.defaults.integration_id,
            chosen.model or self.defaults.model,
        )

    async def remember_chat(
        self,
        ask: Ask,
        conversation: Conversation | None,
        request: SendMessage | EditMessage,
        event: ChatMetadata,
    ) -> None:
        """Save the thread's Trellis chat (and the question's Trellis id) for what comes next."""
        add_log_context(chat=event.chat_id)
        if conversation is None or conversation.chat_id != event.chat_id:
            conversation = Conversation(
                team_id=ask.team_id,
                channel_id=ask.channel_id,
                thread_ts=ask.thread_ts,
                owner_id=ask.question.owner_id,
                chat_id=event.chat_id,
                integration_id=request.integration_id,
                model=request.model,
            )
            await best_effort(self.store.save_conversation(conversation), "the chat", None)
        # Used now (the least recently used chats are retired first); live again if retired.
        await best_effort(self.store.touch_conversation(conversation), "the chat's use", None)
        if event.user_message_id:
            asked = self.store.update_question(
                ask.channel_id, ask.question_ts, trellis_message_id=event.user_message_id
            )
            await best_effort(asked, "the question's Trellis id", False)
