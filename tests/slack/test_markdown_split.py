"""Tests for trellis_slack.slack.markdown_split: cutting Markdown within a limit, without sockets."""

from __future__ import annotations

import itertools

import pytest

from trellis_slack.slack.markdown_split import (
    Ruler,
    joins_previous,
    offset_lines,
    open_marker,
    split_markdown,
    split_point,
    units,
)


def test_units_count_characters_outside_the_bmp_twice() -> None:
    """An emoji outside the BMP takes two UTF-16 units, a letter or an accented one takes one."""
    assert units("aé") == 2
    assert units("a😀") == 3


def test_ruler_reaches_as_far_as_the_budget_allows() -> None:
    """The ruler never lets a budget end in the middle of a two-unit character."""
    ruler = Ruler("ab😀cd")
    assert ruler.reach(0, 2) == 2
    assert ruler.reach(0, 3) == 2
    assert ruler.reach(0, 4) == 3


@pytest.mark.parametrize(
    ("text", "budget", "end"),
    [
        ("one two\nthree four\n\nfive six", 24, 20),  # after the blank line
        ("one two\nthree four five", 20, 8),  # after the line break
        ("one two three", 10, 8),  # after the space
        ("abcdefghij", 4, 4),  # a word longer than the budget is cut
        ("short", 100, 5),  # everything fits
    ],
)
def test_split_point_prefers_paragraphs_then_lines_then_words(
    text: str, budget: int, end: int
) -> None:
    """A piece ends at the last paragraph break that fits, else the last line break, else space."""
    assert split_point(text, 0, budget, Ruler(text)) == end


def test_a_forced_cut_keeps_an_emoji_with_its_skin_tone() -> None:
    """A cut inside a word never separates a character from the modifier that follows it."""
    text = "ab👍🏽cd"
    assert joins_previous(text, text.index("🏽"))
    end = split_point(text, 0, 4, Ruler(text))
    assert not joins_previous(text, end)


def test_open_marker_follows_commonmark() -> None:
    """A fence opens with three backticks or tildes; a backtick fence's info has no backtick."""
    assert open_marker("```python") == "```"
    assert open_marker("~~~~") == "~~~~"
    assert open_marker("``` a`b") is None
    assert open_marker("    ```") is None


def test_offset_lines_give_where_each_line_starts() -> None:
    """Each line comes with its offset in the text, splitting on newlines only."""
    assert offset_lines("a\r\nbc\n") == [(0, "a\r"), (3, "bc"), (6, "")]


def test_split_markdown_closes_and_reopens_a_fence_it_cuts() -> None:
    """A code block cut by the split is closed in one piece and reopened in the next."""
    code = "\n".join(f"line {i}" for i in range(40))
    text = f"Intro.\n\n```sql\n{code}\n```\nOutro."
    pieces = split_markdown(text, 120)
    assert len(pieces) > 2
    assert all(units(piece.rendered) <= 120 for piece in pieces)
    assert any(piece.ends_in_fence for piece in pieces)
    for before, after in itertools.pairwise(pieces):
        if before.ends_in_fence:
            assert before.rendered.endswith("\n```")
            assert after.rendered.startswith("```sql\n")
    assert not pieces[-1].ends_in_fence
    assert pieces[-1].rendered.endswith("Outro.")


def test_split_markdown_loses_no_text() -> None:
    """Without fences, the pieces joined are the text itself."""
    text = " ".join(f"word{i}" for i in range(500))
    pieces = split_markdown(text, 100)
    assert "".join(piece.rendered for piece in pieces) == text
