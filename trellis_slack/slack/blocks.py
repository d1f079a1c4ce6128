"""Block Kit for the bot's own messages: the working message, Stop, feedback, errors and notes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from trellis_slack.errors import (
    TrellisAPIError,
    TrellisAuthError,
    TrellisConnectionLost,
    TrellisError,
    TrellisMalformedAnswer,
    TrellisRateLimited,
    TrellisTimeout,
    TrellisUnavailable,
)

STOP_ACTION = "trellis_stop"
RETRY_ACTION = "trellis_retry"
#: The ``action_id`` of the feedback buttons under a final answer.
FEEDBACK_ACTION = "trellis_feedback"
#: The ``action_id`` of the "Show steps" button on a final answer that has steps.
SHOW_STEPS_ACTION = "trellis_show_steps"
#: At most this many characters of steps in one message (Slack cuts a message's text at 40,000,
#: and shows a long one badly well before that); beyond it the steps are cut, and say so.
STEPS_LIMIT = 3_900
#: The last line of steps cut at `STEPS_LIMIT`.
STEPS_CUT = "_(cut: the steps are longer than Slack shows in one message)_"
#: The two ratings a feedback button carries (Trellis's own words for them).
POSITIVE, NEGATIVE = "positive", "negative"

Block = dict[str, Any]

_STATUS_WORDS = {
    "starting": "Starting",
    "thinking": "Thinking",
    "analyzing": "Analyzing the data",
    "processing": "Processing",
}


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message body: fallback ``text`` plus ``blocks``."""

    text: str
    blocks: tuple[Block, ...]


def status_line(status: str) -> str:
    """A Trellis ``processing`` status in words ("analyzing" → "Analyzing the data…")."""
    cleaned = " ".join(status.replace("_", " ").split())[:80]
    word = _STATUS_WORDS.get(cleaned.lower(), cleaned.capitalize() or "Working")
    return f"{word}…"


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _button(text: str, action_id: str, value: str, *, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def working(status: str, *, question_ts: str, preview: tuple[Block, ...] = ()) -> Rendered:
    """The working message: what Trellis is doing, the answer streamed so far, a Stop button."""
    line = f":hourglass_flowing_sand: {status}"
    blocks = (
        *preview,
        _context(line),
        {
            "type": "actions",
            "block_id": "trellis_working",
            "elements": [_button("Stop", STOP_ACTION, question_ts, style="danger")],
        },
    )
    return Rendered(text=status, blocks=blocks)


def waiting(reason: str) -> Rendered:
    """A question that cannot start yet (another answer in the thread, or no free connection)."""
    return Rendered(text=reason, blocks=(_context(f":double_vertical_bar: {reason}"),))


def stopped(
    by_user: str | None, reason: str | None = None, *, retry_value: str | None = None
) -> Rendered:
    """The working message after Stop: who stopped it (or why), and Retry to ask again.

    ``retry_value`` None: no Retry (the question changed or went, so there is nothing to redo).
    """
    who = f" by <@{by_user}>" if by_user else ""
    text = f"Stopped{who}." + (f" {reason}" if reason else "")
    blocks: tuple[Block, ...] = (_context(f":black_square_for_stop: {text}"),)
    if retry_value is not None:
        blocks += (
            {
                "type": "actions",
                "block_id": "trellis_retry",
                "elements": [_button("Retry", RETRY_ACTION, retry_value)],
            },
        )
    return Rendered(text=text, blocks=blocks)


def note(text: str, *, emoji: str = ":information_source:") -> Rendered:
    """A short note in the thread (mrkdwn escaped by the caller when it quotes user text)."""
    return Rendered(text=text, blocks=(_context(f"{emoji} {text}"),))


def failure(message: str, *, retry_value: str | None) -> Rendered:
    """An error as an answer: plain words, and a Retry button when asking again can help."""
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":warning: {message}"[:3000]}}
    ]
    if retry_value is not None:
        blocks.append(
            {
                "type": "actions",
                "block_id": "trellis_retry",
                "elements": [_button("Retry", RETRY_ACTION, retry_value)],
            }
        )
    return Rendered(text=message[:3900], blocks=tuple(blocks))


def explain_error(exc: TrellisError) -> str:
    """Plain words for a Trellis failure, with the fix when there is one."""
    if isinstance(exc, TrellisAuthError):
        return (
            "Trellis did not accept the bot's credentials, so I could not ask it. "
            "An admin needs to check `TRELLIS_TOKEN` / `TRELLIS_API_KEY` (it may have expired)."
        )
    if isinstance(exc, TrellisConnectionLost):
        return "The connection to Trellis was lost before the answer was complete."
    if isinstance(exc, TrellisTimeout):
        return "Trellis took too long to answer, so I stopped waiting."
    if isinstance(exc, TrellisUnavailable):
        return "I could not reach Trellis right now."
    if isinstance(exc, TrellisRateLimited):
        after = f" Try again in {exc.retry_after:.0f} s." if exc.retry_after else ""
        return "Trellis is receiving too many questions right now." + after
    if isinstance(exc, TrellisAPIError):
        return explain_trellis_message(str(exc), exc.debug_id, exc.code)
    if isinstance(exc, TrellisMalformedAnswer):
        return str(exc)  # already in plain words: "Trellis sent an answer I could not read."
    return f"Trellis could not answer: {exc}"


#: Trellis error codes only an admin can fix.
ADMIN_CODES = frozenset({"NO_DATASOURCE", "INTEGRATION_NOT_FOUND"})


def needs_admin(message: str, code: str | None = None) -> bool:
    """Whether a Trellis error is one only an admin can fix (asking again will not help).

    The stable ``code`` decides when Trellis sends one (v-current); the seed API sends only
    words, so then the words decide.
    """
    if code is not None:
        return code in ADMIN_CODES
    return "no datasource" in message.lower()


def explain_trellis_message(message: str, debug_id: str | None, code: str | None = None) -> str:
    """A Trellis ``error`` event in words, with how to fix the ones an admin can fix."""
    text = f"Trellis could not answer: {message.strip() or 'unknown error'}"
    if needs_admin(message, code):
        text += (
            ".\nAn admin can choose a database for this channel with `/trellis integration <id>`, "
            "or set `TRELLIS_INTEGRATION_ID` for the bot."
        )
    if debug_id:
        text += f"\n_Debug id: `{debug_id}`_"
    return text


def feedback(question_ts: str) -> Block:
    """The feedback buttons under a final answer: a ``context_actions`` with ``feedback_buttons``.

    Each button's ``value`` is ``"<rating>:<question ts>"`` ("positive:1712.0001"), so a click
    names the question it rates whichever message of the answer carries the buttons; read it
    back with `feedback_vote`. No ``block_id``: Slack wants a new one for every version of a
    message, and generates one.
    """
    return {
        "type": "context_actions",
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": FEEDBACK_ACTION,
                "positive_button": {
                    "text": {"type": "plain_text", "text": "Helpful"},
                    "value": f"{POSITIVE}:{question_ts}",
                    "accessibility_label": "This answer helped",
                },
                "negative_button": {
                    "text": {"type": "plain_text", "text": "Not helpful"},
                    "value": f"{NEGATIVE}:{question_ts}",
                    "accessibility_label": "This answer did not help",
                },
            }
        ],
    }


def question_ref(channel_id: str, ts: str) -> str:
    """A button value naming a question in another conversation ("C123/1712.0001").

    A button under the question's own thread carries only the question's ts; one elsewhere (an
    answer sent to the asker's DM) names the question's channel too: read it with `question_at`.
    """
    return f"{channel_id}/{ts}"


def question_at(value: str, channel_id: str) -> tuple[str, str]:
    """``(channel, question ts)`` a button value names, clicked in ``channel_id``."""
    channel, sep, ts = value.partition("/")
    if sep and channel and ts:
        return channel, ts
    return channel_id, value


def feedback_vote(value: str) -> tuple[str, str] | None:
    """``(rating, question_ts)`` from a feedback button's ``value``; None when it is not one."""
    rating, sep, question_ts = value.partition(":")
    if not sep or rating not in (POSITIVE, NEGATIVE) or not question_ts.strip():
        return None
    return rating, question_ts


def show_steps(question_ts: str) -> Block:
    """The "Show steps" button on a final answer; its ``value`` is the question's ts."""
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": SHOW_STEPS_ACTION,
                "text": {"type": "plain_text", "text": "Show steps"},
                "value": question_ts,
                "accessibility_label": "Show the queries Trellis ran for this answer",
            }
        ],
    }


class StepLike(Protocol):
    """What a step shows (`store.base.AnswerStep` is one)."""

    @property
    def kind(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def sql(self) -> str | None: ...
    @property
    def tables(self) -> tuple[str, ...]: ...
    @property
    def row_count(self) -> int | None: ...
    @property
    def text(self) -> str | None: ...


def steps_text(steps: Sequence[StepLike], *, limit: int = STEPS_LIMIT) -> str:
    """The steps of an answer as one mrkdwn message: each query's SQL as a code block.

    Longer than ``limit``: cut at a step (or inside the first one), ending with `STEPS_CUT`.
    """
    if not steps:
        return "Trellis kept no steps for this answer."
    parts = [f"*How I got this answer* ({len(steps)} step{'s' if len(steps) != 1 else ''})"]
    for number, step in enumerate(steps, start=1):
        lines = [f"*{number}. {_plain(step.title or _KIND_WORDS.get(step.kind, step.kind))}*"]
        if step.tables:
            lines.append("Tables: " + ", ".join(f"`{_plain(t)}`" for t in step.tables))
        if step.sql:
            lines.append("```" + step.sql.replace("```", "` ` `") + "```")
        if step.row_count is not None:
            lines.append(f"{step.row_count} row{'s' if step.row_count != 1 else ''}")
        if step.text:
            lines.append(_plain(step.text))
        parts.append("\n".join(lines))
    whole = "\n\n".join(parts)
    if len(whole) <= limit:
        return whole
    room = limit - len(STEPS_CUT) - 2
    kept = ""
    for part in parts:
        candidate = f"{kept}\n\n{part}" if kept else part
        if len(candidate) > room:
            break
        kept = candidate
    if kept == parts[0] or not kept:
        cut = whole[: max(0, room - 3)]
        kept = cut + ("```" if cut.count("```") % 2 else "")
    return f"{kept}\n\n{STEPS_CUT}"


_KIND_WORDS = {"query": "Query", "note": "Note"}


def _plain(text: str) -> str:
    """Text with Slack's control characters escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
