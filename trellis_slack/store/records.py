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
    #: The replica that received the question and answers it ("" before replicas were named).
    handler: str = ""

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


@dataclass(frozen=True, slots=True)
class Command:
    """A request for the replica that owns a turn (Stop, an edit, a deletion...), sent by another.

    ``kind`` says what to do and is the glue's to define; ``channel_id`` and ``ts`` name the
    question (or message) it is about, ``user_id`` who asked for it, ``payload`` anything else
    (text or JSON, the glue's choice).
    """

    kind: str
    channel_id: str
    ts: str
    user_id: str = ""
    payload: str = ""


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """How the store is doing, for ``/healthz`` and ``/metrics``; `Store.health` never raises."""

    #: "sqlite" or "postgresql".
    backend: str
    #: Whether a trivial query just worked.
    reachable: bool
    #: How long that query took, in milliseconds (None when it failed).
    latency_ms: float | None
    #: Open connections in the pool and those lent out now (None where there is no pool).
    pool_size: int | None = None
    pool_in_use: int | None = None
    #: Thread claims (answer leases) and Trellis slots held by live replicas, and those replicas.
    turns_held: int = 0
    slots_held: int = 0
    replicas_live: int = 0
    #: Why it is unreachable, without secrets ("" when reachable).
    error: str = ""


#: The window `rate_wait` counts uses in, in seconds.
RATE_WINDOW = 60.0


def rate_wait(reserved: list[float], now: float, per_minute: int) -> float:
    """When the next use may happen so that no 60 s window holds more than ``per_minute`` uses.

    ``reserved``: the times of the uses already reserved (past ones within the window, and
    future ones handed out to waiting callers), oldest first. Returns a time >= ``now``.
    """
    if per_minute < 1:
        raise ValueError("per_minute must be at least 1")
    recent = [t for t in reserved if t > now - RATE_WINDOW]
    if len(recent) < per_minute:
        return now
    return max(now, recent[len(recent) - per_minute] + RATE_WINDOW)


def ts_order(ts: str) -> tuple[int, Decimal, str]:
    """Sort key putting Slack timestamps in numeric order; anything unparsable goes last."""
    try:
        number = Decimal(ts)
    except InvalidOperation:
        return (1, Decimal(0), ts)
    if not number.is_finite():
        return (1, Decimal(0), ts)
    return (0, number, ts)
