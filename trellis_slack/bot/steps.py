"""An answer's steps ("Show steps"): collected from Trellis's tool events, shown to whoever asks."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from trellis_slack.slack.blocks import steps_text
from trellis_slack.store.base import AnswerStep, Store
from trellis_slack.trellis.protocol import ToolEvent

__all__ = ["StepLog", "StepsShower", "ToolFields", "card_title"]

log = logging.getLogger(__name__)


class ToolFields:
    """What a tool event says, read tolerantly: its fields are not documented.

    Each reader takes the names seen so far and ignores anything else (missing, of another type,
    or extra fields).
    """

    def __init__(self, event: ToolEvent) -> None:
        self.data = event.data
        inner = next(
            (v for k in ("input", "arguments", "args") if isinstance(v := self.data.get(k), dict)),
            None,
        )
        self.input: Mapping[str, Any] = inner or {}

    def text_of(self, *keys: str, inner: bool = False) -> str | None:
        for where in (self.data, self.input) if inner else (self.data,):
            for key in keys:
                value = where.get(key)
                if isinstance(value, str) and value.strip():
                    return value
        return None

    @property
    def call_id(self) -> str | None:
        """The tool call the event belongs to (``id`` on a call, ``tool_call_id`` after it)."""
        for key in ("tool_call_id", "call_id", "id"):
            value = self.data.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
        return None

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables the step read, as Trellis names them."""
        for where in (self.data, self.input):
            value = where.get("tables")
            if isinstance(value, list):
                return tuple(t for t in value if isinstance(t, str) and t)
        return ()

    @property
    def row_count(self) -> int | None:
        """How many rows the query gave (``row_count``, or the length of ``rows``)."""
        for key in ("row_count", "rowcount", "rows_returned"):
            value = self.data.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return value
        rows = self.data.get("rows")
        return len(rows) if isinstance(rows, list) else None


class StepLog:
    """The steps of one answer, built from its tool events as they arrive (pure)."""

    def __init__(self) -> None:
        self._steps: list[AnswerStep] = []
        self._calls: dict[str, int] = {}

    def add(self, event: ToolEvent) -> AnswerStep | None:
        """Take one tool event; returns the step it started or changed (None if it changed none).

        A ``tool_call`` starts a step; its ``tool_result`` (same call id, else the latest call)
        adds the row count; a ``tool_message`` is a step of its own, a note.
        """
        fields = ToolFields(event)
        if event.name == "tool_call":
            sql = fields.text_of("sql", "query", inner=True)
            step = AnswerStep(
                kind="query" if sql else (fields.text_of("name", "tool", "tool_name") or "tool"),
                title=fields.text_of("title", "description", "summary"),
                sql=sql,
                tables=fields.tables,
            )
            if fields.call_id is not None:
                self._calls[fields.call_id] = len(self._steps)
            self._steps.append(step)
            return step
        if event.name == "tool_result":
            index = self._calls.get(fields.call_id or "", len(self._steps) - 1)
            if not 0 <= index < len(self._steps):
                return None
            old = self._steps[index]
            step = replace(old, row_count=fields.row_count, tables=old.tables or fields.tables)
            self._steps[index] = step
            return step
        text = fields.text_of("content", "message", "text", "summary")
        if not text:
            return None
        step = AnswerStep(kind="note", text=text)
        self._steps.append(step)
        return step

    @property
    def steps(self) -> tuple[AnswerStep, ...]:
        """The steps so far, in the order Trellis took them."""
        return tuple(self._steps)


def card_title(step: AnswerStep) -> str:
    """A step as the title of its task card (plain text, short)."""
    if step.title:
        title = step.title
    elif step.tables:
        title = "Querying " + ", ".join(step.tables)
    else:
        title = "Running a query" if step.kind == "query" else f"Using {step.kind}"
    return title if len(title) <= 120 else title[:119] + "…"


class Ephemerals(Protocol):
    """Something that shows one person a message only they see (`SlackIO`)."""

    async def ephemeral(
        self, channel: str, user: str, text: str, thread_ts: str | None
    ) -> bool: ...


class StepsShower:
    """Handles "Show steps" clicks: the answer's steps, only to the person who clicked.

    Ephemeral, because steps can be long and only the clicker asked for them; one message, each
    query's SQL as a code block, cut at Slack's limits (an ephemeral message cannot carry a file,
    so a cut says so).
    """

    def __init__(self, *, slack: Ephemerals, store: Store) -> None:
        self.slack = slack
        self.store = store

    async def on_click(
        self,
        *,
        channel_id: str,
        user_id: str,
        question_ts: str,
        thread_ts: str | None,
        question_channel: str | None = None,
    ) -> None:
        """Show the steps of the question's answer to ``user_id``, where they clicked.

        ``question_channel``: the question's channel when the answer is elsewhere (a DM).
        """
        steps = await self.store.answer_steps(question_channel or channel_id, question_ts)
        if not steps:
            log.info("channel %s: steps asked for a question without steps", channel_id)
        await self.slack.ephemeral(channel_id, user_id, steps_text(steps), thread_ts)
