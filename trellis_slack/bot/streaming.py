"""One turn's stream: Trellis events fed to the state machine, their effects shown as they come."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from trellis_slack.bot import attachments, lifecycle
from trellis_slack.bot.chats import CHAT_QUEUED, OPEN_CHAT_CAP
from trellis_slack.bot.posting import VisualPoster
from trellis_slack.bot.seams import TurnHandle
from trellis_slack.bot.steps import StepLog, card_title
from trellis_slack.bot.storing import best_effort
from trellis_slack.bot.views import StreamedView
from trellis_slack.errors import TrellisAPIError
from trellis_slack.slack import blocks
from trellis_slack.slack.events import SlackFile
from trellis_slack.store.records import Conversation, PostKind
from trellis_slack.trellis.client import EditMessage, SendMessage
from trellis_slack.trellis.protocol import ChatMetadata, ErrorEvent

#: What the thread says when Trellis did not take a question's files.
FILES_NOT_TAKEN = "Trellis did not take the files of this question"
#: What a question waiting for a free Trellis socket shows meanwhile.
WAITING_FOR_CONNECTION = "Waiting for a free Trellis connection…"

if TYPE_CHECKING:
    from trellis_slack.bot.asks import Ask, Defaults
    from trellis_slack.bot.turn import ActiveTurn, TurnRunner
    from trellis_slack.bot.views import AnswerView


def request_for(
    ask: Ask, conversation: Conversation | None, defaults: Defaults
) -> SendMessage | EditMessage:
    """What to send Trellis: a new message in the thread's chat (or a new chat), or an edit."""
    integration = conversation.integration_id if conversation else defaults.integration_id
    model = conversation.model if conversation else defaults.model
    if ask.reask and ask.question.trellis_message_id is not None:
        return EditMessage(
            message_id=ask.question.trellis_message_id,
            text=ask.question.text,
            integration_id=integration,
            model=model,
            include_tool_events=True,
        )
    return SendMessage(
        text=ask.question.text,
        chat_id=conversation.chat_id if conversation else None,
        integration_id=integration,
        model=model,
        title=None if conversation else _title(ask.question.text),
        include_tool_events=True,
    )


def _title(text: str) -> str:
    """A chat title from the question: its first line, at most 80 characters."""
    line = text.strip().splitlines()[0] if text.strip() else "Slack question"
    return line if len(line) <= 80 else line[:79] + "…"


class Streaming:
    """One turn's stream: Trellis events fed to the state machine, their effects shown live."""

    def __init__(
        self, runner: TurnRunner, active: ActiveTurn, view: AnswerView, visuals: VisualPoster
    ) -> None:
        self.runner = runner
        self.active = active
        self.view = view
        self.visuals = visuals
        self.final_frame_at: float | None = None
        self.chat_known = False
        #: The state machine was told the request went out (once, however many tries).
        self.connected = False
        #: The steps Trellis took (its tool events), kept with the answer for "Show steps".
        self.steps = StepLog()

    async def run(self) -> tuple[lifecycle.Effect, ...]:
        """Stream the turn; returns the effects that end it.

        A thread whose chat was retired (`bot.chats`) starts a fresh chat. When Trellis refuses
        to create a chat for the open-chat cap, the least recently used chats of the asker's
        identity are retired and the turn is asked once more.
        """
        ask, runner = self.active.ask, self.runner
        conversation = await runner.store.conversation(
            ask.team_id, ask.channel_id, ask.thread_ts, ask.question.owner_id
        )
        defaults = (
            runner.defaults
            if conversation
            else await runner.channel_defaults(ask.team_id, ask.channel_id)
        )
        request = request_for(ask, conversation, defaults)
        if conversation is not None and await runner.store.conversation_retired(
            ask.team_id, ask.channel_id, ask.thread_ts, ask.question.owner_id
        ):
            # Trellis no longer has the thread's chat: a fresh one, with the thread's choices.
            request = SendMessage(
                text=ask.question.text,
                integration_id=conversation.integration_id,
                model=conversation.model,
                title=_title(ask.question.text),
                include_tool_events=True,
            )
            conversation = None
        files = await runner.attachments.of(ask.channel_id, ask.question_ts)
        if files and isinstance(request, SendMessage):
            request = await self._with_files(request, files)
        try:
            return await self._attempt(request, conversation)
        except _CapRefused as refused:
            busy = {
                other.handle.chat_id
                for other in runner.active.values()
                if other.handle is not None and other.handle.chat_id
            }
            if not await runner.chats.make_room(ask.question.owner_id, ask.identity, busy=busy):
                raise refused.error from None
        try:
            return await self._attempt(request, conversation)
        except _CapRefused as refused:
            raise refused.error from None

    async def _with_files(self, request: SendMessage, files: tuple[SlackFile, ...]) -> SendMessage:
        """The request with the files Trellis can take, downloaded; one line for those it cannot."""
        downloaded, refused = await attachments.fetch(self.runner.slack, attachments.plan(files))
        line = attachments.refusal_line(refused, sent_any=bool(downloaded))
        if line is not None:
            await self._note(line)
        return replace(request, files=downloaded)

    async def _note(self, line: str) -> None:
        """One short line where the answer goes about the question's files; recorded with the
        answer's posts, so an edit, a deletion or Retry removes it with them."""
        await self.visuals.poster.post(blocks.note(line, emoji=":paperclip:"), PostKind.NOTE)

    async def _attempt(
        self, request: SendMessage | EditMessage, conversation: Conversation | None
    ) -> tuple[lifecycle.Effect, ...]:
        """One try at the turn; raises `_CapRefused` when Trellis refused a new chat for the cap."""
        ask, runner, active = self.active.ask, self.runner, self.active

        async def on_queued() -> None:
            waits_for_chat = getattr(manager, "waiting_for", None) == "chat"
            self.view.waiting(CHAT_QUEUED if waits_for_chat else WAITING_FOR_CONNECTION)

        manager = runner.trellis.turn(request, identity=ask.identity, on_queued=on_queued)
        try:
            turn = await _enter_unless_stopped(manager, active.stop_requested)
        except TrellisAPIError as exc:
            if _refused_for_cap(exc.code, request):
                raise _CapRefused(exc) from exc
            raise
        finally:
            # The chat may have been created (REST) before sending failed or was stopped: keep
            # it, so a retry or follow-up continues it instead of opening yet another chat.
            created = manager.chat_id
            if created and conversation is None:
                await runner.remember_chat(ask, None, request, ChatMetadata(created, None))
                self.chat_known = True
        refused_files = getattr(manager, "files_refused", None)
        if isinstance(refused_files, str):
            await self._note(f"{FILES_NOT_TAKEN} ({refused_files}), so I asked without them.")
        if turn is None:
            # Stop while it waited for a connection: nothing was sent.
            return active.feed(lifecycle.StreamEnded())
        async with _entered(manager, turn):
            active.handle = turn
            try:
                if not self.connected:
                    self.connected = True
                    await runner.perform_now(active, active.feed(lifecycle.Connected()))
                async for event in turn:
                    if isinstance(event, ErrorEvent):
                        if not self.chat_known and _refused_for_cap(event.code, request):
                            # A chat started by its first message (v-seed) was refused.
                            raise _CapRefused(_api_error(event))
                        runner.metrics.count_error(event)
                    effects = active.feed(lifecycle.Frame(event))
                    if active.state.phase is lifecycle.Phase.ENDED:
                        self.final_frame_at = turn.last_frame_at
                        saved = runner.store.save_steps(
                            ask.channel_id, ask.question.ts, self.steps.steps
                        )
                        await best_effort(saved, "the answer's steps", None)
                        return await self._show(effects, conversation, request, ending=True)
                    await self._show(effects, conversation, request, ending=False)
            finally:
                if not self.chat_known and turn.chat_id:
                    # Stopped (or failed) before Trellis named the chat: the chat created for
                    # this thread still exists, so follow-ups must continue it.
                    await runner.remember_chat(
                        ask, conversation, request, ChatMetadata(turn.chat_id, None)
                    )
        return active.feed(lifecycle.StreamEnded())

    async def _show(
        self,
        effects: tuple[lifecycle.Effect, ...],
        conversation: Conversation | None,
        request: SendMessage | EditMessage,
        *,
        ending: bool,
    ) -> tuple[lifecycle.Effect, ...]:
        """Perform the effects that happen while streaming; return the rest (the ending)."""
        rest: list[lifecycle.Effect] = []
        ask = self.active.ask
        for effect in effects:
            if isinstance(effect, lifecycle.RememberChat):
                self.chat_known = True
                await self.runner.remember_chat(ask, conversation, request, effect.metadata)
            elif isinstance(effect, lifecycle.ShowProgress):
                self.view.progress(effect.status_line, effect.streamed)
            elif isinstance(effect, lifecycle.ShowVisualization):
                self.visuals.add(effect.viz)
            elif isinstance(effect, lifecycle.ShowStep):
                self._step(effect)
            elif ending:
                rest.append(effect)
            else:
                await self.runner.perform_now(self.active, (effect,))
        return tuple(rest)

    def _step(self, effect: lifecycle.ShowStep) -> None:
        """Keep a step for "Show steps"; with native streaming each tool call is a task card."""
        step = self.steps.add(effect.event)
        if step is None or not effect.show or effect.event.name != "tool_call":
            return
        if isinstance(self.view, StreamedView) and not self.view.stream.dead:
            self.view.waiting(card_title(step))


class _CapRefused(Exception):
    """Trellis refused to create a chat for the open-chat cap (``error`` is its refusal)."""

    def __init__(self, error: TrellisAPIError) -> None:
        super().__init__(str(error))
        self.error = error


def _refused_for_cap(code: str | None, request: SendMessage | EditMessage) -> bool:
    """Whether a refusal is the open-chat cap's, for a request that needed a new chat."""
    return code == OPEN_CHAT_CAP and isinstance(request, SendMessage) and request.chat_id is None


def _api_error(event: ErrorEvent) -> TrellisAPIError:
    return TrellisAPIError(
        event.message, code=event.code, retryable=event.retryable, debug_id=event.debug_id
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
