"""Tests for trellis_slack.slack.stream: batching, task cards, limits and a stream that dies."""

from __future__ import annotations

from typing import Any

from trellis_slack.errors import SlackRefused
from trellis_slack.slack.stream import MAX_MARKDOWN, NativeStream


class Recorder:
    """A `StreamCaller` that records calls; ``refuse`` names a method Slack refuses."""

    def __init__(self, refuse: str | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.refuse = refuse

    async def api_call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append((method, kwargs))
        if method == self.refuse:
            raise SlackRefused(method, "message_not_in_streaming_state")
        return {"ts": "1.0001"}


def markdown_per_call(calls: list[tuple[str, dict[str, Any]]]) -> list[int]:
    return [
        sum(len(c["text"]) for c in args.get("chunks", []) if c["type"] == "markdown_text")
        for _, args in calls
    ]


async def test_text_is_batched_and_no_call_carries_more_than_slack_takes() -> None:
    """30,000 characters go out in calls of at most 12,000, none lost, in order."""
    slack = Recorder()
    stream = NativeStream(
        slack, "C1", "1.0", recipient_user_id="U1", recipient_team_id="T1", interval=0
    )
    assert await stream.start(blocks=[]) == "1.0001"
    for _ in range(30):
        stream.text("x" * 1000)
    assert await stream.stop()
    sizes = markdown_per_call(slack.calls)
    assert max(sizes) <= MAX_MARKDOWN
    assert sum(sizes) == 30_000
    assert slack.calls[-1][0] == "chat.stopStream"


async def test_each_step_is_a_task_card_that_completes_when_the_next_starts() -> None:
    """Steps open task cards; the previous completes; stopping completes the last (error on failure)."""
    slack = Recorder()
    stream = NativeStream(
        slack, "D1", "1.0", recipient_user_id=None, recipient_team_id=None, interval=0
    )
    await stream.start(blocks=[])
    assert "recipient_user_id" not in slack.calls[0][1]  # a DM stream names no recipient
    stream.task("Thinking")
    stream.task("Running the query")
    await stream.stop(failed=True)
    tasks = [
        (c["id"], c["status"])
        for _, args in slack.calls
        for c in args.get("chunks", [])
        if c["type"] == "task_update"
    ]
    assert tasks == [
        ("step-1", "in_progress"),
        ("step-1", "complete"),
        ("step-2", "in_progress"),
        ("step-2", "error"),
    ]


async def test_a_stream_slack_stopped_taking_is_dead_and_says_so() -> None:
    """When Slack refuses an append, the stream is dead: stop reports it, nothing more is sent."""
    slack = Recorder(refuse="chat.appendStream")
    stream = NativeStream(
        slack, "C1", "1.0", recipient_user_id="U1", recipient_team_id="T1", interval=0
    )
    await stream.start(blocks=[])
    stream.text("x" * (MAX_MARKDOWN + 10))
    assert not await stream.stop()
    assert stream.dead
    assert [m for m, _ in slack.calls].count("chat.stopStream") == 0


async def test_a_refused_start_returns_none() -> None:
    """A workspace that cannot stream: start says so with None, for the caller to fall back."""
    slack = Recorder(refuse="chat.startStream")
    stream = NativeStream(slack, "C1", "1.0", recipient_user_id="U1", recipient_team_id="T1")
    assert await stream.start(blocks=[]) is None
