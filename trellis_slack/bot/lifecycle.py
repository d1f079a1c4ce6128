"""A question's life as a state machine: its statuses, their transitions, and pure decisions.

Like python-websockets' protocol objects, nothing here does I/O: the glue (``bot/turn.py``,
``bot/bridge.py``, ``bot/changes.py``) feeds events in and performs the effects that come out, and
the store (which holds the status) refuses a change of status that `TRANSITIONS` does not allow.

Two levels:

* **A question** (`Status`): recorded the moment it arrives (``received``), accepted for Trellis
  (``queued``) or not (``declined``), answered once its thread is free (``answering``), and ended
  (``answered``, ``failed``, ``stopped``); an edit or Retry asks it again (``queued``); a deletion,
  or an edit or deletion of an earlier question, ends it for good in Trellis (``deleted``,
  ``dropped``). `decide_edit`, `decide_deletion` and `may_retry` say what a change means.
* **An answer in progress** (`Turn`): `step` takes the turn and one event (a Trellis frame, a Stop
  click, a stop for an edit, deletion or shutdown, the connection, the end of the stream, a
  failure such as a time-out) and returns the new turn and the effects to perform.

Choices the docs leave open, made here for the user's sake:

* A final answer that beats Stop is shown (Trellis keeps it in the chat, so Slack must too), with
  the charts that arrived after the click, and the clicker is told privately.
* After Stop, progress and streamed text are no longer shown; charts are held back, shown only if
  the final answer arrives anyway.
* A stop by the bot itself (a shutdown) ends as ``failed`` with Retry, not as ``stopped``: nobody
  chose to stop it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from trellis_slack.bot.lifecycle_status import (
    ENDED,
    GONE,
    PREDECESSORS,
    TRANSITIONS,
    UNFINISHED,
    S,
    Status,
    may_change,
)
from trellis_slack.bot.turn_events import (
    Connected,
    Effect,
    Failed,
    Finish,
    Frame,
    Interrupt,
    RememberChat,
    ShowAnswer,
    ShowFailure,
    ShowProgress,
    ShowStep,
    ShowStopped,
    ShowVisualization,
    StopClicked,
    StopFor,
    StreamEnded,
    Tell,
    TurnEvent,
)
from trellis_slack.slack import blocks
from trellis_slack.trellis.protocol import (
    ChatMetadata,
    ErrorEvent,
    Interrupted,
    Message,
    Processing,
    TextDelta,
    ToolEvent,
    TrellisEvent,
    Visualization,
)

__all__ = [
    "ALREADY_COMPLETE",
    "ALREADY_OVER",
    "ENDED",
    "GONE",
    "NO_FINAL",
    "PREDECESSORS",
    "TRANSITIONS",
    "UNFINISHED",
    "Connected",
    "DeletionDecision",
    "EditDecision",
    "Effect",
    "Failed",
    "Finish",
    "Frame",
    "Interrupt",
    "Phase",
    "RememberChat",
    "ShowAnswer",
    "ShowFailure",
    "ShowProgress",
    "ShowStep",
    "ShowStopped",
    "ShowVisualization",
    "Status",
    "StopClicked",
    "StopFor",
    "StopRequest",
    "StreamEnded",
    "Tell",
    "Turn",
    "TurnEvent",
    "decide_deletion",
    "decide_edit",
    "may_change",
    "may_retry",
    "step",
]

# --- what an edit, a deletion or Retry means -------------------------------------------------


class EditDecision(enum.Enum):
    """What to do when a human edits a message."""

    IGNORE = "ignore"
    #: A message the bot never answered (or no longer has) now asks it something.
    NEW_QUESTION = "new question"
    #: Not asked yet: it will be asked as edited, when its turn comes.
    UPDATE_TEXT = "update text"
    #: Trellis re-answers it; everything after it in the conversation is dropped.
    REASK = "reask"


def decide_edit(
    status: Status | None, *, asked: bool, mentioned: bool, changed: bool
) -> EditDecision:
    """An edit of the message whose question has ``status`` (None: the bot never took it).

    ``asked``: Trellis already has the question; ``mentioned``: the edited text mentions the bot;
    ``changed``: the question's text (mention removed) differs from what was asked.
    """
    if status is None or status in (S.DELETED, S.DECLINED):
        return EditDecision.NEW_QUESTION if mentioned else EditDecision.IGNORE
    if status is S.DROPPED:
        return EditDecision.NEW_QUESTION
    if not changed:
        return EditDecision.IGNORE
    if status in (S.RECEIVED, S.QUEUED) and not asked:
        return EditDecision.UPDATE_TEXT
    return EditDecision.REASK


class DeletionDecision(enum.Enum):
    """What to do when a human deletes a message."""

    IGNORE = "ignore"
    #: Never reached Trellis: mark it so it is never asked.
    FORGET = "forget"
    #: Stop its answer and later ones, delete it in Trellis, then remove the answers.
    DELETE = "delete"


def decide_deletion(status: Status | None, *, asked: bool) -> DeletionDecision:
    """A deletion of the message whose question has ``status`` (None: the bot never took it)."""
    if status is None or status in GONE:
        return DeletionDecision.IGNORE
    if status in (S.RECEIVED, S.QUEUED) and not asked:
        return DeletionDecision.FORGET
    return DeletionDecision.DELETE


def may_retry(status: Status | None, *, answering: bool, first_click: bool) -> bool:
    """Retry asks again a failed or stopped question, once per click, never while it is answered."""
    return first_click and status in (S.FAILED, S.STOPPED) and not answering


# --- an answer in progress -------------------------------------------------------------------


class Phase(enum.Enum):
    """How far an answer in progress got."""

    #: Waiting for a free Trellis connection: nothing was sent yet.
    CONNECTING = "connecting"
    STREAMING = "streaming"
    #: The final answer arrived: too late to stop.
    ENDING = "ending"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class StopRequest:
    """Why an answer is being stopped."""

    #: Who clicked Stop; None when the bot stopped it (an edit, a deletion, a shutdown).
    by: str | None = None
    reason: str | None = None
    #: Stopped by a restart, not by a person: it ends as a failure with Retry.
    offers_retry: bool = False


@dataclass(frozen=True, slots=True)
class Turn:
    """The state of one answer in progress."""

    phase: Phase = Phase.CONNECTING
    stop: StopRequest | None = None
    #: Visualizations that arrived after Stop: shown only if the answer finishes anyway.
    held: tuple[Visualization, ...] = ()
    status_line: str | None = None
    streamed: str = ""

    @property
    def stoppable(self) -> bool:
        """Whether a Stop now would still change anything."""
        return self.stop is None and self.phase in (Phase.CONNECTING, Phase.STREAMING)


#: What the clicker of a Stop that changes nothing is told.
ALREADY_OVER = "That answer has already finished or is being stopped."
#: What the clicker of a Stop that crossed the final answer is told.
ALREADY_COMPLETE = "The answer was already complete when you clicked Stop."
#: A stream that ended with no final frame and no Stop.
NO_FINAL = "Trellis ended the answer without a final message."


def step(turn: Turn, event: TurnEvent) -> tuple[Turn, tuple[Effect, ...]]:
    """The turn after ``event``, and what to do about it. Pure: no I/O, no clock."""
    if turn.phase is Phase.ENDED:
        if isinstance(event, StopClicked):
            return turn, (Tell(event.user_id, ALREADY_OVER),)
        return turn, ()
    if isinstance(event, StopClicked | StopFor):
        return _stop(turn, event)
    if isinstance(event, Connected):
        connected = replace(turn, phase=Phase.STREAMING)
        # A Stop that came while it waited for a connection interrupts as soon as it is sent.
        return connected, ((Interrupt(),) if turn.stop is not None else ())
    if isinstance(event, Frame):
        return _frame(turn, event.event)
    if isinstance(event, StreamEnded):
        if turn.stop is not None:
            return _stopped(turn)
        return _failed(turn, NO_FINAL, retry=True)
    return _failed(turn, event.message, retry=event.retryable)


def _stop(turn: Turn, event: StopClicked | StopFor) -> tuple[Turn, tuple[Effect, ...]]:
    if not turn.stoppable:
        if isinstance(event, StopClicked):
            return turn, (Tell(event.user_id, ALREADY_OVER),)
        return turn, ()
    if isinstance(event, StopClicked):
        request = StopRequest(by=event.user_id)
    else:
        request = StopRequest(reason=event.reason, offers_retry=event.offers_retry)
    stopping = replace(turn, stop=request)
    # Nothing was sent yet while it waits for a connection: it is interrupted once sent.
    return stopping, ((Interrupt(),) if turn.phase is Phase.STREAMING else ())


def _frame(turn: Turn, event: TrellisEvent) -> tuple[Turn, tuple[Effect, ...]]:
    if isinstance(event, ChatMetadata):
        return turn, (RememberChat(event),)
    if isinstance(event, Processing | TextDelta | Visualization):
        if turn.stop is not None:
            # Stop was clicked: what is still in flight is not shown, but a chart is kept in
            # case the final answer beats the interrupt.
            if isinstance(event, Visualization):
                return replace(turn, held=(*turn.held, event)), ()
            return turn, ()
        if isinstance(event, Visualization):
            return turn, (ShowVisualization(event),)
        if isinstance(event, Processing):
            turn = replace(turn, status_line=event.status)
        else:
            turn = replace(turn, streamed=turn.streamed + event.content)
        return turn, (ShowProgress(turn.status_line, turn.streamed),)
    if isinstance(event, ToolEvent):
        # Kept for "Show steps" even after a Stop (the answer may still beat the interrupt).
        return turn, (ShowStep(event, show=turn.stop is None),)
    if isinstance(event, Message):
        ended = replace(turn, phase=Phase.ENDED, held=())
        effects: list[Effect] = [
            ShowAnswer(event.content, turn.held, event.message_id),
            Finish(S.ANSWERED),
        ]
        if turn.stop is not None and turn.stop.by is not None:
            effects.append(Tell(turn.stop.by, ALREADY_COMPLETE))
        return ended, tuple(effects)
    if isinstance(event, Interrupted):
        return _stopped(turn)
    if isinstance(event, ErrorEvent):
        # The seed API sends no `retryable`: offer Retry unless only an admin can help.
        retryable = (
            event.retryable
            if event.retryable is not None
            else not blocks.needs_admin(event.message, event.code)
        )
        message = blocks.explain_trellis_message(event.message, event.debug_id, event.code)
        return _failed(turn, message, retry=retryable)
    return turn, ()


def _stopped(turn: Turn) -> tuple[Turn, tuple[Effect, ...]]:
    stop = turn.stop or StopRequest()
    ended = replace(turn, phase=Phase.ENDED, held=())
    if stop.offers_retry:
        # Stopped by a restart, not by a person: it failed to finish, and Retry can help.
        message = stop.reason or "The answer was stopped."
        return ended, (ShowFailure(message, retry=True), Finish(S.FAILED))
    # Stopped by a person: Retry asks it again without retyping. Stopped by the bot (the question
    # was edited or deleted): the change itself says what comes next, so no Retry.
    return ended, (ShowStopped(stop.by, stop.reason, retry=stop.by is not None), Finish(S.STOPPED))


def _failed(turn: Turn, message: str, *, retry: bool) -> tuple[Turn, tuple[Effect, ...]]:
    ended = replace(turn, phase=Phase.ENDED, held=())
    return ended, (ShowFailure(message, retry=retry), Finish(S.FAILED))
