"""End to end: Trellis's open-chat cap never fails a question, and retired threads say why."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.helpers import (
    ALICE,
    BOB,
    BOT_USER,
    CHANNEL,
    BotFactory,
    answered,
    body,
    buttons,
    questions,
)
from trellis_slack.bot.app import Bot
from trellis_slack.bot.chats import RETIRED_FOLLOW_UP
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_script import echo
from trellis_slack.fakes.trellis_server import FakeTrellis, Step, Version
from trellis_slack.slack.blocks import RETRY_ACTION

MENTION = f"<@{BOT_USER}>"
CAP = 3


@pytest.fixture
async def trellis(request: pytest.FixtureRequest) -> AsyncIterator[FakeTrellis]:
    """A fake Trellis with a small open-chat cap (the seed version when parametrized so)."""
    version: Version = "seed" if getattr(request, "param", "current") == "seed" else "current"
    async with FakeTrellis(version=version, max_open_chats=CAP, refuse_past_cap=True) as server:
        yield server


def texts(slack: FakeSlack, thread_ts: str) -> list[str]:
    return [body(m) for m in slack.bot_messages(CHANNEL, thread_ts)]


async def new_threads(slack: FakeSlack, count: int, start: int = 1) -> list[str]:
    """Ask ``count`` questions, each in a new thread, one after another; their thread ts."""
    threads = []
    for n in range(start, start + count):
        ts = await slack.post(CHANNEL, ALICE, f"{MENTION} question {n}")
        await answered(slack, CHANNEL, ts, f"You asked: question {n}")
        threads.append(ts)
    return threads


async def test_the_4th_10th_and_50th_new_thread_are_answered(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """With one shared token and a cap of 3, every new thread is answered, never refused."""
    threads = await new_threads(slack, 50)
    assert len(threads) == 50
    for ts in threads:
        assert not any("open chats" in t for t in texts(slack, ts))
    assert len(trellis.chats) <= CAP
    assert len(trellis.deleted_chats) >= 50 - CAP
    assert sum(trellis.cap_refusals.values()) >= 1


async def test_a_follow_up_in_a_retired_thread_starts_afresh_and_says_so(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """The follow-up gets a new chat and one line saying the earlier part is gone."""
    first, *_ = await new_threads(slack, CAP + 1)  # the 4th retired the first thread's chat
    old_chat = questions(trellis)[0]["chat_id"]
    assert old_chat not in trellis.chats
    await slack.post(CHANNEL, ALICE, "and by region?", thread_ts=first)
    await answered(slack, CHANNEL, first, "You asked: and by region?")
    assert sum(RETIRED_FOLLOW_UP in t for t in texts(slack, first)) == 1
    follow_up = questions(trellis)[-1]
    assert follow_up["message"] == "and by region?"
    assert follow_up["chat_id"] not in (None, old_chat)
    # The thread is live again: a second follow-up continues the new chat, without the line.
    await slack.post(CHANNEL, ALICE, "and by month?", thread_ts=first)
    await answered(slack, CHANNEL, first, "You asked: and by month?")
    assert questions(trellis)[-1]["chat_id"] == follow_up["chat_id"]
    assert sum(RETIRED_FOLLOW_UP in t for t in texts(slack, first)) == 1


async def test_an_edit_in_a_retired_thread_changes_nothing_in_trellis(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Editing a question whose chat was retired sends nothing to Trellis and says why."""
    first, *_ = await new_threads(slack, CAP + 1)
    sent = len(trellis.received)
    await slack.edit(CHANNEL, first, f"{MENTION} question 1, edited")
    await slack.wait_for(
        lambda: [t for t in texts(slack, first) if "was edited" in t and "no longer" in t] or None
    )
    assert not trellis.actions("edit_message")
    assert len(trellis.received) == sent


async def test_a_deletion_in_a_retired_thread_changes_nothing_in_trellis(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Deleting a question whose chat was retired deletes nothing in Trellis and says why."""
    first, *_ = await new_threads(slack, CAP + 1)
    await slack.post(CHANNEL, ALICE, "one more", thread_ts=first)  # keeps the thread visible
    await answered(slack, CHANNEL, first, "You asked: one more")
    await slack.delete(CHANNEL, first)
    await slack.wait_for(
        lambda: [t for t in texts(slack, first) if "was deleted" in t and "no longer" in t] or None
    )
    assert not trellis.actions("delete_message")


async def test_per_user_identities_retire_only_their_own_chats(
    slack: FakeSlack, trellis: FakeTrellis, start_bot: BotFactory
) -> None:
    """With TRELLIS_API_KEY each person has their own cap: Alice's threads never retire Bob's."""
    await start_bot(TRELLIS_TOKEN="", TRELLIS_API_KEY="test-api-key")
    bob_ts = await slack.post(CHANNEL, BOB, f"{MENTION} bob's question")
    await answered(slack, CHANNEL, bob_ts, "You asked: bob's question")
    bobs_chat = questions(trellis)[0]["chat_id"]
    await new_threads(slack, CAP + 3)
    assert bobs_chat in trellis.chats
    alice = trellis.members["alice@example.com"]
    assert all(sub == alice for sub, _ in trellis.deleted_chats)
    assert len(trellis.open_chats(alice)) <= CAP


@pytest.mark.parametrize("trellis", ["seed"], indirect=True)
async def test_the_seed_version_refusing_a_new_chat_is_handled_the_same(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A seed refusal retires the least recently used threads and asks once more.

    The seed has no REST API to delete chats with, so its cap stays full and the second
    refusal is shown; the retired thread then starts afresh and says so.
    """
    first, *_ = await new_threads(slack, CAP)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} one too many")
    await slack.wait_for(lambda: [t for t in texts(slack, ts) if "open chats" in t] or None)
    tries = [q for q in questions(trellis) if q["message"] == "one too many"]
    assert len(tries) == 2
    assert all(q.get("chat_id") is None for q in tries)
    assert trellis.cap_refusals == {"member-shared": 2}
    await slack.post(CHANNEL, ALICE, "still there?", thread_ts=first)
    await slack.wait_for(lambda: [t for t in texts(slack, first) if RETIRED_FOLLOW_UP in t] or None)


async def test_without_anything_to_retire_the_refusal_is_explained(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """When the cap is full of chats the bridge did not create, the refusal is shown."""
    for n in range(CAP):
        trellis.create_chat("member-shared", f"outside {n}", None)
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} anything")
    async with asyncio.timeout(10):
        await slack.wait_for(lambda: [t for t in texts(slack, ts) if "open chats" in t] or None)
    assert not trellis.deleted_chats


async def test_retry_in_a_retired_thread_asks_afresh_in_a_new_chat(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Retry of a failure whose chat was since retired asks again in a new chat, not by an edit."""
    trellis.responder = lambda q: [Step.error("The query timed out.", retryable=True)]
    first = await slack.post(CHANNEL, ALICE, f"{MENTION} question 1")
    [failed] = await slack.wait_for(
        lambda: (
            [m for m in slack.bot_messages(CHANNEL, first) if RETRY_ACTION in buttons(m)] or None
        )
    )
    trellis.responder = echo
    await new_threads(slack, CAP, start=2)  # the first thread's chat is the least recently used
    old_chat = questions(trellis)[0]["chat_id"]
    assert old_chat not in trellis.chats
    await slack.click(CHANNEL, failed["ts"], RETRY_ACTION, user=ALICE)
    await answered(slack, CHANNEL, first, "You asked: question 1")
    assert not trellis.actions("edit_message")
    retried = questions(trellis)[-1]
    assert retried["message"] == "question 1"
    assert retried["chat_id"] not in (None, old_chat)
