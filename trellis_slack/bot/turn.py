"""The glue: run one conversation turn — a question to Trellis, and what the user sees in Slack."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from trellis_slack.errors import TrellisError
from trellis_slack.logs import add_log_context, log_context
from trellis_slack.ops.metrics import Metrics
from trellis_slack.slack import blocks
from trellis_slack.slack.markdown import (
    answer_messages,
    escape_mrkdwn,
    mrkdwn_section,
    streaming_preview,
)
from trellis_slack.slack.web import LiveMessage, SlackIO
from trellis_slack.store.sqlite import BotPost, Conversation, Store
from trellis_slack.trellis.client import EditMessage, SendMessage
from trellis_slack.trellis.protocol import (
    ChatMetadata,
    ErrorEvent,
    Interrupted,
    Message,
    Processing,
    TextDelta,
    TrellisEvent,
    Visualization,
)
from trellis_slack.viz.renderer import ChartImage, Rendered, TableMessage, VisualizationNote

log = logging.getLogger(__name__)

Outcome = Literal["answered", "stopped", "failed"]


class TurnHandle(Protocol):
    """One streaming answer, as the Trellis client runs it."""

    chat_id: str | None
    user_message_id: str | None

    @property
    def last_frame_at(self) -> float | None:
        """``time.monotonic()`` when the last frame of this turn arrived."""

    def __aiter__(self) -> AsyncIterator[TrellisEvent]: ...

    async def interrupt(self) -> None: ...


class TurnSource(Protocol):
    """Something that runs turns: ``TrellisClient``, or a small fake in unit tests."""

    def turn(
        self,
        request: SendMessage | EditMessage,
        *,
        identity: str | None = None,
        on_queued: Callable[[], Awaitable[None]] | None = None,
    ) -> AbstractAsyncContextManager[TurnHandle]: ...

    async def delete_message(self, message_id: str, *, identity: str | None = None) -> None: ...


class VisualizationRenderer(Protocol):
    """Turns a ``visualization`` payload into things to post, off the event loop."""

    async def render(
        self, viz_id: str, kind: str, payload: Mapping[str, Any]
    ) -> list[Rendered]: ...


@dataclass(frozen=True, slots=True)
class Ask:
    """One question to answer in one Slack thread."""

    team_id: str
    channel_id: str
    thread_ts: str
    question_ts: str
    user_id: str
    text: str
    owner_id: str = ""
    identity: str | None = None
    #: Re-ask an existing Trellis user message (Retry, or an edit) instead of sending a new one.
    edit_message_id: str | None = None


@dataclass
class ActiveTurn:
    """A turn in progress, so Stop can find it."""

    ask: Ask
    handle: TurnHandle | None = None
    stopped_by: str | None = None
    stop_reason: str | None = None
    #: Stopped by the bot itself (a restart), not by a person: show the reason with Retry.
    stop_offers_retry: bool = False
    #: The final event arrived: too late to stop.
    ending: bool = False
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class Defaults:
    """Where questions go when the thread has no conversation yet."""

    integration_id: str | None = None
    model: str | None = None


class TurnRunner:
    """Runs turns: posts the working message, streams Trellis events into Slack, records it all.

    Choices made here (the docs leave them open):

    * The working message is a thread reply posted before Trellis is even asked, so the user sees a
      sign of work at once; it carries the Stop button and the answer streamed so far.
    * A text-only answer replaces the working message (fewest Slack calls, no flicker). When charts
      or tables were posted below it, the working message is deleted and the answer is posted after
      them, so the thread reads top to bottom: visualizations, then the text that explains them.
    * Visualizations are rendered concurrently but posted strictly in the order Trellis sent them.
    * Errors are answers: the working message becomes the error in plain words, with Retry when
      asking again can help. Anything unexpected is logged with its traceback and still answered.
    """

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
    ) -> None:
        self.metrics = metrics or Metrics()
        self.slack = slack
        self.trellis = trellis
        self.store = store
        self.renderer = renderer
        self.defaults = defaults
        self.update_interval = update_interval
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
        self,
        channel_id: str,
        question_ts: str,
        user_id: str | None,
        *,
        reason: str | None = None,
        offer_retry: bool = False,
    ) -> bool:
        """Interrupt the answer to that question; False if it is not in progress (or already stopping).

        ``user_id`` is who clicked Stop; ``reason`` says why when nobody did (a shutdown).
        """
        active = self.active.get((channel_id, question_ts))
        if active is None or active.ending or active.stop_requested.is_set():
            return False
        active.stopped_by = user_id
        active.stop_reason = reason
        active.stop_offers_retry = offer_retry
        active.stop_requested.set()
        if active.handle is not None:
            await active.handle.interrupt()
        return True

    async def run(self, ask: Ask, *, status_ts: str | None = None) -> Outcome:
        """Answer ``ask`` in its thread; never raises for Trellis or Slack failures."""
        with log_context(channel=ask.channel_id, thread=ask.thread_ts):
            key = (ask.channel_id, ask.question_ts)
            active = ActiveTurn(ask)
            self.active[key] = active
            try:
                return await self._run(ask, active, status_ts)
            finally:
                self.active.pop(key, None)
                active.done.set()

    async def _run(self, ask: Ask, active: ActiveTurn, status_ts: str | None) -> Outcome:
        self.metrics.count_question()
        first = blocks.working("Working on it…", question_ts=ask.question_ts)
        if status_ts is None:
            status_ts = await self.slack.post(ask.channel_id, ask.thread_ts, first)
        else:
            await self.slack.update(ask.channel_id, status_ts, first)
        if status_ts is None:
            log.error("could not post in the thread; is the bot a member of the channel?")
            self.metrics.count_error("slack_post")
            # Never silence: tell the asker, privately, if Slack lets us say anything at all.
            await self.slack.ephemeral(
                ask.channel_id,
                ask.user_id,
                "Sorry, Slack did not let me post in this thread, so your question was not "
                "answered. Please try again in a moment.",
                ask.thread_ts,
            )
            await self.store.update_question(ask.channel_id, ask.question_ts, status="failed")
            return "failed"
        self.metrics.observe_first_sign(time.monotonic() - active.started)
        await self._record(ask, ts=status_ts, kind="status")
        await self.store.update_question(ask.channel_id, ask.question_ts, status="answering")
        live = LiveMessage(self.slack, ask.channel_id, status_ts, interval=self.update_interval)
        posts = _OrderedPoster(self, ask)
        state = _Progress()
        try:
            outcome = await self._stream(ask, active, live, posts, state)
        except TrellisError as exc:
            log.warning("turn failed: %s", exc)
            self.metrics.count_error(exc)
            outcome = "failed"
            state.failure = blocks.explain_error(exc)
            state.retryable = exc.retryable
        except asyncio.CancelledError:
            # Shut down before the answer ended: the working message must not keep a Stop button
            # that no longer works. Finish it (shielded from the cancellation), then go.
            posts.cancel()
            await asyncio.shield(self._abandon(ask, live))
            raise
        except Exception:
            log.exception("turn failed unexpectedly")
            self.metrics.count_error("internal")
            outcome = "failed"
            state.failure = "Something went wrong on my side while answering. Please try again."
            state.retryable = True
        return await self._finish(ask, active, live, posts, state=state, outcome=outcome)

    async def _finish(
        self,
        ask: Ask,
        active: ActiveTurn,
        live: LiveMessage,
        posts: _OrderedPoster,
        *,
        state: _Progress,
        outcome: Outcome,
    ) -> Outcome:
        """Show how the turn ended: the answer, the stop, or the failure; record it."""
        if outcome == "stopped" and active.stop_offers_retry:
            # Stopped by a restart, not by a person: it failed to finish, and Retry can help.
            outcome = "failed"
            state.failure = active.stop_reason or "The answer was stopped."
            state.retryable = True
            posts.cancel()
        self.metrics.count(outcome)
        if outcome == "stopped":
            posts.cancel()
            state.observe(self.metrics)
            await live.finish(blocks.stopped(active.stopped_by, active.stop_reason))
        else:
            if outcome == "answered":
                for held in state.held:
                    posts.add(held)
            await posts.drain()
            if outcome == "answered":
                await self._post_answer(ask, live, state, posted_below=posts.posted)
                if active.stopped_by is not None:
                    # Stop crossed the final answer: Trellis finished it, so it is shown.
                    await self.slack.ephemeral(
                        ask.channel_id,
                        active.stopped_by,
                        "The answer was already complete when you clicked Stop.",
                        ask.thread_ts,
                    )
            else:
                retry = ask.question_ts if state.retryable else None
                state.observe(self.metrics)
                await live.finish(blocks.failure(state.failure, retry_value=retry))
        self.metrics.observe_answer(outcome, time.monotonic() - active.started)
        await self.store.update_question(ask.channel_id, ask.question_ts, status=outcome)
        return outcome

    async def _abandon(self, ask: Ask, live: LiveMessage) -> None:
        await live.finish(
            blocks.failure(
                "I was restarted before I could finish this answer. Click Retry to ask again.",
                retry_value=ask.question_ts,
            )
        )
        await self.store.update_question(ask.channel_id, ask.question_ts, status="failed")

    async def _stream(
        self,
        ask: Ask,
        active: ActiveTurn,
        live: LiveMessage,
        posts: _OrderedPoster,
        state: _Progress,
    ) -> Outcome:
        conversation = await self.store.conversation(
            ask.team_id, ask.channel_id, ask.thread_ts, ask.owner_id
        )
        defaults = self.defaults if conversation else await self._channel_defaults(ask)
        request = self._request(ask, conversation, defaults)

        async def on_queued() -> None:
            live.show(
                blocks.working(
                    "Waiting for a free Trellis connection…", question_ts=ask.question_ts
                )
            )

        manager = self.trellis.turn(request, identity=ask.identity, on_queued=on_queued)
        try:
            turn = await _enter_unless_stopped(manager, active.stop_requested)
        finally:
            # The chat may have been created (REST) before sending failed or was stopped: keep
            # it, so a retry or follow-up continues it instead of opening yet another chat.
            created = getattr(manager, "chat_id", None)
            if isinstance(created, str) and created and conversation is None:
                await self._remember_chat(ask, None, request, ChatMetadata(created, None))
                state.chat_known = True
        if turn is None:
            return "stopped"  # Stop while it waited for a connection: nothing was sent
        async with _entered(manager, turn):
            active.handle = turn
            try:
                if active.stop_requested.is_set():
                    await turn.interrupt()
                async for event in turn:
                    if active.stop_requested.is_set() and isinstance(
                        event, Processing | TextDelta | Visualization
                    ):
                        # Stop was clicked: what is still in flight is not shown. The chat's ids are
                        # still recorded, and a final message that beat the interrupt is kept:
                        # Trellis holds that answer, so Slack shows it, with the charts it
                        # refers to (held back until then).
                        if isinstance(event, Visualization):
                            state.held.append(event)
                        continue
                    if isinstance(event, ChatMetadata):
                        state.chat_known = True
                        await self._remember_chat(ask, conversation, request, event)
                    elif isinstance(event, Processing):
                        state.status = blocks.status_line(event.status)
                        live.show(self._working(ask, state))
                    elif isinstance(event, TextDelta):
                        state.streamed += event.content
                        live.show(self._working(ask, state))
                    elif isinstance(event, Visualization):
                        posts.add(event)
                    elif isinstance(event, Message | Interrupted | ErrorEvent):
                        state.final_frame_at = turn.last_frame_at
                        return self._ending(event, active, state)
            finally:
                if not state.chat_known and turn.chat_id:
                    # Stopped (or failed) before Trellis named the chat: the chat created for
                    # this thread still exists, so follow-ups must continue it.
                    await self._remember_chat(
                        ask, conversation, request, ChatMetadata(turn.chat_id, None)
                    )

        if active.stop_requested.is_set():
            return "stopped"
        raise TrellisError("Trellis ended the answer without a final message.")

    def _ending(
        self, event: Message | Interrupted | ErrorEvent, active: ActiveTurn, state: _Progress
    ) -> Outcome:
        """How a terminal event ends the turn."""
        if isinstance(event, Message):
            active.ending = True
            state.final = event.content
            return "answered"
        if isinstance(event, Interrupted):
            return "stopped"
        self.metrics.count_error(event)
        state.failure = blocks.explain_trellis_message(event.message, event.debug_id, event.code)
        # The seed API sends no `retryable`: offer Retry unless only an admin can help.
        state.retryable = (
            event.retryable
            if event.retryable is not None
            else not blocks.needs_admin(event.message, event.code)
        )
        return "failed"

    async def _channel_defaults(self, ask: Ask) -> Defaults:
        """The channel's ``/trellis`` choices, each falling back to the bot's defaults."""
        chosen = await self.store.channel_settings(ask.team_id, ask.channel_id)
        if chosen is None:
            return self.defaults
        return Defaults(
            chosen.integration_id or self.defaults.integration_id,
            chosen.model or self.defaults.model,
        )

    def _request(
        self, ask: Ask, conversation: Conversation | None, defaults: Defaults
    ) -> SendMessage | EditMessage:
        integration = conversation.integration_id if conversation else defaults.integration_id
        model = conversation.model if conversation else defaults.model
        if ask.edit_message_id is not None:
            return EditMessage(
                message_id=ask.edit_message_id,
                text=ask.text,
                integration_id=integration,
                model=model,
            )
        return SendMessage(
            text=ask.text,
            chat_id=conversation.chat_id if conversation else None,
            integration_id=integration,
            model=model,
            title=None if conversation else _title(ask.text),
        )

    async def _remember_chat(
        self,
        ask: Ask,
        conversation: Conversation | None,
        request: SendMessage | EditMessage,
        event: ChatMetadata,
    ) -> None:
        add_log_context(chat=event.chat_id)
        if conversation is None or conversation.chat_id != event.chat_id:
            await self.store.save_conversation(
                Conversation(
                    team_id=ask.team_id,
                    channel_id=ask.channel_id,
                    thread_ts=ask.thread_ts,
                    owner_id=ask.owner_id,
                    chat_id=event.chat_id,
                    integration_id=request.integration_id,
                    model=request.model,
                )
            )
        if event.user_message_id:
            await self.store.update_question(
                ask.channel_id, ask.question_ts, trellis_message_id=event.user_message_id
            )

    def _working(self, ask: Ask, state: _Progress) -> blocks.Rendered:
        preview = streaming_preview(state.streamed).blocks if state.streamed else ()
        return blocks.working(state.status, question_ts=ask.question_ts, preview=preview)

    async def _post_answer(
        self, ask: Ask, live: LiveMessage, state: _Progress, *, posted_below: bool
    ) -> None:
        pieces = [blocks.Rendered(m.text, m.blocks) for m in answer_messages(state.final)]
        state.observe(self.metrics)
        if posted_below:
            # Charts and tables sit below the working message: answer after them instead.
            await live.finish(None)
            if await self.slack.delete(ask.channel_id, live.ts):
                await self.store.remove_bot_post(ask.channel_id, ts=live.ts)
        else:
            first, pieces = pieces[0], pieces[1:]
            if await live.finish(first) or await self.slack.update(
                ask.channel_id, live.ts, _without_markdown(first)
            ):
                await self._record(ask, ts=live.ts, kind="answer")  # updated in place
            else:
                # The working message cannot become the answer: remove it (its Stop button would
                # linger) and post the answer as new messages instead.
                if await self.slack.delete(ask.channel_id, live.ts):
                    await self.store.remove_bot_post(ask.channel_id, ts=live.ts)
                pieces.insert(0, first)
        for piece in pieces:
            ts = await self.slack.post(ask.channel_id, ask.thread_ts, piece)
            if ts is None:
                ts = await self.slack.post(ask.channel_id, ask.thread_ts, _without_markdown(piece))
            if ts is None:
                log.error("a part of the answer could not be posted")
                self.metrics.count_error("slack_post")
                continue
            await self._record(ask, ts=ts, kind="answer")

    async def _record(
        self, ask: Ask, *, kind: str, ts: str | None = None, file_id: str | None = None
    ) -> None:
        await self.store.add_bot_post(
            BotPost(
                channel_id=ask.channel_id,
                question_ts=ask.question_ts,
                ts=ts,
                file_id=file_id,
                kind=kind,
            )
        )


async def _enter_unless_stopped(
    manager: AbstractAsyncContextManager[TurnHandle], stop: asyncio.Event
) -> TurnHandle | None:
    """Enter the turn (which may wait for a free connection) unless Stop is clicked first.

    None when Stop won: the question was never sent, so there is nothing to interrupt.
    """
    entering = asyncio.ensure_future(manager.__aenter__())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({entering, stopping}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        entering.cancel()
        raise
    finally:
        stopping.cancel()
    if not entering.done():
        entering.cancel()
    try:
        return await entering  # it may have got in just before the cancel: then it is used
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # we are being cancelled ourselves, not just the entering
        return None


@asynccontextmanager
async def _entered(
    manager: AbstractAsyncContextManager[TurnHandle], turn: TurnHandle
) -> AsyncIterator[TurnHandle]:
    """``async with`` for a context manager that was already entered."""
    try:
        yield turn
    except BaseException as exc:
        if not await manager.__aexit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        await manager.__aexit__(None, None, None)


def _without_markdown(piece: blocks.Rendered) -> blocks.Rendered:
    """The same answer text as plain mrkdwn sections, for when Slack refuses a markdown block.

    Slack's markdown block is newer than its sections; should a workspace or a piece of Markdown
    make Slack refuse it, the reader gets the raw text rather than nothing: never a lost answer.
    """
    markdown = "\n\n".join(
        str(block.get("text", "")) for block in piece.blocks if block.get("type") == "markdown"
    )
    others = tuple(block for block in piece.blocks if block.get("type") != "markdown")
    return blocks.Rendered(piece.text, (*mrkdwn_section(escape_mrkdwn(markdown)), *others))


def _title(text: str) -> str:
    """A chat title from the question: its first line, at most 80 characters."""
    line = text.strip().splitlines()[0] if text.strip() else "Slack question"
    return line if len(line) <= 80 else line[:79] + "…"


@dataclass
class _Progress:
    """What a turn has shown so far."""

    status: str = "Working on it…"
    streamed: str = ""
    final: str = ""
    failure: str = ""
    retryable: bool = True
    final_frame_at: float | None = None
    chat_known: bool = False
    #: Visualizations that arrived after Stop: shown only if the answer finishes anyway.
    held: list[Visualization] = field(default_factory=list)

    def observe(self, metrics: Metrics) -> None:
        """Record how long the final frame took to become a Slack call (issued right after this)."""
        if self.final_frame_at is not None:
            metrics.observe_overhead(time.monotonic() - self.final_frame_at)


class _OrderedPoster:
    """Renders visualizations concurrently, posts them into the thread in arrival order.

    The same visualization id twice is shown once.
    """

    def __init__(self, runner: TurnRunner, ask: Ask) -> None:
        self.runner = runner
        self.ask = ask
        self.posted = False
        self._seen: set[str] = set()
        self._previous: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, viz: Visualization) -> None:
        if viz.viz_id in self._seen:
            log.info("visualization %s arrived twice; shown once", viz.viz_id)
            return
        self._seen.add(viz.viz_id)
        rendering = asyncio.create_task(
            self.runner.renderer.render(viz.viz_id, viz.kind, viz.payload)
        )
        task = asyncio.create_task(self._post_after(self._previous, rendering))
        self._previous = task
        self._tasks.append(task)

    async def _post_after(
        self, previous: asyncio.Task[None] | None, rendering: asyncio.Task[list[Rendered]]
    ) -> None:
        items = await rendering
        if previous is not None:
            await asyncio.wait([previous])
        for item in items:
            try:
                await self._post(item)
            except Exception:
                log.exception("a visualization could not be posted")

    async def _post(self, item: Rendered) -> None:
        ask, slack, runner = self.ask, self.runner.slack, self.runner
        if isinstance(item, ChartImage):
            file_id = await slack.upload(
                ask.channel_id,
                ask.thread_ts,
                content=item.png,
                filename=item.filename,
                title=item.title,
                alt_text=item.alt_text,
                comment=item.note,
            )
            if file_id:
                self.posted = True
                await runner._record(ask, kind="chart", file_id=file_id)
        elif isinstance(item, TableMessage):
            ts = await slack.post(
                ask.channel_id, ask.thread_ts, blocks.Rendered(item.text, item.blocks)
            )
            if ts:
                self.posted = True
                await runner._record(ask, kind="table", ts=ts)
            if item.csv is not None and item.csv_filename:
                file_id = await slack.upload(
                    ask.channel_id,
                    ask.thread_ts,
                    content=item.csv,
                    filename=item.csv_filename,
                    title=f"{item.title} (full table)",
                )
                if file_id:
                    await runner._record(ask, kind="file", file_id=file_id)
        elif isinstance(item, VisualizationNote):
            ts = await slack.post(ask.channel_id, ask.thread_ts, blocks.note(item.text))
            if ts:
                self.posted = True
                await runner._record(ask, kind="note", ts=ts)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks)

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
