"""What a turn answers: one question in its thread, who asks it, and where its answer goes."""

from __future__ import annotations

from dataclasses import dataclass

from trellis_slack.settings import PrivateAnswers
from trellis_slack.slack import blocks
from trellis_slack.store.records import QuestionRecord

__all__ = ["Ask", "Defaults"]


@dataclass(frozen=True, slots=True)
class Ask:
    """One question to answer in its Slack thread: its record, and who asks and how."""

    question: QuestionRecord
    team_id: str
    #: The asker's e-mail in per-user mode (their own Trellis identity); None: the shared token.
    identity: str | None = None
    #: Re-ask the question Trellis already holds (an edit, or Retry) instead of sending it anew.
    reask: bool = False
    #: Where the answer goes (`private`): in the thread ("off"), only to the asker, or their DM.
    private: PrivateAnswers = "off"

    @property
    def button_value(self) -> str:
        """What the answer's buttons carry: the question's ts, with its channel when in a DM."""
        if self.private == "dm":
            return blocks.question_ref(self.channel_id, self.question_ts)
        return self.question_ts

    @property
    def channel_id(self) -> str:
        return self.question.channel_id

    @property
    def thread_ts(self) -> str:
        return self.question.thread_ts

    @property
    def question_ts(self) -> str:
        return self.question.ts


@dataclass(frozen=True, slots=True)
class Defaults:
    """Where questions go when the thread has no conversation yet."""

    integration_id: str | None = None
    model: str | None = None
