"""Turn Trellis's Markdown answers into Slack messages within Slack's limits, never losing text."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from trellis_slack.slack.markdown_split import Ruler, split_markdown, split_point
from trellis_slack.slack.markdown_text import (
    ELLIPSIS,
    TEXT_LIMIT,
    escape_mrkdwn,
    plain_text,
    tables_to_code,
)

__all__ = [
    "EMPTY_ANSWER",
    "MARKDOWN_LIMIT",
    "MAX_BLOCKS",
    "SECTION_LIMIT",
    "TEXT_LIMIT",
    "SlackMessage",
    "answer_messages",
    "escape_mrkdwn",
    "mrkdwn_section",
    "plain_text",
    "streaming_preview",
]

logger = logging.getLogger(__name__)

#: Characters of `markdown` block text allowed in one message, in total.
MARKDOWN_LIMIT = 12_000
#: Blocks allowed in one message.
MAX_BLOCKS = 50
#: Characters allowed in a `section` block's text.
SECTION_LIMIT = 3_000
#: What the user sees when Trellis's final answer has no text.
EMPTY_ANSWER = "_The answer was empty._"

_STREAM_MARKER = "…"


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """One message to post: Block Kit blocks plus the plain `text` fallback."""

    text: str
    blocks: tuple[dict[str, Any], ...]


# --- messages -------------------------------------------------------------------------------------


def _markdown_block(text: str) -> dict[str, Any]:
    return {"type": "markdown", "text": text}


def _fallback(markdown: str) -> str:
    return plain_text(markdown) or ELLIPSIS


def answer_messages(markdown: str, *, footer: dict[str, Any] | None = None) -> list[SlackMessage]:
    """The final answer as one or more messages of `markdown` blocks, within Slack's limits.

    Long answers split at paragraph (then line, then word) boundaries into messages of at most
    12,000 characters of Markdown; code fences cut by a split are closed and reopened; tables
    become aligned code blocks; `footer` goes on the last message only.
    """
    body = markdown.strip()
    if not body:
        pieces = [EMPTY_ANSWER]
    else:
        pieces = [piece.rendered for piece in split_markdown(tables_to_code(body), MARKDOWN_LIMIT)]
    if len(pieces) > 1:
        logger.debug("answer of %d characters split into %d messages", len(body), len(pieces))
    messages = []
    for index, piece in enumerate(pieces):
        blocks = [_markdown_block(piece)]
        if footer is not None and index == len(pieces) - 1:
            blocks.append(footer)
        messages.append(SlackMessage(text=_fallback(piece), blocks=tuple(blocks)))
    return messages


def streaming_preview(markdown_so_far: str) -> SlackMessage:
    """What to show while the answer streams: its first 12,000 characters, fences closed, "…".

    The preview keeps the start of the answer (it splits exactly like `answer_messages`, so the
    first final message replaces it without the text jumping) and always ends with a marker.
    """
    body = markdown_so_far.strip()
    if not body:
        return SlackMessage(text=_STREAM_MARKER, blocks=(_markdown_block(_STREAM_MARKER),))
    first = split_markdown(tables_to_code(body), MARKDOWN_LIMIT - 2 * len(_STREAM_MARKER) - 1)[0]
    if first.ends_in_fence or first.rendered.rstrip().endswith(("```", "~~~")):
        preview = first.rendered.rstrip() + "\n" + _STREAM_MARKER
    else:
        preview = first.rendered.rstrip() + " " + _STREAM_MARKER
    text = plain_text(first.rendered, TEXT_LIMIT - 2)
    if not text.endswith(ELLIPSIS):
        text = f"{text} {_STREAM_MARKER}" if text else _STREAM_MARKER
    return SlackMessage(text=text, blocks=(_markdown_block(preview),))


# --- our own mrkdwn -------------------------------------------------------------------------------


def _mrkdwn_split_point(text: str, start: int, ruler: Ruler) -> int:
    """Like `split_point` for mrkdwn: a forced cut never splits an "&amp;" or a "<link|label>"."""
    end = split_point(text, start, SECTION_LIMIT, ruler)
    if end >= len(text) or text[end - 1].isspace():
        return end
    entity = text.rfind("&", start + 1, end)
    if entity != -1 and end - entity < 8 and ";" not in text[entity:end]:
        return entity
    link = text.rfind("<", start + 1, end)
    if link != -1 and ">" not in text[link:end]:
        return link
    return end


def mrkdwn_section(text: str) -> list[dict[str, Any]]:
    """Our own (already escaped) mrkdwn text as `section` blocks of at most 3,000 characters each.

    The text is split at paragraph, line or word boundaries, never cut; blank text gives no block.
    """
    ruler = Ruler(text)
    blocks: list[dict[str, Any]] = []
    start = 0
    while start < len(text):
        end = _mrkdwn_split_point(text, start, ruler)
        piece = text[start:end].strip("\n")
        if piece.strip():
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": piece}})
        start = end
    return blocks
