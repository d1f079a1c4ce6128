"""Cutting Markdown into pieces within a length limit: UTF-16 measure, code fences, split points."""

from __future__ import annotations

import bisect
import itertools
import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "JOINERS",
    "Piece",
    "Ruler",
    "closes_fence",
    "joins_previous",
    "offset_lines",
    "open_marker",
    "split_markdown",
    "split_point",
    "units",
]

# --- measuring ------------------------------------------------------------------------------------
# Slack does not say how it counts characters; counting UTF-16 code units (an emoji outside the
# BMP counts twice) is never less than any other count, so a piece that fits by this count fits.


def units(text: str) -> int:
    """Length of `text` in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


class Ruler:
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


def offset_lines(text: str) -> list[tuple[int, str]]:
    """(offset, line without newline) for every line of `text`, splitting on "\\n" only."""
    result: list[tuple[int, str]] = []
    pos = 0
    for line in text.split("\n"):
        result.append((pos, line))
        pos += len(line) + 1
    return result


def open_marker(line: str) -> str | None:
    """The fence marker if `line` opens a fenced code block."""
    match = _FENCE_OPEN.fullmatch(line)
    if match is None:
        return None
    marker, info = match.group(1), match.group(2)
    if marker[0] == "`" and "`" in info:
        return None  # CommonMark: a backtick fence's info string has no backticks
    return marker


def closes_fence(line: str, marker: str) -> bool:
    """Whether `line` closes a fence opened with `marker`."""
    match = _FENCE_CLOSE.fullmatch(line)
    return (
        match is not None and match.group(1)[0] == marker[0] and len(match.group(1)) >= len(marker)
    )


def _fences(text: str) -> list[_Fence]:
    """Every fenced code block of `text`, in order."""
    fences: list[_Fence] = []
    open_at: tuple[str, str, int] | None = None
    for offset, line in offset_lines(text):
        if open_at is None:
            marker = open_marker(line)
            if marker is not None:
                open_at = (marker, line, min(offset + len(line) + 1, len(text)))
        elif closes_fence(line, open_at[0]):
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

JOINERS = {"\u200d", "\u20e3"}


def joins_previous(text: str, pos: int) -> bool:
    """Whether cutting before `pos` would split a character from its combining marks or emoji."""
    if pos <= 0 or pos >= len(text):
        return False
    here, before = text[pos], text[pos - 1]
    if before == "\u200d" or here in JOINERS:
        return True
    if "\U0001f3fb" <= here <= "\U0001f3ff" or "\ufe00" <= here <= "\ufe0f":
        return True  # skin tone modifiers, variation selectors
    if "\U000e0020" <= here <= "\U000e007f":
        return True  # tag characters of subdivision flags
    return unicodedata.category(here) in {"Mn", "Mc", "Me"}


def split_point(text: str, start: int, budget: int, ruler: Ruler) -> int:
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
        if end - 1 <= start or not joins_previous(text, end):
            break
        end -= 1
    return end if end > start and not joins_previous(text, end) else limit


@dataclass(frozen=True, slots=True)
class Piece:
    """A slice of the answer as sent: fences cut by the split closed and reopened."""

    rendered: str
    ends_in_fence: bool


def split_markdown(text: str, limit: int) -> list[Piece]:
    """Split `text` into pieces of at most `limit` units each, code fences balanced in each."""
    ruler = Ruler(text)
    fences = _fences(text)
    pieces: list[Piece] = []
    start = 0
    while start < len(text):
        opening = _fence_at(fences, start) if start > 0 else None
        prefix = opening.opener + "\n" if opening is not None else ""
        budget = max(1, limit - units(prefix))
        while True:
            end = split_point(text, start, budget, ruler)
            raw = text[start:end]
            closing = _fence_at(fences, end)
            suffix = ""
            if closing is not None:
                suffix = closing.marker if raw.endswith("\n") or not raw else "\n" + closing.marker
            rendered = prefix + raw + suffix
            overflow = units(rendered) - limit
            if overflow <= 0 or budget == 1:
                break
            budget = max(1, budget - overflow)
        pieces.append(Piece(rendered, closing is not None))
        start = end
    return pieces
