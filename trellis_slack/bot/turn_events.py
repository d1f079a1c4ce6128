"""The events an answer in progress reacts to, and the effects `lifecycle.step` asks for."""

from __future__ import annotations

from dataclasses import dataclass

from trellis_slack.bot.lifecycle_status import Status
from trellis_slack.trellis.protocol import ChatMetadata, ToolEvent, TrellisEvent, Visualization

# Events


@dataclass(frozen=True, slots=True)
class StopClicked:
    """Someone clicked Stop (or Slack sent its own stop signal)."""

    user_id: str


@dataclass(frozen=True, slots=True)
class StopFor:
    """The bot stops the answer itself: the question was edited or deleted, or a shutdown."""

    reason: str
    offers_retry: bool = False


@dataclass(frozen=True, slots=True)
class Connected:
    """The question was sent to Trellis on a connection: from now on it can be interrupted."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One event from Trellis for this turn."""

    event: TrellisEvent


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """Trellis's stream ended without a final frame (or Stop won before anything was sent)."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The turn failed: Trellis unreachable, a time-out, a frame it could not read, a bug."""

    message: str
    retryable: bool


TurnEvent = StopClicked | StopFor | Connected | Frame | StreamEnded | Failed


# Effects


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Ask Trellis to stop generating."""


@dataclass(frozen=True, slots=True)
class ShowProgress:
    """Show the turn's status line and the text streamed so far."""

    status_line: str | None
    streamed: str


@dataclass(frozen=True, slots=True)
class ShowVisualization:
    """Render and post a chart or table (in the order they arrived)."""

    viz: Visualization


@dataclass(frozen=True, slots=True)
class ShowStep:
    """Keep one of Trellis's steps (a tool event) for "Show steps"; ``show`` it as a task card."""

    event: ToolEvent
    show: bool = True


@dataclass(frozen=True, slots=True)
class RememberChat:
    """Record the Trellis chat (and the question's Trellis id) for follow-ups, edits, deletions."""

    metadata: ChatMetadata


@dataclass(frozen=True, slots=True)
class ShowAnswer:
    """Show the final answer (after ``held``, the charts that arrived after a Stop)."""

    content: str
    held: tuple[Visualization, ...] = ()
    #: Trellis's id of the answer (its assistant message): what feedback on it is sent to.
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class ShowStopped:
    """Say the answer was stopped, and by whom or why; ``retry``: offer to ask it again."""

    by: str | None
    reason: str | None
    retry: bool = False


@dataclass(frozen=True, slots=True)
class ShowFailure:
    """Say, in plain words, why there is no answer; with Retry when asking again can help."""

    message: str
    retry: bool


@dataclass(frozen=True, slots=True)
class Tell:
    """Tell one person something only they see."""

    user_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Finish:
    """Record how the question ended."""

    status: Status


Effect = (
    Interrupt
    | ShowProgress
    | ShowVisualization
    | ShowStep
    | RememberChat
    | ShowAnswer
    | ShowStopped
    | ShowFailure
    | Tell
    | Finish
)
