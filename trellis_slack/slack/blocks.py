"""Block Kit for the bot's own messages: the working message, Stop, feedback, errors and notes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


def stopped(by_user: str | None, reason: str | None = None) -> Rendered:
    """The working message after Stop: who stopped it (or why), and no button any more."""
    who = f" by <@{by_user}>" if by_user else ""
    text = f"Stopped{who}." + (f" {reason}" if reason else "")
    return Rendered(text=text, blocks=(_context(f":black_square_for_stop: {text}"),))


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


def feedback_vote(value: str) -> tuple[str, str] | None:
    """``(rating, question_ts)`` from a feedback button's ``value``; None when it is not one."""
    rating, sep, question_ts = value.partition(":")
    if not sep or rating not in (POSITIVE, NEGATIVE) or not question_ts.strip():
        return None
    return rating, question_ts
