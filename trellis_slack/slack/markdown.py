"""Turn Trellis's Markdown answers into Slack messages within Slack's limits, never losing text."""

from __future__ import annotations

import bisect
import itertools
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

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
#: Our cap on a message's `text` fallback (Slack reports `msg_too_long` above ~4,000).
TEXT_LIMIT = 3_900
#: What the user sees when Trellis's final answer has no text.
EMPTY_ANSWER = "_The answer was empty._"

_ELLIPSIS = "…"
_STREAM_MARKER = "…"


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """One message to post: Block Kit blocks plus the plain `text` fallback."""

    text: str
    blocks: tuple[dict[str, Any], ...]


# --- measuring ------------------------------------------------------------------------------------
# Slack does not say how it counts characters; counting UTF-16 code units (an emoji outside the
# BMP counts twice) is never less than any other count, so a piece that fits by this count fits.


def _units(text: str) -> int:
    """Length of `text` in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


class _Ruler:
    """Prefix sums of UTF-16 units over one text, to find how far a budget reaches."""

    __slots__ = ("_sums",)

    def __init__(self, text: str) -> None:
        widths = (2 if ord(ch) > 0xFFFF else 1 for ch in text)
        self._sums = [0, *itertools.accumulate(widths)]

    def reach(self, start: int, budget: int) -> int:
        """The largest end such that text[start:end] takes at most `budget` units."""
        return bisect.bisect_right(self._sums, self._sums[start] + budget) - 1


# --- code fences ----------------------------------------------------------------------------------

_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_FENCE_CLOSE = re.compile(r" {0,3}(`{3,}|~{3,})[ \t]*")


@dataclass(frozen=True, slots=True)
class _Fence:
    """A fenced code block: its opening line and where its content starts and ends."""

    marker: str  # the opening run of backticks or tildes
    opener: str  # the whole opening line, without its newline
    content_start: int  # just after the opening line's newline
    content_end: int  # start of the closing line, or len(text) when never closed


def _lines(text: str) -> list[tuple[int, str]]:
    """(offset, line without newline) for every line of `text`, splitting on "\\n" only."""
    result: list[tuple[int, str]] = []
    pos = 0
    for line in text.split("\n"):
        result.append((pos, line))
        pos += len(line) + 1
    return result


def _open_marker(line: str) -> str | None:
    """The fence marker if `line` opens a fenced code block."""
    match = _FENCE_OPEN.fullmatch(line)
    if match is None:
        return None
    marker, info = match.group(1), match.group(2)
    if marker[0] == "`" and "`" in info:
        return None  # CommonMark: a backtick fence's info string has no backticks
    return marker


def _closes(line: str, marker: str) -> bool:
    """Whether `line` closes a fence opened with `marker`."""
    match = _FENCE_CLOSE.fullmatch(line)
    return (
        match is not None and match.group(1)[0] == marker[0] and len(match.group(1)) >= len(marker)
    )


def _fences(text: str) -> list[_Fence]:
    """Every fenced code block of `text`, in order."""
    fences: list[_Fence] = []
    open_at: tuple[str, str, int] | None = None
    for offset, line in _lines(text):
        if open_at is None:
            marker = _open_marker(line)
            if marker is not None:
                open_at = (marker, line, min(offset + len(line) + 1, len(text)))
        elif _closes(line, open_at[0]):
            fences.append(_Fence(open_at[0], open_at[1], open_at[2], offset))
            open_at = None
    if open_at is not None:
        fences.append(_Fence(open_at[0], open_at[1], open_at[2], len(text)))
    return fences


def _fence_at(fences: list[_Fence], pos: int) -> _Fence | None:
    """The fence whose content holds position `pos` (a split point), if any."""
    for fence in fences:
        if fence.content_start <= pos <= fence.content_end:
            return fence
    return None


# --- splitting ------------------------------------------------------------------------------------

_JOINERS = {"\u200d", "\u20e3"}


def _joins_previous(text: str, pos: int) -> bool:
    """Whether cutting before `pos` would split a character from its combining marks or emoji."""
    if pos <= 0 or pos >= len(text):
        return False
    here, before = text[pos], text[pos - 1]
    if before == "\u200d" or here in _JOINERS:
        return True
    if "\U0001f3fb" <= here <= "\U0001f3ff" or "\ufe00" <= here <= "\ufe0f":
        return True  # skin tone modifiers, variation selectors
    if "\U000e0020" <= here <= "\U000e007f":
        return True  # tag characters of subdivision flags
    return unicodedata.category(here) in {"Mn", "Mc", "Me"}


def _split_point(text: str, start: int, budget: int, ruler: _Ruler) -> int:
    """Where the piece starting at `start` ends: paragraph, then line, then word boundary."""
    limit = ruler.reach(start, budget)
    if limit >= len(text):
        return len(text)
    if limit <= start:
        return start + 1
    paragraph = text.rfind("\n\n", start, limit)
    if paragraph >= start:
        end = paragraph + 2
        while end < limit and text[end] == "\n":
            end += 1
        return end
    line = text.rfind("\n", start, limit)
    if line >= start:
        return line + 1
    word = max(text.rfind(" ", start, limit), text.rfind("\t", start, limit))
    if word >= start:
        return word + 1
    end = limit
    for _ in range(32):
        if end - 1 <= start or not _joins_previous(text, end):
            break
        end -= 1
    return end if end > start and not _joins_previous(text, end) else limit


@dataclass(frozen=True, slots=True)
class _Piece:
    """A slice of the answer as sent: fences cut by the split closed and reopened."""

    rendered: str
    ends_in_fence: bool


def _pieces(text: str, limit: int) -> list[_Piece]:
    """Split `text` into pieces of at most `limit` units each, code fences balanced in each."""
    ruler = _Ruler(text)
    fences = _fences(text)
    pieces: list[_Piece] = []
    start = 0
    while start < len(text):
        opening = _fence_at(fences, start) if start > 0 else None
        prefix = opening.opener + "\n" if opening is not None else ""
        budget = max(1, limit - _units(prefix))
        while True:
            end = _split_point(text, start, budget, ruler)
            raw = text[start:end]
            closing = _fence_at(fences, end)
            suffix = ""
            if closing is not None:
                suffix = closing.marker if raw.endswith("\n") or not raw else "\n" + closing.marker
            rendered = prefix + raw + suffix
            overflow = _units(rendered) - limit
            if overflow <= 0 or budget == 1:
                break
            budget = max(1, budget - overflow)
        pieces.append(_Piece(rendered, closing is not None))
        start = end
    return pieces


# --- tables ---------------------------------------------------------------------------------------

_DELIMITER_CELL = re.compile(r"\s*:?-+:?\s*")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row."""
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [cell.strip().replace("\\|", "|") for cell in _CELL_SPLIT.split(body)]


def _is_row(line: str) -> bool:
    return "|" in line and bool(line.strip()) and not line.startswith("    ")


def _alignments(line: str) -> list[str] | None:
    """The column alignments of a delimiter row ("left", "right", "center"), or None."""
    if not _is_row(line) or "-" not in line:
        return None
    cells = _cells(line)
    if not all(_DELIMITER_CELL.fullmatch(cell) for cell in cells):
        return None
    result = []
    for cell in cells:
        if cell.startswith(":") and cell.endswith(":"):
            result.append("center")
        elif cell.endswith(":"):
            result.append("right")
        else:
            result.append("left")
    return result


def _width(text: str) -> int:
    """Columns `text` takes in a monospaced font (wide East Asian characters count twice)."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or ch in _JOINERS:
            continue
        width += 2 if unicodedata.east_asian_width(ch) in {"W", "F"} else 1
    return width


def _pad(text: str, width: int, align: str) -> str:
    gap = width - _width(text)
    if align == "right":
        return " " * gap + text
    if align == "center":
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    return text + " " * gap


def _render_table(header: list[str], aligns: list[str], rows: list[list[str]]) -> list[str]:
    """A table as the lines of a fenced code block with aligned columns."""
    table = [[_strip_inline(cell) for cell in row] for row in [header, *rows]]
    columns = max(len(row) for row in table)
    table = [row + [""] * (columns - len(row)) for row in table]
    aligns = aligns + ["left"] * (columns - len(aligns))
    widths = [max(_width(row[col]) for row in table) for col in range(columns)]
    lines = [
        " | ".join(_pad(cell, widths[col], aligns[col]) for col, cell in enumerate(row)).rstrip()
        for row in table
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    longest_run = max((len(run) for run in re.findall(r"`+", "\n".join(lines))), default=0)
    fence = "`" * max(3, longest_run + 1)
    return [fence, *lines, fence]


def _tables_to_code(markdown: str) -> str:
    """Markdown tables (outside code fences) turned into fenced code blocks with aligned columns."""
    lines = markdown.split("\n")
    out: list[str] = []
    marker: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        if marker is not None:
            if _closes(line, marker):
                marker = None
        elif (opened := _open_marker(line)) is not None:
            marker = opened
        elif index + 1 < len(lines) and _is_row(line):
            aligns = _alignments(lines[index + 1])
            header = _cells(line)
            if aligns is not None and len(aligns) == len(header):
                end = index + 2
                while end < len(lines) and _is_row(lines[end]) and _open_marker(lines[end]) is None:
                    end += 1
                rows = [_cells(row) for row in lines[index + 2 : end]]
                out.extend(_render_table(header, aligns, rows))
                index = end
                continue
        out.append(line)
        index += 1
    return "\n".join(out)


# --- plain text -----------------------------------------------------------------------------------

_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_INLINE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"), r"\1"),
    (re.compile(r"\[([^\]]+)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)"), r"\1 (\2)"),
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),
    (re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?=[^\s_])([^_\n]+?)(?<=[^\s_])_(?![\w_])"), r"\1"),
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])"), r"\1"),
)


def _strip_inline(text: str) -> str:
    """Inline Markdown (emphasis, code spans, links, escapes) reduced to its words."""
    parts: list[str] = []
    pos = 0
    for match in _CODE_SPAN.finditer(text):
        parts.append(_strip_inline_words(text[pos : match.start()]))
        content = match.group(2)
        if content.startswith(" ") and content.endswith(" ") and content.strip():
            content = content[1:-1]
        parts.append(content)
        pos = match.end()
    parts.append(_strip_inline_words(text[pos:]))
    return "".join(parts)


def _strip_inline_words(text: str) -> str:
    for pattern, replacement in _INLINE_RULES:
        text = pattern.sub(replacement, text)
    return text


_HEADING = re.compile(r" {0,3}#{1,6}(?:[ \t]+|$)(.*?)(?:[ \t]+#+)?[ \t]*")
_RULE = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*")
_QUOTE = re.compile(r" {0,3}>[ ]?")
_BULLET = re.compile(r"(\s*)[-*+][ \t]+")


def _plain_line(line: str) -> str | None:
    """One line of Markdown outside code, as plain words (None: drop the line)."""
    while _QUOTE.match(line):
        line = _QUOTE.sub("", line, count=1)
    if _RULE.fullmatch(line) or _alignments(line) is not None:
        return None
    heading = _HEADING.fullmatch(line)
    if heading is not None:
        return _strip_inline(heading.group(1))
    bullet = _BULLET.match(line)
    if bullet is not None:
        return bullet.group(1) + "• " + _strip_inline(line[bullet.end() :])
    if line.strip().startswith("|") and _is_row(line):
        return " | ".join(_strip_inline(cell) for cell in _cells(line))
    return _strip_inline(line)


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters mrkdwn treats specially (&, <, >) in text we put there."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` units at a word boundary, ending with "…"."""
    if _units(text) <= limit:
        return text
    if limit < 1:
        return ""
    cut = _Ruler(text).reach(0, limit - 1)
    entity = text.rfind("&", max(0, cut - 5), cut)
    if entity != -1 and ";" not in text[entity:cut]:
        cut = entity  # never leave half an "&amp;"
    space = max(text.rfind(" ", max(0, cut - 80), cut), text.rfind("\n", max(0, cut - 80), cut))
    if space > 0:
        cut = space
    while 0 < cut < len(text) and _joins_previous(text, cut):
        cut -= 1
    return text[:cut].rstrip() + _ELLIPSIS


def plain_text(markdown: str, limit: int = TEXT_LIMIT) -> str:
    """Readable text without Markdown syntax for a message's `text`, mrkdwn-escaped, ≤ `limit`.

    Code blocks keep their content; links become "label (url)"; the result is cut with "…" past
    `limit` (counted in UTF-16 units), so the blocks must carry the full answer.
    """
    out: list[str] = []
    marker: str | None = None
    for _, line in _lines(markdown):
        if marker is not None:
            if _closes(line, marker):
                marker = None
            else:
                out.append(line)
            continue
        marker = _open_marker(line)
        if marker is not None:
            continue
        plain = _plain_line(line)
        if plain is not None:
            out.append(plain.rstrip())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()
    return _shorten(escape_mrkdwn(text), limit)


# --- messages -------------------------------------------------------------------------------------


def _markdown_block(text: str) -> dict[str, Any]:
    return {"type": "markdown", "text": text}


def _fallback(markdown: str) -> str:
    return plain_text(markdown) or _ELLIPSIS


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
        pieces = [piece.rendered for piece in _pieces(_tables_to_code(body), MARKDOWN_LIMIT)]
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
    first = _pieces(_tables_to_code(body), MARKDOWN_LIMIT - 2 * len(_STREAM_MARKER) - 1)[0]
    if first.ends_in_fence or first.rendered.rstrip().endswith(("```", "~~~")):
        preview = first.rendered.rstrip() + "\n" + _STREAM_MARKER
    else:
        preview = first.rendered.rstrip() + " " + _STREAM_MARKER
    text = plain_text(first.rendered, TEXT_LIMIT - 2)
    if not text.endswith(_ELLIPSIS):
        text = f"{text} {_STREAM_MARKER}" if text else _STREAM_MARKER
    return SlackMessage(text=text, blocks=(_markdown_block(preview),))


# --- our own mrkdwn -------------------------------------------------------------------------------


def _mrkdwn_split_point(text: str, start: int, ruler: _Ruler) -> int:
    """Like `_split_point` for mrkdwn: a forced cut never splits an "&amp;" or a "<link|label>"."""
    end = _split_point(text, start, SECTION_LIMIT, ruler)
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
    ruler = _Ruler(text)
    blocks: list[dict[str, Any]] = []
    start = 0
    while start < len(text):
        end = _mrkdwn_split_point(text, start, ruler)
        piece = text[start:end].strip("\n")
        if piece.strip():
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": piece}})
        start = end
    return blocks
