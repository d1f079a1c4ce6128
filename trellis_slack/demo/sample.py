"""The demo's scripted analyst: Trellis's steps answering questions about the sample data."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

from trellis_slack.demo.answers import match_topic
from trellis_slack.demo.files import file_answer, steps_for
from trellis_slack.fakes.trellis_script import Question, Step, split_pieces

__all__ = ["SampleAnalyst"]

#: Seconds each kind of step takes at ``pace=1`` (a realistic Trellis answer takes a few seconds).
_DELAYS: Final = {
    "starting": 0.2,
    "thinking": 0.7,
    "querying": 1.0,
    "analyzing": 0.8,
    "visualization": 0.5,
    "delta": 0.25,
    "message": 0.2,
    "slow": 3.0,
}


class SampleAnalyst:
    """Answers questions about the sample data as Trellis would, one ``Step`` at a time.

    Every answer shows ``processing`` statuses, then its chart or table, then streams its text
    (``text_delta``) and ends with the ``message``. ``pace`` scales every delay (1 is realistic:
    a few seconds an answer, about 20 s for the forecast; 0 answers at once). The forecast is
    the slow question to try Stop on; with ``hold`` set it also waits for that event, so a
    test can click Stop while it is certainly still running. The question about the "flaky
    replica" fails with a retryable error when first asked, to try Retry on: asked again (Retry
    re-sends it as an edit) it is answered.
    """

    def __init__(self, *, pace: float = 1.0, hold: asyncio.Event | None = None) -> None:
        if pace < 0:
            raise ValueError("pace must be 0 or more")
        self.pace = pace
        self.hold = hold

    def _delay(self, kind: str) -> float:
        return _DELAYS[kind] * self.pace

    def __call__(self, question: Question) -> Sequence[Step]:
        """The steps answering ``question``."""
        topic, make = match_topic(question.text)
        # A question with a file is about the file (`files.file_answer`).
        answer = file_answer(question.files) if question.files else make()
        steps = [
            Step.processing("starting", delay=self._delay("starting")),
            Step.processing("thinking", delay=self._delay("thinking")),
        ]
        if answer.slow:
            for status in (
                "loading_two_years_of_orders",
                "fitting_a_seasonal_model",
                "checking_the_fit_on_2024",
            ):
                steps.append(Step.processing(status, delay=self._delay("slow")))
            if self.hold is not None:
                steps.append(Step.pause(self.hold))
        steps.append(Step.processing(answer.doing, delay=self._delay("querying")))
        if answer.fails_first and not question.is_edit:
            error = Step.error(
                answer.fails_first, code="QUERY_TIMEOUT", retryable=True, delay=self._delay("slow")
            )
            return [*steps, error]
        if question.include_tool_events and not question.files:
            steps += steps_for(topic, answer, delay=self._delay("querying"))
        steps.append(Step.processing("analyzing", delay=self._delay("analyzing")))
        steps += [
            Step(v.event, v.data, delay=self._delay("visualization")) for v in answer.visualizations
        ]
        steps += [
            Step.delta(piece, delay=self._delay("delta")) for piece in split_pieces(answer.text, 4)
        ]
        steps.append(Step.message(answer.text, delay=self._delay("message")))
        return steps
