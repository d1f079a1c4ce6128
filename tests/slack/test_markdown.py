"""Tests for trellis_slack.slack.markdown: Markdown answers to Slack messages within limits."""

from __future__ import annotations

import re
from typing import Any

import pytest

from trellis_slack.slack.markdown import (
    EMPTY_ANSWER,
    SlackMessage,
    answer_messages,
    escape_mrkdwn,
    mrkdwn_section,
    plain_text,
    streaming_preview,
)

FOOTER: dict[str, Any] = {"type": "context", "elements": [{"type": "mrkdwn", "text": "chat_1"}]}
FENCE_LINE = re.compile(r" {0,3}(`{3,}|~{3,}).*")


def units(text: str) -> int:
    """Length in UTF-16 code units (what the module promises to stay under)."""
    return len(text.encode("utf-16-le")) // 2


def markdown_texts(message: SlackMessage) -> list[str]:
    return [block["text"] for block in message.blocks if block["type"] == "markdown"]


def joined(messages: list[SlackMessage]) -> str:
    return "".join(text for message in messages for text in markdown_texts(message))


def without_fence_lines(text: str) -> list[str]:
    """The text's lines with fence lines dropped, so added close/reopen lines do not count."""
    return [line for line in text.split("\n") if not FENCE_LINE.fullmatch(line)]


def fences_balanced(text: str) -> bool:
    """Whether every fenced code block opened in `text` is closed in it."""
    marker: str | None = None
    for line in text.split("\n"):
        match = FENCE_LINE.fullmatch(line)
        if match is None:
            continue
        run = match.group(1)
        if marker is None:
            marker = run
        elif run[0] == marker[0] and len(run) >= len(marker) and line.strip() == run:
            marker = None
    return marker is None


def assert_within_limits(messages: list[SlackMessage]) -> None:
    for message in messages:
        assert sum(units(text) for text in markdown_texts(message)) <= 12_000
        assert len(message.blocks) <= 50
        assert 0 < units(message.text) <= 3_900
        assert all(text.strip() for text in markdown_texts(message))


def long_answer(size: int) -> str:
    """Paragraphs of several lines of sentences adding up to about `size` characters."""
    paragraphs = []
    total = 0
    number = 0
    while total < size:
        sentence = f"Paragraph {number} says revenue grew {number % 17}% in region {number % 5}."
        lines = [" ".join([sentence] * (1 + line % 3)) for line in range(2 + number % 7)]
        paragraph = "\n".join(lines)
        paragraphs.append(paragraph)
        total += len(paragraph) + 2
        number += 1
    return "\n\n".join(paragraphs)


def test_short_answer_is_one_markdown_message() -> None:
    """A short answer goes out unchanged as one message with one markdown block."""
    messages = answer_messages("Revenue grew **12%** in Q3.")
    assert messages == [
        SlackMessage(
            text="Revenue grew 12% in Q3.",
            blocks=({"type": "markdown", "text": "Revenue grew **12%** in Q3."},),
        )
    ]


def test_long_answer_splits_without_losing_a_character() -> None:
    """A 40,000-character answer becomes several messages whose text re-joins to the original."""
    answer = long_answer(40_000)
    assert len(answer) >= 40_000
    messages = answer_messages(answer)
    assert len(messages) >= 4
    assert joined(messages) == answer
    assert_within_limits(messages)


def test_long_answer_splits_at_paragraph_boundaries() -> None:
    """Each message but the last ends at a paragraph break, not in mid-sentence."""
    messages = answer_messages(long_answer(40_000))
    for message in messages[:-1]:
        assert markdown_texts(message)[0].endswith(".\n\n")


def test_code_fence_cut_by_split_is_closed_and_reopened() -> None:
    """A code block spanning a split is closed in one message and reopened with its language."""
    code = "\n".join(f"total_{i} = sales[region == {i}].sum()  # per region" for i in range(600))
    answer = f"Here is the query:\n\n```python\n{code}\n```\n\nThat is all."
    messages = answer_messages(answer)
    assert len(messages) >= 3
    texts = [markdown_texts(message)[0] for message in messages]
    for text in texts:
        assert fences_balanced(text), text[-200:]
    for text in texts[1:]:
        assert text.startswith("```python\n")
    assert without_fence_lines(joined(messages)) == without_fence_lines(answer)
    assert_within_limits(messages)


def test_fence_closing_counts_toward_the_limit() -> None:
    """A piece filling the limit exactly inside a code block still fits once its fence is closed."""
    answer = "```\n" + "abc\n" * 5_000 + "```"
    messages = answer_messages(answer)
    assert len(messages) == 2
    assert all(fences_balanced(markdown_texts(message)[0]) for message in messages)
    assert without_fence_lines(joined(messages)) == without_fence_lines(answer)
    assert_within_limits(messages)


def test_unclosed_fence_in_answer_is_closed() -> None:
    """An answer whose last code block was never closed still renders a balanced block."""
    [message] = answer_messages("Look:\n\n```python\nprint(1)")
    assert markdown_texts(message) == ["Look:\n\n```python\nprint(1)\n```"]


def test_markdown_table_becomes_aligned_code_block() -> None:
    """A Markdown table is shown as a code block with aligned columns, alignment kept."""
    answer = (
        "Sales:\n\n| Region | Sales |\n|:---|---:|\n| North | 1,234,000 |\n"
        "| South **big** | 987,500 |\n\nDone."
    )
    [message] = answer_messages(answer)
    assert markdown_texts(message) == [
        "Sales:\n\n```\n"
        "Region    |     Sales\n"
        "----------+----------\n"
        "North     | 1,234,000\n"
        "South big |   987,500\n"
        "```\n\nDone."
    ]


def test_table_inside_code_fence_is_left_alone() -> None:
    """Pipes inside an existing code block are not mistaken for a table."""
    answer = "```\n| a | b |\n|---|---|\n| 1 | 2 |\n```"
    [message] = answer_messages(answer)
    assert markdown_texts(message) == [answer]


def test_table_with_wide_characters_and_extra_cells_keeps_everything() -> None:
    """Wide CJK cells align by display width and cells beyond the header are kept."""
    answer = "| 都市 | n |\n|---|---|\n| 東京 | 5 | extra |\n| Oslo | 12 |"
    [message] = answer_messages(answer)
    assert markdown_texts(message) == [
        "```\n都市 | n  |\n-----+----+------\n東京 | 5  | extra\nOslo | 12 |\n```"
    ]


def test_huge_table_is_split_with_fences_balanced() -> None:
    """A table too long for one message continues in the next, still inside a code block."""
    rows = "\n".join(f"| row {i} | {i * 37} |" for i in range(1_500))
    messages = answer_messages(f"| name | value |\n|---|---|\n{rows}")
    assert len(messages) >= 2
    for message in messages:
        assert fences_balanced(markdown_texts(message)[0])
    assert "row 1499" in joined(messages)
    assert_within_limits(messages)


def test_footer_goes_on_last_message_only() -> None:
    """The footer block is attached to the last message and to no other."""
    messages = answer_messages(long_answer(30_000), footer=FOOTER)
    assert len(messages) >= 3
    assert messages[-1].blocks[-1] == FOOTER
    for message in messages[:-1]:
        assert FOOTER not in message.blocks
    assert_within_limits(messages)


@pytest.mark.parametrize("answer", ["", "   \n\n\t  "])
def test_empty_answer_says_so(answer: str) -> None:
    """An empty or blank answer gives one message saying the answer was empty, with the footer."""
    [message] = answer_messages(answer, footer=FOOTER)
    assert message.blocks == ({"type": "markdown", "text": EMPTY_ANSWER}, FOOTER)
    assert message.text == "The answer was empty."


def test_unicode_and_emoji_survive_splitting() -> None:
    """Emoji, accents and CJK text survive a split intact and count double where Slack might."""
    paragraph = "Umsätze 📈 stiegen 👩‍👩‍👧 um 12 % — 東京の売上 🇯🇵 naïve café. " * 40
    answer = "\n\n".join([paragraph.strip()] * 12)
    messages = answer_messages(answer)
    assert len(messages) >= 2
    assert joined(messages) == answer
    assert_within_limits(messages)


def test_single_paragraph_longer_than_limit_splits_at_lines_then_words() -> None:
    """A paragraph over 12,000 characters is split at line breaks, else between words."""
    lines = "\n".join(f"line {i} of a very long list without any blank line" for i in range(500))
    messages = answer_messages(lines)
    assert len(messages) >= 2
    assert joined(messages) == lines
    for message in messages[:-1]:
        assert markdown_texts(message)[0].endswith("\n")
    words = " ".join(f"word{i}" for i in range(4_000))
    messages = answer_messages(words)
    assert len(messages) >= 2
    assert joined(messages) == words
    for message in messages[:-1]:
        assert markdown_texts(message)[0].endswith(" ")
    assert_within_limits(messages)


def test_word_longer_than_limit_is_cut_without_splitting_an_emoji() -> None:
    """A 30,000-character run with no spaces is cut, never between an emoji and its modifier."""
    run = "x" + "👍🏽" * 15_000
    messages = answer_messages(run)
    assert joined(messages) == run
    for message in messages:
        text = markdown_texts(message)[0]
        assert not text.startswith("🏽")
    assert_within_limits(messages)


def test_plain_text_drops_markdown_syntax() -> None:
    """The notification text reads as words: no #, **, backticks or link syntax; code kept."""
    markdown = (
        "# Result\n\n**Sales** grew _a lot_ in `north_region`; "
        "see [the report](https://x.io/r).\n\n"
        "- one\n* two\n\n> quoted\n\n---\n\n```sql\nSELECT 1;\n```\n\nsnake_case_stays ~~old~~"
    )
    assert plain_text(markdown) == (
        "Result\n\nSales grew a lot in north_region; see the report (https://x.io/r).\n\n"
        "• one\n• two\n\nquoted\n\nSELECT 1;\n\nsnake_case_stays old"
    )


def test_plain_text_escapes_and_respects_limit() -> None:
    """The fallback text is mrkdwn-escaped and cut with "…" at a word boundary within the limit."""
    assert plain_text("a < b & c > d") == "a &lt; b &amp; c &gt; d"
    text = plain_text("word & " * 1_000, limit=100)
    assert len(text) <= 100
    assert text.endswith("…")
    assert re.fullmatch(r"(word &amp; )*word( &amp;)?…", text), text


def test_plain_text_cut_never_splits_an_escape() -> None:
    """A cut through escaped text without spaces stops before an entity, not inside it."""
    assert plain_text("&" * 100, limit=20) == "&amp;" * 3 + "…"


def test_escape_mrkdwn_escapes_three_characters() -> None:
    """Only &, < and > are escaped, ampersand first so nothing is double-escaped."""
    assert escape_mrkdwn("<@U1> & <!channel> *bold*") == "&lt;@U1&gt; &amp; &lt;!channel&gt; *bold*"


def test_mrkdwn_section_splits_and_never_cuts() -> None:
    """Long mrkdwn becomes sections of at most 3,000 characters holding every word."""
    text = "\n".join(f"*Row {i}*: value &amp; more text here" for i in range(300))
    blocks = mrkdwn_section(text)
    assert len(blocks) >= 4
    pieces = [block["text"]["text"] for block in blocks]
    assert all(block["type"] == "section" and block["text"]["type"] == "mrkdwn" for block in blocks)
    assert all(len(piece) <= 3_000 for piece in pieces)
    assert "\n".join(pieces) == text


def test_mrkdwn_section_short_and_blank() -> None:
    """Short text is one section; blank text gives no block at all (an empty section is invalid)."""
    assert mrkdwn_section("hi *there*") == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "hi *there*"}}
    ]
    assert mrkdwn_section(" \n ") == []


def test_mrkdwn_section_forced_cut_keeps_entities_and_links_whole() -> None:
    """A run without spaces is cut before an &amp; or a <link|label>, never through one."""
    text = "x" * 2_996 + "&amp;" + "y" * 10
    pieces = [block["text"]["text"] for block in mrkdwn_section(text)]
    assert pieces == ["x" * 2_996, "&amp;" + "y" * 10]
    text = "x" * 2_990 + "<https://x.io|report>"
    pieces = [block["text"]["text"] for block in mrkdwn_section(text)]
    assert pieces == ["x" * 2_990, "<https://x.io|report>"]


def test_streaming_preview_closes_open_fence_and_marks_progress() -> None:
    """A half-streamed code block is closed so the message stays valid, with a "…" marker."""
    preview = streaming_preview("Query:\n\n```sql\nSELECT region")
    assert markdown_texts(preview) == ["Query:\n\n```sql\nSELECT region\n```\n…"]
    assert preview.text == "Query:\n\nSELECT region …"


def test_streaming_preview_of_long_text_keeps_the_start_within_limits() -> None:
    """A stream past 12,000 characters previews its start, within the limit, ending in "…"."""
    answer = long_answer(30_000)
    preview = streaming_preview(answer)
    [text] = markdown_texts(preview)
    assert units(text) <= 12_000
    assert text.endswith("…")
    assert answer.startswith(text[:-2])
    assert units(preview.text) <= 3_900


@pytest.mark.parametrize("so_far", ["", "  ", "```", "| a | b |\n|--"])
def test_streaming_preview_is_never_invalid(so_far: str) -> None:
    """Empty or half-formed streamed text still gives a non-empty, balanced message."""
    preview = streaming_preview(so_far)
    [text] = markdown_texts(preview)
    assert text.strip()
    assert fences_balanced(text)
    assert preview.text.strip()
