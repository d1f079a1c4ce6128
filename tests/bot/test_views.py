"""Tests for trellis_slack.bot.views: Slack's status line, and the two ways an answer shows."""

from __future__ import annotations

from tests.bot.fakes import slack_io
from tests.helpers import ALICE, CHANNEL
from trellis_slack.bot.views import EditedView, StatusLine, StreamedView, open_view
from trellis_slack.fakes.slack_server import FakeSlack


def set_status_calls(slack: FakeSlack) -> list[str]:
    return [str(c.args.get("status")) for c in slack.calls_to("assistant.threads.setStatus")]


async def test_the_status_line_is_re_sent_before_slack_drops_it_and_cleared_at_the_end(
    slack: FakeSlack,
) -> None:
    """While nothing shows, the status is sent again (Slack clears it after 2 min); then cleared."""
    root = await slack.post(CHANNEL, ALICE, "question")
    async with slack_io(slack) as shell:
        status = StatusLine(shell, CHANNEL, root, refresh=0.01, after=0.0)
        await status.show()
        await slack.wait_for(lambda: len(set_status_calls(slack)) >= 3 or None)
        status.stop_refreshing()
        sent = len(set_status_calls(slack))
        await status.hide()
    assert set_status_calls(slack)[sent:] == [""]
    assert slack.status(CHANNEL, root) == ""


async def test_a_view_is_a_stream_when_slack_streams_and_an_edited_message_otherwise(
    slack: FakeSlack,
) -> None:
    """Native: a stream under the status line; refused: a working message, edited."""
    root = await slack.post(CHANNEL, ALICE, "question")
    async with slack_io(slack) as shell:
        kwargs = {
            "channel": CHANNEL,
            "thread_ts": root,
            "question_ts": root,
            "recipient": (ALICE, "T0TEAM"),
            "interval": 0.0,
            "status_after": 0.0,
        }
        streamed = await open_view(shell, native=True, **kwargs)  # type: ignore[arg-type]
        assert isinstance(streamed, StreamedView)
        assert slack.status(CHANNEL, root)  # the status line shows until the first piece
        await streamed.close()
        slack.refuse_streams(CHANNEL)
        edited = await open_view(shell, native=True, **kwargs)  # type: ignore[arg-type]
        assert isinstance(edited, EditedView)
        plain = await open_view(shell, native=False, **kwargs)  # type: ignore[arg-type]
        assert isinstance(plain, EditedView)
    assert len(slack.streams(CHANNEL, root)) == 1


async def test_no_status_is_set_when_something_shows_at_once(slack: FakeSlack) -> None:
    """The status waits a moment: an answer that shows a step at once costs no status call."""
    root = await slack.post(CHANNEL, ALICE, "question")
    async with slack_io(slack) as shell:
        status = StatusLine(shell, CHANNEL, root, after=60.0)
        await status.show()
        status.stop_refreshing()  # the first piece came
        await status.hide()
    assert set_status_calls(slack) == []
