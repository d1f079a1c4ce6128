"""One answer as few messages as Slack allows: its charts and tables, then its text (pure).

An answer is one message under its question — its charts (``image`` blocks showing uploaded
files), tables (``table`` blocks) and notes first, then the text that explains them, then the
feedback buttons. Only Slack's own limits split it, into consecutive messages: 50 blocks a
message, one ``table`` block a message, 12,000 characters of Markdown a message (the text is
already cut to that by `markdown.answer_messages`), and at most two native charts
(``data_visualization``) and one native table (``data_table``) a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trellis_slack.slack.blocks import Rendered
from trellis_slack.slack.markdown import MAX_BLOCKS, SlackMessage

Block = dict[str, Any]

__all__ = ["chart_block", "compose"]


def chart_block(file_id: str, *, title: str, alt_text: str) -> Block:
    """A chart inside the answer: an ``image`` block showing an uploaded (unshared) file."""
    block: Block = {
        "type": "image",
        "slack_file": {"id": file_id},
        "alt_text": (alt_text or title or "chart")[:2000],
    }
    if title:
        block["title"] = {"type": "plain_text", "text": title[:2000]}
    return block


#: How many blocks of a type one message may hold: Slack's limits for ``table`` and
#: ``data_visualization``; one ``data_table`` a message is our choice (Slack caps the cell text of a
#: message's tables at 10,000 characters together, which one table a message keeps simple).
PER_MESSAGE = {"table": 1, "data_table": 1, "data_visualization": 2}


def _full(current: list[Block], block: Block) -> bool:
    """Whether ``block`` must start a new message after ``current``."""
    if len(current) >= MAX_BLOCKS:
        return True
    kind = str(block.get("type"))
    limit = PER_MESSAGE.get(kind)
    return limit is not None and sum(b.get("type") == kind for b in current) >= limit


def compose(visuals: Sequence[Block], text: Sequence[SlackMessage]) -> list[Rendered]:
    """The answer's messages, in order: ``visuals`` (charts, tables, notes), then ``text``.

    The first text message joins the last message of visuals when both fit in one message.
    """
    messages: list[Rendered] = []
    current: list[Block] = []

    def flush(fallback: str) -> None:
        if current:
            messages.append(Rendered(fallback, tuple(current)))
            current.clear()

    for block in visuals:
        if _full(current, block):
            flush("Charts and tables for this answer")
        current.append(block)
    pieces = list(text)
    if pieces and current and len(current) + len(pieces[0].blocks) <= MAX_BLOCKS:
        first = pieces.pop(0)
        current.extend(first.blocks)
        flush(first.text)
    else:
        flush("Charts and tables for this answer")
    messages.extend(Rendered(piece.text, piece.blocks) for piece in pieces)
    return messages
