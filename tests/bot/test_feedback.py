"""Feedback on answers: the buttons, one vote per person sent to Trellis as the chat's owner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.helpers import ALICE, BOB, BOT_USER, CHANNEL, BotFactory, answered
from trellis_slack.bot.app import Bot
from trellis_slack.bot.feedback import (
    ALREADY,
    BROKEN,
    CHANGED,
    NO_ANSWER,
    THANKS,
    UNREADABLE,
    Feedback,
)
from trellis_slack.bot.lifecycle_status import Status
from trellis_slack.errors import (
    TrellisAPIError,
    TrellisAuthError,
    TrellisRateLimited,
    TrellisUnavailable,
)
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis
from trellis_slack.slack.blocks import (
    FEEDBACK_ACTION,
    Rendered,
    feedback,
    feedback_vote,
)
from trellis_slack.store.records import QuestionRecord
from trellis_slack.store.sqlite import SqliteStore
from trellis_slack.trellis.rest import Rating, TrellisRest
from trellis_slack.trellis.tokens import ApiKeyTokens, StaticToken

MENTION = f"<@{BOT_USER}>"
Q_TS, THREAD = "1700000000.000200", "1700000000.000100"

# --- the buttons (pure) ---------------------------------------------------------------------------


def test_the_block_is_slacks_feedback_buttons() -> None:
    """The block is a context_actions holding one feedback_buttons within Slack's limits."""
    block = feedback(Q_TS)
    assert block["type"] == "context_actions"
    assert "block_id" not in block
    (element,) = block["elements"]
    assert (element["type"], element["action_id"]) == ("feedback_buttons", FEEDBACK_ACTION)
    for key, rating in (("positive_button", "positive"), ("negative_button", "negative")):
        button = element[key]
        assert button["text"]["type"] == "plain_text"
        assert 0 < len(button["text"]["text"]) <= 75
        assert 0 < len(button["accessibility_label"]) <= 75
        assert feedback_vote(button["value"]) == (rating, Q_TS)
        assert len(button["value"]) <= 2000


@pytest.mark.parametrize("value", ["", "positive", "positive:", "meh:1.2", "1.2", "negative: "])
def test_a_value_that_is_no_vote_reads_as_none(value: str) -> None:
    """Only "<positive|negative>:<question ts>" is a vote."""
    assert feedback_vote(value) is None


# --- the handler, with small fakes ----------------------------------------------------------------


@dataclass
class Ephemerals:
    """Records what each person was shown."""

    shown: list[tuple[str, str, str, str | None]] = field(default_factory=list)

    async def ephemeral(self, channel: str, user: str, text: str, thread_ts: str | None) -> bool:
        self.shown.append((channel, user, text, thread_ts))
        return True

    @property
    def texts(self) -> list[str]:
        return [text for _, _, text, _ in self.shown]


@dataclass
class Ratings:
    """Trellis's feedback endpoint: records each rating; raises the queued refusals in turn."""

    sent: list[tuple[str, str, str]] = field(default_factory=list)
    refusals: list[BaseException] = field(default_factory=list)
    gate: asyncio.Event | None = None
    called: asyncio.Event = field(default_factory=asyncio.Event)

    async def feedback(
        self, token: str, message_id: str, rating: Rating, *, note: str | None = None
    ) -> None:
        self.sent.append((token, message_id, rating))
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.refusals:
            raise self.refusals.pop(0)


@dataclass
class Tokens:
    """One token per identity, named after it."""

    async def token_for(self, identity: str | None) -> str:
        return f"token-of-{identity}"


@dataclass
class Owners:
    """Conversation owner → Trellis identity (e-mail); "" is the shared identity."""

    emails: dict[str, str] = field(default_factory=lambda: {ALICE: "alice@example.com"})

    async def identity_of(self, owner_id: str) -> str | None:
        return self.emails.get(owner_id)


@dataclass
class Harness:
    feedback: Feedback
    slack: Ephemerals
    ratings: Ratings
    store: SqliteStore

    async def click(self, rating: str, *, user: str = BOB, question_ts: str = Q_TS) -> str:
        """A click on ``rating``; what the clicker was shown."""
        before = len(self.slack.shown)
        await self.feedback.on_click(
            channel_id=CHANNEL,
            message_ts="1700000000.000300",
            user_id=user,
            value=f"{rating}:{question_ts}",
            thread_ts=THREAD,
        )
        (shown,) = self.slack.shown[before:]
        assert shown[:2] == (CHANNEL, user)
        assert shown[3] == THREAD
        return shown[2]


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    store = await SqliteStore.open(":memory:")
    await store.add_question(
        QuestionRecord(CHANNEL, Q_TS, THREAD, ALICE, "orders?", "msg_q", Status.ANSWERED, ALICE)
    )
    await store.save_answer_message(CHANNEL, Q_TS, "msg_a")
    slack, ratings = Ephemerals(), Ratings()
    handler = Feedback(slack=slack, store=store, rest=ratings, tokens=Tokens(), identities=Owners())
    yield Harness(handler, slack, ratings, store)
    await store.close()


async def test_a_vote_goes_to_trellis_as_the_chats_owner(harness: Harness) -> None:
    """Bob's vote on Alice's answer is sent once, with Alice's token, and Bob is thanked."""
    assert await harness.click("positive") == THANKS["positive"]
    assert harness.ratings.sent == [("token-of-alice@example.com", "msg_a", "positive")]
    assert await harness.store.record_vote(CHANNEL, Q_TS, BOB, "positive") == "positive"


async def test_the_same_vote_again_is_not_sent_twice(harness: Harness) -> None:
    """Clicking the same button again is acknowledged without a second request to Trellis."""
    await harness.click("negative")
    assert await harness.click("negative") == ALREADY["negative"]
    assert len(harness.ratings.sent) == 1


async def test_a_changed_vote_sends_the_new_rating(harness: Harness) -> None:
    """Changing one's mind sends the new rating and says the vote was changed."""
    await harness.click("positive")
    assert await harness.click("negative") == CHANGED["negative"]
    assert [r[2] for r in harness.ratings.sent] == ["positive", "negative"]


async def test_each_person_has_a_vote(harness: Harness) -> None:
    """Another person's vote is their own: sent to Trellis too, and thanked as a first vote."""
    await harness.click("positive", user=BOB)
    assert await harness.click("positive", user=ALICE) == THANKS["positive"]
    assert len(harness.ratings.sent) == 2


@pytest.mark.parametrize(
    ("refusal", "words"),
    [
        (TrellisAPIError("gone", status=404), "does not know this answer"),
        (TrellisAPIError("bad", status=400), "HTTP 400"),
        (TrellisRateLimited("slow", retry_after=7), "Try again in 7 s"),
        (TrellisUnavailable("down"), "could not reach Trellis"),
        (TrellisAuthError("no"), "TRELLIS_API_KEY"),
    ],
)
async def test_a_refused_first_vote_is_explained_and_not_kept(
    harness: Harness, refusal: Exception, words: str
) -> None:
    """A refusal is explained to the clicker, and the vote is not kept (clicking again retries)."""
    harness.ratings.refusals.append(refusal)
    shown = await harness.click("positive")
    assert words in shown
    assert "not counted" in shown or "could not take" in shown
    assert await harness.click("positive") == THANKS["positive"]
    assert len(harness.ratings.sent) == 2


async def test_a_refused_change_keeps_the_vote_trellis_has(harness: Harness) -> None:
    """When Trellis refuses a changed vote, the earlier one (which Trellis holds) stays."""
    await harness.click("positive")
    harness.ratings.refusals.append(TrellisUnavailable("down"))
    assert "not counted" in await harness.click("negative")
    assert await harness.click("positive") == ALREADY["positive"]
    assert len(harness.ratings.sent) == 2


async def test_an_unexpected_failure_still_answers_and_keeps_nothing(harness: Harness) -> None:
    """A bug while sending is logged; the clicker still hears back and the vote is not kept."""
    harness.ratings.refusals.append(RuntimeError("boom"))
    assert await harness.click("negative") == BROKEN
    assert await harness.click("negative") == THANKS["negative"]


async def test_a_vote_on_an_answer_without_its_trellis_message(harness: Harness) -> None:
    """An answer whose Trellis message is unknown says so and asks Trellis nothing."""
    assert await harness.click("positive", question_ts="1700000000.000900") == NO_ANSWER
    assert harness.ratings.sent == []


async def test_a_click_without_a_vote_is_answered(harness: Harness) -> None:
    """A button value that is no vote is answered, not ignored, and nothing is sent."""
    await harness.feedback.on_click(
        channel_id=CHANNEL, message_ts=None, user_id=BOB, value="???", thread_ts=None
    )
    assert harness.slack.texts == [UNREADABLE]
    assert harness.ratings.sent == []


async def test_quick_double_clicks_send_one_vote(harness: Harness) -> None:
    """Two clicks of the same button before Trellis answers make one request, in order."""
    harness.ratings.gate = gate = asyncio.Event()

    async def click() -> None:
        await harness.feedback.on_click(
            channel_id=CHANNEL,
            message_ts=None,
            user_id=BOB,
            value=f"positive:{Q_TS}",
            thread_ts=THREAD,
        )

    async with asyncio.timeout(5):
        clicks = [asyncio.create_task(click()), asyncio.create_task(click())]
        await harness.ratings.called.wait()
        gate.set()
        await asyncio.gather(*clicks)
    assert harness.slack.texts == [THANKS["positive"], ALREADY["positive"]]
    assert len(harness.ratings.sent) == 1


# --- end to end: the real bot, the local Slack and Trellis ----------------------------------------


async def ask_and_wire(slack: FakeSlack, trellis: FakeTrellis, bot: Bot) -> tuple[str, str, str]:
    """Alice asks; the answer gets its Trellis message id and the buttons as the lead will wire them.

    Returns (question ts, the buttons' message ts, the Trellis assistant message id).
    """
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} how many orders?")
    await answered(slack, CHANNEL, ts, "You asked: how many orders?")
    assert bot.store is not None
    assert bot.bridge is not None
    (message,) = trellis.assistant_messages()
    # Until bot/turn.py saves it from the final ``message`` event and attaches the block:
    await bot.store.save_answer_message(CHANNEL, ts, message.id)
    posted = await bot.bridge.slack.post(
        CHANNEL, ts, Rendered(text="Was this helpful?", blocks=(feedback(ts),))
    )
    assert posted is not None
    return ts, posted, message.id


def feedback_for(bot: Bot, trellis: FakeTrellis, rest: TrellisRest) -> Feedback:
    """The handler wired as bot/app.py would wire it, against the running bot's parts."""
    assert bot.store is not None
    assert bot.bridge is not None
    settings = bot.settings
    tokens = (
        StaticToken(settings.trellis_token)
        if settings.trellis_token
        else ApiKeyTokens(rest, settings.trellis_api_key or "")
    )
    return Feedback(
        slack=bot.bridge.slack,
        store=bot.store,
        rest=rest,
        tokens=tokens,
        identities=bot.bridge.queue,
    )


async def click(
    slack: FakeSlack, handler: Feedback, message_ts: str, thread_ts: str, *, user: str, value: str
) -> str:
    """A person clicks a feedback button of the message, as the route will hand it on."""
    assert any(m["ts"] == message_ts for m in slack.bot_messages(CHANNEL, thread_ts))
    before = len(slack.ephemerals)
    await handler.on_click(
        channel_id=CHANNEL, message_ts=message_ts, user_id=user, value=value, thread_ts=thread_ts
    )
    (shown,) = slack.ephemerals[before:]
    assert (shown["user"], shown["thread_ts"]) == (user, thread_ts)
    return str(shown["text"])


@pytest.fixture
async def rest(trellis: FakeTrellis) -> AsyncIterator[TrellisRest]:
    client = TrellisRest(trellis.api_url)
    yield client
    await client.aclose()


async def test_end_to_end_votes_reach_trellis_once_per_person(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot, rest: TrellisRest
) -> None:
    """Clicks on an answer's buttons reach Trellis once per person and vote; changes follow."""
    ts, buttons_ts, message_id = await ask_and_wire(slack, trellis, bot)
    handler = feedback_for(bot, trellis, rest)
    block = feedback(ts)["elements"][0]
    up, down = block["positive_button"]["value"], block["negative_button"]["value"]
    assert await click(slack, handler, buttons_ts, ts, user=BOB, value=up) == THANKS["positive"]
    assert trellis.feedback_on(message_id) == {"feedback": "positive"}
    assert await click(slack, handler, buttons_ts, ts, user=BOB, value=up) == ALREADY["positive"]
    assert await click(slack, handler, buttons_ts, ts, user=ALICE, value=down) == THANKS["negative"]
    assert trellis.feedback_on(message_id) == {"feedback": "negative"}
    assert await click(slack, handler, buttons_ts, ts, user=BOB, value=down) == CHANGED["negative"]
    assert len(trellis.feedback_requests) == 3


async def test_end_to_end_per_user_votes_go_as_the_chats_owner(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory, rest: TrellisRest
) -> None:
    """With per-user identity Bob's vote on Alice's answer is sent as Alice, and Trellis takes it."""
    bot = await start_bot(TRELLIS_TOKEN="", TRELLIS_API_KEY="test-api-key")
    ts, buttons_ts, message_id = await ask_and_wire(slack, trellis, bot)
    handler = feedback_for(bot, trellis, rest)
    assert (
        await click(slack, handler, buttons_ts, ts, user=BOB, value=f"negative:{ts}")
        == THANKS["negative"]
    )
    assert trellis.feedback_on(message_id) == {"feedback": "negative"}
    ((sub, _, _),) = trellis.feedback_requests
    assert sub == trellis.members["alice@example.com"]


async def test_end_to_end_a_refusal_is_explained(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot, rest: TrellisRest
) -> None:
    """When Trellis no longer has the answer the clicker is told, and a later click asks again."""
    ts, buttons_ts, message_id = await ask_and_wire(slack, trellis, bot)
    handler = feedback_for(bot, trellis, rest)
    for chat in trellis.chats.values():
        chat.messages.clear()  # the chat was deleted in Trellis meanwhile
    shown = await click(slack, handler, buttons_ts, ts, user=BOB, value=f"positive:{ts}")
    assert "does not know this answer" in shown
    assert trellis.feedback_on(message_id) is None
    trellis.fail_next_rest(1, retry_after=4)
    assert "Try again in 4 s" in await click(
        slack, handler, buttons_ts, ts, user=BOB, value=f"positive:{ts}"
    )
