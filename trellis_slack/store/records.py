"""What the store keeps: frozen records of conversations, questions, bot posts and settings."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from trellis_slack.bot.lifecycle_status import Status


class PostKind(enum.StrEnum):
    """Every kind of message or file the bot posts for a question."""

    #: The working (or waiting) message, with Stop; becomes the answer or the failure.
    STATUS = "status"
    ANSWER = "answer"
    CHART = "chart"
    TABLE = "table"
    FILE = "file"
    NOTE = "note"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Conversation:
    """The Trellis chat that answers one Slack thread (for one asker, in per-user mode)."""

    team_id: str
    channel_id: str
    thread_ts: str
    #: "" when every Slack user shares one Trellis identity; the asker's user id in per-user mode.
    owner_id: str
    chat_id: str
    integration_id: str | None
    model: str | None


@dataclass(frozen=True, slots=True)
class QuestionRecord:
    """A Slack message the bot took as a question, and how far answering it got."""

    channel_id: str
    ts: str
    thread_ts: str
    user_id: str
    text: str
    trellis_message_id: str | None
    status: Status
    owner_id: str = ""

    def __post_init__(self) -> None:
        # A string from an older caller or the database becomes the enum; an unknown one fails.
        object.__setattr__(self, "status", Status(self.status))


@dataclass(frozen=True, slots=True)
class BotPost:
    """A message (``ts``) or file (``file_id``) the bot posted while answering a question."""

    channel_id: str
    question_ts: str
    ts: str | None
    file_id: str | None
    kind: PostKind

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", PostKind(self.kind))
        except ValueError:
            raise ValueError(f"unknown bot post kind {self.kind!r}") from None
        if self.ts is None and self.file_id is None:
            raise ValueError("a bot post needs a message ts or a file id")


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """Per-channel choices of Trellis integration and model (None means the app's default)."""

    team_id: str
    channel_id: str
    integration_id: str | None
    model: str | None


class Receipt(enum.Enum):
    """What recording an arriving question found."""

    #: First delivery: recorded as ``received``; the caller now owns answering it.
    NEW = "new"
    #: Slack delivered it before (another event for the same message, a retry, a restart).
    DUPLICATE = "duplicate"
    #: A plain reply in a thread where the bot took no question: not for the bot.
    NOT_OURS = "not ours"


def ts_order(ts: str) -> tuple[int, Decimal, str]:
    """Sort key putting Slack timestamps in numeric order; anything unparsable goes last."""
    try:
        number = Decimal(ts)
    except InvalidOperation:
        return (1, Decimal(0), ts)
    if not number.is_finite():
        return (1, Decimal(0), ts)
    return (0, number, ts)
