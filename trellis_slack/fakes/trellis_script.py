"""Scripts for the fake Trellis server: the question a responder is asked and the steps it answers."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

#: Pseudo-events the server acts on instead of sending them as ``{"event", "data"}``.
PAUSE: Final = "@pause"
DROP: Final = "@drop"
CLOSE: Final = "@close"
RAW: Final = "@raw"

#: Segment charts carry ``text`` (v-current) instead of ``label`` on each value.
SEGMENT_CHARTS: Final = frozenset({"pie", "donut"})

_VIZ_ID_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_visualization_id() -> str:
    """A fresh 10-character visualization id, as Trellis sends them."""
    return "".join(secrets.choice(_VIZ_ID_ALPHABET) for _ in range(10))


@dataclass(frozen=True, slots=True)
class Question:
    """What a responder is asked: one user message (new or edited) in one chat."""

    text: str
    chat_id: str
    integration_id: str | None
    model: str | None
    is_edit: bool
    token_sub: str
    #: Id the server gave the user message (the new id after an edit).
    user_message_id: str = ""
    include_tool_events: bool = False
    #: The files sent with the question (``upload_ids``): (file name, content), in order.
    files: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """One scripted server action during a turn: wait for ``gate``, then ``delay``, then send.

    ``event`` is sent as ``{"event": event, "data": data}`` unless it is one of the pseudo-events
    built by :meth:`pause`, :meth:`drop`, :meth:`close` and :meth:`raw`. The server fills in a
    ``message`` id, a ``visualization`` id and (v-current) the ``error`` fields when they are
    missing; the seed server never sends ``text_delta`` or ``heartbeat`` and strips ``error``
    data down to ``{"error": …}``.
    """

    event: str
    data: Mapping[str, Any]
    delay: float = 0.0
    gate: asyncio.Event | None = None

    @classmethod
    def processing(cls, status: str = "thinking", *, delay: float = 0.0) -> Step:
        """A ``processing`` status (``starting``, ``thinking``, ``analyzing``, …)."""
        return cls("processing", {"status": status}, delay)

    @classmethod
    def delta(cls, piece: str, *, delay: float = 0.0) -> Step:
        """A v-current ``text_delta``: the next piece of the final text."""
        return cls("text_delta", {"content": piece}, delay)

    @classmethod
    def message(cls, content: str, *, message_id: str | None = None, delay: float = 0.0) -> Step:
        """The final ``message``; without ``message_id`` the server assigns one."""
        data: dict[str, Any] = {"content": content}
        if message_id is not None:
            data["id"] = message_id
        return cls("message", data, delay)

    @classmethod
    def malformed_message(
        cls,
        *,
        content: Literal["missing", "null"] = "missing",
        message_id: str | None = None,
        delay: float = 0.0,
    ) -> Step:
        """A final ``message`` whose ``content`` is missing or ``null``, as a faulty Trellis sends.

        The server still treats it as the end of the turn (and stores an empty answer).
        """
        data: dict[str, Any] = {} if content == "missing" else {"content": None}
        if message_id is not None:
            data["id"] = message_id
        return cls("message", data, delay)

    @classmethod
    def visualization(cls, payload: Mapping[str, Any], *, delay: float = 0.0) -> Step:
        """A ``visualization`` with a full payload; an ``id`` is added when it has none."""
        data = dict(payload)
        data.setdefault("id", new_visualization_id())
        return cls("visualization", data, delay)

    @classmethod
    def chart(
        cls,
        chart_type: str = "bar",
        values: Iterable[tuple[str, float] | Mapping[str, Any]] = (),
        *,
        title: str | None = None,
        x_axis_label: str | None = None,
        y_axis_label: str | None = None,
        viz_id: str | None = None,
        delay: float = 0.0,
    ) -> Step:
        """A chart; ``(label, value)`` pairs become ``label``/``value`` (``text`` for pie/donut)."""
        key = "text" if chart_type in SEGMENT_CHARTS else "label"
        items = [v if isinstance(v, Mapping) else {key: v[0], "value": v[1]} for v in values]
        inner: dict[str, Any] = {"values": items}
        if x_axis_label is not None:
            inner["x_axis_label"] = x_axis_label
        if y_axis_label is not None:
            inner["y_axis_label"] = y_axis_label
        data: dict[str, Any] = {
            "id": viz_id or new_visualization_id(),
            "type": "chart",
            "chart_type": chart_type,
            "data": inner,
        }
        if title is not None:
            data["title"] = title
        return cls("visualization", data, delay)

    @classmethod
    def table(
        cls,
        headers: Sequence[str],
        rows: Iterable[Sequence[Any] | Mapping[str, Any]],
        *,
        title: str | None = None,
        viz_id: str | None = None,
        delay: float = 0.0,
    ) -> Step:
        """A table visualization (rows as lists, or as objects keyed by header)."""
        data: dict[str, Any] = {
            "id": viz_id or new_visualization_id(),
            "type": "table",
            "headers": list(headers),
            "rows": [dict(r) if isinstance(r, Mapping) else list(r) for r in rows],
        }
        if title is not None:
            data["title"] = title
        return cls("visualization", data, delay)

    @classmethod
    def tool_call(
        cls,
        sql: str,
        *,
        call_id: str,
        tables: Sequence[str] = (),
        title: str | None = None,
        delay: float = 0.0,
    ) -> Step:
        """A ``tool_call`` running ``sql`` (sent only when the action asked for tool events).

        Carries a field the bridge does not know (``started_at``), as a newer Trellis may.
        """
        data: dict[str, Any] = {
            "id": call_id,
            "name": "run_sql",
            "input": {"sql": sql, "tables": list(tables)},
            "started_at": "2026-12-01T00:00:00Z",
        }
        if title is not None:
            data["title"] = title
        return cls("tool_call", data, delay)

    @classmethod
    def tool_result(
        cls, rows: Sequence[Sequence[Any]], *, call_id: str, delay: float = 0.0
    ) -> Step:
        """The ``tool_result`` of call ``call_id``: its rows and their count."""
        data = {"tool_call_id": call_id, "rows": [list(r) for r in rows], "row_count": len(rows)}
        return cls("tool_result", data, delay)

    @classmethod
    def error(
        cls,
        text: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
        debug_id: str | None = None,
        error_type: str | None = None,
        delay: float = 0.0,
    ) -> Step:
        """An ``error`` event ending the turn; v-current fills in missing fields."""
        data: dict[str, Any] = {"error": text}
        for name, value in (
            ("code", code),
            ("retryable", retryable),
            ("debug_id", debug_id),
            ("error_type", error_type),
        ):
            if value is not None:
                data[name] = value
        return cls("error", data, delay)

    @classmethod
    def pause(cls, gate: asyncio.Event) -> Step:
        """Send nothing; hold the turn open until ``gate`` is set."""
        return cls(PAUSE, {}, 0.0, gate)

    @classmethod
    def drop(cls, *, delay: float = 0.0) -> Step:
        """Abort the TCP connection mid-turn, without a closing handshake."""
        return cls(DROP, {}, delay)

    @classmethod
    def close(cls, code: int = 1011, reason: str = "", *, delay: float = 0.0) -> Step:
        """Close the WebSocket mid-turn with ``code`` (a clean closing handshake)."""
        return cls(CLOSE, {"code": code, "reason": reason}, delay)

    @classmethod
    def raw(cls, text: str, *, delay: float = 0.0) -> Step:
        """Send ``text`` as it is in one text frame (garbage, or JSON of any shape)."""
        return cls(RAW, {"text": text}, delay)


Responder = Callable[[Question], Sequence[Step]]


def split_pieces(text: str, parts: int = 3) -> list[str]:
    """Cut ``text`` into at most ``parts`` non-empty pieces, each ending after a space.

    Joining the pieces gives back ``text`` exactly.
    """
    pieces: list[str] = []
    start = 0
    for i in range(1, parts):
        cut = max(start, len(text) * i // parts)
        space = text.find(" ", cut)
        if space == -1:
            break
        cut = space + 1
        if cut > start:
            pieces.append(text[start:cut])
            start = cut
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def answer(
    text: str,
    *,
    deltas: bool | None = None,
    statuses: Sequence[str] = ("thinking", "analyzing"),
    visualizations: Sequence[Mapping[str, Any]] = (),
    delay: float = 0.0,
) -> list[Step]:
    """A typical answer: statuses, visualizations, ``text`` in ~3 deltas, then the message.

    ``deltas=None`` means "as the version does": the deltas are in the script, and the seed
    server drops them (it never sends ``text_delta``). ``deltas=False`` leaves them out.
    ``delay`` is waited before every step.
    """
    steps = [Step.processing(status, delay=delay) for status in statuses]
    steps += [Step.visualization(v, delay=delay) for v in visualizations]
    if deltas is None or deltas:
        steps += [Step.delta(piece, delay=delay) for piece in split_pieces(text)]
    steps.append(Step.message(text, delay=delay))
    return steps


def echo(question: Question) -> list[Step]:
    """The default responder: ``You asked: <the question>``."""
    return answer(f"You asked: {question.text}")
