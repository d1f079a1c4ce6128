"""Tests for trellis_slack.fakes.slack_content: what the fake Slack refuses in a message, without I/O."""

from __future__ import annotations

from typing import Any

from trellis_slack.fakes.slack_content import (
    block_problems,
    content_failure,
    find_action,
    first_link,
    rich_text_blocks,
    with_block_ids,
)


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def test_valid_blocks_have_no_problems() -> None:
    """A section, a divider and a context within limits pass."""
    blocks = [
        section("hello"),
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "chat_1"}]},
    ]
    assert block_problems(blocks) == []


def test_each_limit_is_reported_with_its_json_pointer() -> None:
    """Unknown types, long sections and duplicate block ids are each named where they are."""
    problems = block_problems(
        [
            {"type": "carousel"},
            section("x" * 3_001),
            section("a", block_id="b1"),
            section("b", block_id="b1"),
        ]
    )
    assert problems == [
        "[ERROR] unsupported type: carousel [json-pointer:/blocks/0/type]",
        "[ERROR] must be less than 3001 characters [json-pointer:/blocks/1/text/text]",
        "[ERROR] duplicate block_id [json-pointer:/blocks/3/block_id]",
    ]


def test_message_wide_limits() -> None:
    """More than 50 blocks, two tables or too much markdown text are refused for the message."""
    assert any("no more than 50 items" in p for p in block_problems([section("a")] * 51))
    table = {"type": "table", "rows": [[{"type": "raw_text", "text": "a"}]]}
    assert any("only one table" in p for p in block_problems([table, table]))
    markdown = [{"type": "markdown", "text": "x" * 6_001}] * 2
    assert any("exceed 12000" in p for p in block_problems(markdown))
    assert block_problems([section("a")] * 60, max_blocks=100) == []


def test_content_failure_is_slacks_error_code() -> None:
    """No content is no_text, over 40,000 characters is msg_too_long, bad blocks invalid_blocks."""
    assert content_failure(None, None, None) is not None
    assert content_failure("", None, None).error == "no_text"  # type: ignore[union-attr]
    assert content_failure("x" * 40_001, None, None).error == "msg_too_long"  # type: ignore[union-attr]
    failure = content_failure("hi", [{"type": "nope"}], None)
    assert failure is not None
    assert failure.error == "invalid_blocks"
    assert failure.messages
    assert content_failure("hi", [section("ok")], None) is None


def test_stored_blocks_get_block_ids_and_the_original_is_untouched() -> None:
    """Slack gives every stored block a block_id; the bot's own list is not changed."""
    blocks = [section("a"), section("b", block_id="mine")]
    stored = with_block_ids(blocks)
    assert all(block.get("block_id") for block in stored)
    assert stored[1]["block_id"] == "mine"
    assert "block_id" not in blocks[0]


def test_typed_text_becomes_rich_text_with_mentions_and_links() -> None:
    """A person's message carries rich_text elements for text, the mention and the link."""
    [block] = rich_text_blocks("hi <@U0BOT> see <https://example.com|this>")
    elements = block["elements"][0]["elements"]
    assert [e["type"] for e in elements] == ["text", "user", "text", "link"]
    assert elements[1]["user_id"] == "U0BOT"
    assert first_link("see <https://example.com|this>") == "https://example.com"


def test_find_action_looks_in_elements_and_accessories() -> None:
    """A button is found by action_id in an actions block or as a section's accessory."""
    button = {"type": "button", "action_id": "stop", "text": {"type": "plain_text", "text": "S"}}
    blocks = [section("a", block_id="s", accessory=button)]
    assert find_action(blocks, "stop") == ("s", button)
    assert find_action([{"type": "actions", "block_id": "x", "elements": [button]}], "stop")
    assert find_action(blocks, "retry") is None
