"""End to end: the feedback buttons under an answer reach Trellis, once per person and vote."""

from __future__ import annotations

from tests.helpers import ALICE, BOB, BOT_USER, CHANNEL, answered, body
from trellis_slack.bot.app import Bot
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, answer

MENTION = f"<@{BOT_USER}>"


def patches(trellis: FakeTrellis) -> list[str]:
    """The ratings Trellis was sent, in order."""
    return [str(b["feedback"]) for _, _, b in trellis.feedback_requests if isinstance(b, dict)]


async def test_a_vote_reaches_trellis_once_and_can_be_changed(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """👍 is sent to Trellis and acknowledged privately; 👍 again sends nothing; 👎 changes it."""
    trellis.responder = lambda q: answer("Revenue was 1,234.")
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} revenue?")
    [message] = [m for m in await answered(slack, CHANNEL, ts, "Revenue was") if "1,234" in body(m)]
    await slack.feedback(CHANNEL, message["ts"], "positive", user=ALICE)
    await slack.wait_for(lambda: patches(trellis) == ["positive"] or None)
    await slack.wait_for(
        lambda: (
            [e for e in slack.ephemerals if e["user"] == ALICE and "helped" in e["text"]] or None
        )
    )
    await slack.feedback(CHANNEL, message["ts"], "positive", user=ALICE)
    await slack.wait_for(
        lambda: len([e for e in slack.ephemerals if e["user"] == ALICE]) >= 2 or None
    )
    assert patches(trellis) == ["positive"]  # the same vote again asks Trellis nothing
    await slack.feedback(CHANNEL, message["ts"], "negative", user=ALICE)
    await slack.wait_for(lambda: patches(trellis) == ["positive", "negative"] or None)
    [(_, message_id, _)] = trellis.feedback_requests[:1]
    assert trellis.feedback_on(message_id) == {"feedback": "negative"}


async def test_each_person_has_their_own_vote(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Bob's vote is his own: Alice's earlier vote does not make his a repeat."""
    trellis.responder = lambda q: answer("Orders: 42.")
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} orders?")
    [message] = [m for m in await answered(slack, CHANNEL, ts, "Orders: 42.") if "42" in body(m)]
    await slack.feedback(CHANNEL, message["ts"], "positive", user=ALICE)
    await slack.wait_for(lambda: patches(trellis) == ["positive"] or None)
    await slack.feedback(CHANNEL, message["ts"], "positive", user=BOB)
    await slack.wait_for(lambda: [e for e in slack.ephemerals if e["user"] == BOB] or None)
    assert patches(trellis) == ["positive", "positive"]
