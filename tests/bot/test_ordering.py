"""End to end: every question in a thread is answered exactly once, in the order it was asked."""

from __future__ import annotations

import asyncio
import re

from tests.helpers import (
    ALICE,
    BOB,
    BOT_USER,
    CHANNEL,
    answered,
    body,
    buttons,
    questions,
    replies,
)
from trellis_slack.bot.app import Bot
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Question, Step, answer
from trellis_slack.slack.blocks import RETRY_ACTION

MENTION = f"<@{BOT_USER}>"
ANSWER = re.compile(r"You asked: (?:@\w+ )?(t\d+ q\d)")


def asked_in_order(trellis: FakeTrellis, thread: int) -> list[str]:
    """The questions of one thread, in the order Trellis received them."""
    prefix = f"t{thread} "
    texts = [str(q["message"]).removeprefix("@bob ") for q in questions(trellis)]
    return [t for t in texts if t.startswith(prefix)]


def live_charts(slack: FakeSlack) -> list[str]:
    """The chart files the bot uploaded and has not deleted."""
    return [f.id for f in slack.files.values() if f.name.endswith(".png") and not f.deleted]


def answers_in_thread(slack: FakeSlack, ts: str) -> list[str]:
    """The answers shown in one thread, top to bottom."""
    return [m.group(1) for m in (ANSWER.search(body(r)) for r in replies(slack, CHANNEL, ts)) if m]


async def test_fast_follow_ups_are_each_answered_once_in_order(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """30 threads, each a question and two follow-ups sent at once: 90 answers, each in order.

    People type fast, and Slack delivers a backlog at once after a reconnect. The root question
    mentions someone else in some threads, so its name look-up (a Slack call) runs while the
    follow-ups arrive: they must still be taken as follow-ups, and wait for it.
    """
    trellis.responder = lambda q: answer(f"You asked: {q.text}")
    roots: list[str] = []
    for thread in range(30):
        other = "<@U0BOB> " if thread % 3 == 0 else ""
        root = await slack.post(CHANNEL, ALICE, f"{MENTION} {other}t{thread} q0")
        roots.append(root)
        await slack.post(CHANNEL, ALICE, f"t{thread} q1", thread_ts=root)
        await slack.post(CHANNEL, BOB, f"t{thread} q2", thread_ts=root)
    expected = ["q0", "q1", "q2"]
    await slack.wait_for(
        lambda: all(len(answers_in_thread(slack, ts)) >= 3 for ts in roots), timeout=60
    )
    for thread, root in enumerate(roots):
        shown = answers_in_thread(slack, root)
        assert shown == [f"t{thread} {q}" for q in expected], (thread, shown)
        assert asked_in_order(trellis, thread) == [f"t{thread} {q}" for q in expected]
    assert len(questions(trellis)) == 90


async def test_a_follow_up_queued_behind_a_slow_answer_keeps_its_place(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Two follow-ups waiting behind a slow answer are asked in the order they were written."""
    gate = asyncio.Event()

    def responder(q: Question) -> list[Step]:
        if q.text == "slow":
            return [Step.processing("thinking"), Step.pause(gate), *answer("slow answer")]
        return answer(f"You asked: {q.text}")

    trellis.responder = responder
    root = await slack.post(CHANNEL, ALICE, f"{MENTION} slow")
    await trellis.wait_for_action("send_message")
    await slack.post(CHANNEL, ALICE, "t0 q1", thread_ts=root)
    await slack.post(CHANNEL, BOB, "t0 q2", thread_ts=root)
    await slack.wait_for(
        lambda: sum("as soon as" in body(m) for m in replies(slack, CHANNEL, root)) == 2
    )
    gate.set()
    await answered(slack, CHANNEL, root, "You asked: t0 q2")
    await slack.wait_for(lambda: len(answers_in_thread(slack, root)) == 2)
    assert answers_in_thread(slack, root) == ["t0 q1", "t0 q2"]
    assert asked_in_order(trellis, 0) == ["t0 q1", "t0 q2"]


async def test_retry_replaces_the_charts_of_the_cut_short_answer(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A turn cut short after its chart, then Retry: the thread shows the chart once, not twice."""
    chart = Step.chart("bar", [("north", 3), ("south", 5)], title="Orders by region")
    first = True

    def responder(q: Question) -> list[Step]:
        nonlocal first
        if first:
            first = False
            return [chart, Step.drop()]  # the connection dies after the chart was sent
        return [chart, *answer("Retried answer")]

    trellis.responder = responder
    root = await slack.post(CHANNEL, ALICE, f"{MENTION} orders by region")
    failed = await slack.wait_for(
        lambda: [m for m in replies(slack, CHANNEL, root) if RETRY_ACTION in buttons(m)]
    )
    await slack.wait_for(lambda: len(live_charts(slack)) == 1)
    await slack.click(CHANNEL, failed[0]["ts"], RETRY_ACTION, user=ALICE)
    await answered(slack, CHANNEL, root, "Retried answer")
    await slack.wait_for(lambda: len(live_charts(slack)) == 1)
    shown = [m for m in replies(slack, CHANNEL, root) if m.get("files")] + [
        b
        for m in replies(slack, CHANNEL, root)
        for b in m.get("blocks") or []
        if b["type"] == "image"
    ]
    assert len(shown) == 1  # as a file message (edited path) or inside the answer (native)
    assert not any(RETRY_ACTION in buttons(m) for m in replies(slack, CHANNEL, root))
