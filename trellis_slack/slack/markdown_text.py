"""Markdown rewritten for Slack: tables as aligned code blocks, and the plain-text fallback."""

from __future__ import annotations

import re
import unicodedata

from trellis_slack.slack.markdown_split import (
    JOINERS,
    Ruler,
    closes_fence,
    joins_previous,
    offset_lines,
    open_marker,
    units,
)

__all__ = ["ELLIPSIS", "TEXT_LIMIT", "escape_mrkdwn", "plain_text", "tables_to_code"]

#: Our cap on a message's `text` fallback (Slack reports `msg_too_long` above ~4,000).
TEXT_LIMIT = 3_900
#: What a shortened text ends with.
ELLIPSIS = "…"


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
        if unicodedata.combining(ch) or ch in JOINERS:
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


def tables_to_code(markdown: str) -> str:
    """Markdown tables (outside code fences) turned into fenced code blocks with aligned columns."""
    lines = markdown.split("\n")
    out: list[str] = []
    marker: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        if marker is not None:
            if closes_fence(line, marker):
                marker = None
        elif (opened := open_marker(line)) is not None:
            marker = opened
        elif index + 1 < len(lines) and _is_row(line):
            aligns = _alignments(lines[index + 1])
            header = _cells(line)
            if aligns is not None and len(aligns) == len(header):
                end = index + 2
                while end < len(lines) and _is_row(lines[end]) and open_marker(lines[end]) is None:
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
    if units(text) <= limit:
        return text
    if limit < 1:
        return ""
    cut = Ruler(text).reach(0, limit - 1)
    entity = text.rfind("&", max(0, cut - 5), cut)
    if entity != -1 and ";" not in text[entity:cut]:
        cut = entity  # never leave half an "&amp;"
    space = max(text.rfind(" ", max(0, cut - 80), cut), text.rfind("\n", max(0, cut - 80), cut))
    if space > 0:
        cut = space
    while 0 < cut < len(text) and joins_previous(text, cut):
        cut -= 1
    return text[:cut].rstrip() + ELLIPSIS


def plain_text(markdown: str, limit: int = TEXT_LIMIT) -> str:
    """Readable text without Markdown syntax for a message's `text`, mrkdwn-escaped, ≤ `limit`.

    Code blocks keep their content; links become "label (url)"; the result is cut with "…" past
    `limit` (counted in UTF-16 units), so the blocks must carry the full answer.
    """
    out: list[str] = []
    marker: str | None = None
    for _, line in offset_lines(markdown):
        if marker is not None:
            if closes_fence(line, marker):
                marker = None
            else:
                out.append(line)
            continue
        marker = open_marker(line)
        if marker is not None:
            continue
        plain = _plain_line(line)
        if plain is not None:
            out.append(plain.rstrip())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()
    return _shorten(escape_mrkdwn(text), limit)
