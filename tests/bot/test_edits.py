"""End to end: edits, deletions and Stop keep the Slack thread and the Trellis chat the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.helpers import (
    ALICE,
    BOB,
    BOT_USER,
    CHANNEL,
    DM,
    answered,
    body,
    buttons,
    questions,
    replies,
    working_message,
)
from trellis_slack.bot.app import Bot
from trellis_slack.bot.changes import DROPPED_REACTION
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Question, Step, answer
from trellis_slack.slack.blocks import STOP_ACTION

MENTION = f"<@{BOT_USER}>"


@pytest.fixture(params=["current", "seed"])
async def trellis(request: pytest.FixtureRequest) -> AsyncIterator[FakeTrellis]:
    """Every test here runs against both Trellis protocol versions."""
    async with FakeTrellis(version=request.param) as server:
        yield server


def actions(trellis: FakeTrellis, name: str) -> list[dict[str, Any]]:
    return [
        r.frame
        for r in trellis.received
        if isinstance(r.frame, dict) and r.frame.get("action") == name
    ]


def texts(slack: FakeSlack, channel: str, thread_ts: str) -> list[str]:
    return [body(m) for m in replies(slack, channel, thread_ts)]


def chat_messages(trellis: FakeTrellis) -> list[tuple[str, str]]:
    """(role, content) of every message Trellis holds, over all chats."""
    return [(m.role, m.content) for chat in trellis.chats.values() for m in chat.messages]


async def test_edit_replaces_the_answer(slack: FakeSlack, trellis: FakeTrellis, bot: Bot) -> None:
    """Editing a question re-asks it with its Trellis id; the old answer goes, the new one comes."""
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} sales in 2023")
    await answered(slack, CHANNEL, ts, "You asked: sales in 2023")
    first_id = next(iter(trellis.chats.values())).messages[0].id
    await slack.edit(CHANNEL, ts, f"{MENTION} sales in 2024")
    await answered(slack, CHANNEL, ts, "You asked: sales in 2024")
    shown = texts(slack, CHANNEL, ts)
    assert not any("sales in 2023" in t for t in shown)
    edit = actions(trellis, "edit_message")[0]
    assert edit["message_id"] == first_id
    assert edit["content"] == "sales in 2024"
    assert chat_messages(trellis) == [
        ("user", "sales in 2024"),
        ("assistant", "You asked: sales in 2024"),
    ]


async def test_second_edit_uses_the_new_id(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """After an edit the question has a new Trellis id, and a second edit uses it."""
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} v1")
    await answered(slack, CHANNEL, ts, "You asked: v1")
    await slack.edit(CHANNEL, ts, f"{MENTION} v2")
    await answered(slack, CHANNEL, ts, "You asked: v2")
    id_after_first_edit = next(iter(trellis.chats.values())).messages[0].id
    await slack.edit(CHANNEL, ts, f"{MENTION} v3")
    await answered(slack, CHANNEL, ts, "You asked: v3")
    first, second = actions(trellis, "edit_message")
    assert second["message_id"] == id_after_first_edit != first["message_id"]
    assert [t for t in texts(slack, CHANNEL, ts) if "You asked" in t] == ["You asked: v3"]


async def test_unfurls_reply_counts_and_tombstones_are_not_edits(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Unfurls, reply-count updates, the bot's own updates and redeliveries never re-ask anything."""
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} see https://example.com/report")
    await answered(slack, CHANNEL, ts, "You asked:")
    await slack.unfurl(CHANNEL, ts)
    await slack.post(CHANNEL, BOB, "thanks!", thread_ts=ts)  # reply count → parent message_changed
    await answered(slack, CHANNEL, ts, "You asked: thanks!")
    await slack.edit(CHANNEL, ts, f"{MENTION} see https://example.com/report")  # same text
    marker = await slack.post(CHANNEL, ALICE, f"{MENTION} marker")
    await answered(slack, CHANNEL, marker, "You asked: marker")
    assert actions(trellis, "edit_message") == []
    assert actions(trellis, "delete_message") == []


async def test_edit_adding_a_mention_is_a_new_question(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A message edited to mention the bot is answered as a new question."""
    ts = await slack.post(CHANNEL, ALICE, "how many orders last week?")
    await slack.edit(CHANNEL, ts, f"{MENTION} how many orders last week?")
    await answered(slack, CHANNEL, ts, "You asked: how many orders last week?")
    assert [q["message"] for q in questions(trellis)] == ["how many orders last week?"]
    assert actions(trellis, "edit_message") == []


async def test_edits_of_messages_the_bot_never_handled_are_ignored(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Editing an ordinary message (no mention, never a question) does nothing."""
    ts = await slack.post(CHANNEL, ALICE, "lunch at noon")
    await slack.edit(CHANNEL, ts, "lunch at one")
    marker = await slack.post(CHANNEL, ALICE, f"{MENTION} marker")
    await answered(slack, CHANNEL, marker, "You asked: marker")
    assert [q["message"] for q in questions(trellis)] == ["marker"]
    assert replies(slack, CHANNEL, ts) == []


async def test_delete_removes_the_answers_and_files(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Deleting a question deletes it in Trellis, then the bot's answer and chart file go too."""
    trellis.responder = lambda q: [
        Step.chart("bar", [("North", 1), ("South", 2)], title="Orders"),
        *answer("Two regions."),
    ]
    ts = await slack.post(DM, ALICE, "orders by region")
    await answered(slack, DM, ts, "Two regions.")
    chart = next(iter(slack.files.values()))
    await slack.delete(DM, ts)
    await slack.wait_for(lambda: slack.files[chart.id].deleted)
    await slack.wait_for(lambda: not any("Two regions." in t for t in texts(slack, DM, ts)))
    assert not any(m.get("files") for m in replies(slack, DM, ts))  # no "file deleted" stubs
    assert len(actions(trellis, "delete_message")) == 1
    assert chat_messages(trellis) == []


async def test_deleting_a_thread_parent_with_replies_deletes_the_question(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A question that became a tombstone (deleted with replies) is deleted in Trellis too."""
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} first")
    await answered(slack, CHANNEL, ts, "You asked: first")
    await slack.delete(CHANNEL, ts)
    await trellis.wait_for_action("delete_message")
    await slack.wait_for(lambda: not any("You asked" in t for t in texts(slack, CHANNEL, ts)))
    assert chat_messages(trellis) == []


async def test_delete_while_streaming_interrupts_first(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Deleting a question whose answer is streaming interrupts it, then deletes it."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [Step.processing("thinking"), Step.pause(gate), *answer("late")]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} slow one")
    await trellis.wait_for_action("send_message")
    await slack.wait_for(
        lambda: any(STOP_ACTION in buttons(m) for m in replies(slack, CHANNEL, ts))
    )
    await slack.delete(CHANNEL, ts)
    await trellis.wait_for_action("delete_message")
    order = [
        r.frame["action"]
        for r in trellis.received
        if isinstance(r.frame, dict) and r.frame.get("action") in ("interrupt", "delete_message")
    ]
    assert order == ["interrupt", "delete_message"]
    await slack.wait_for(lambda: replies(slack, CHANNEL, ts) == [])
    assert chat_messages(trellis) == []


async def test_editing_an_earlier_question_drops_the_later_turns(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Edit of question 1 of 3: later answers are removed, later questions marked, a new answer comes."""
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} q1")
    await answered(slack, CHANNEL, ts, "You asked: q1")
    q2 = await slack.post(CHANNEL, BOB, "q2", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: q2")
    q3 = await slack.post(CHANNEL, ALICE, "q3", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: q3")
    await slack.edit(CHANNEL, ts, f"{MENTION} q1 revised")
    await answered(slack, CHANNEL, ts, "You asked: q1 revised")
    shown = texts(slack, CHANNEL, ts)
    assert not any(
        t.startswith(("You asked: q1\n", "You asked: q2", "You asked: q3")) for t in shown
    )
    assert not any(t in ("You asked: q1", "You asked: q2", "You asked: q3") for t in shown)
    assert any("no longer remembers" in t for t in shown)
    for dropped in (q2, q3):
        message = next(m for m in slack.thread(CHANNEL, ts) if m["ts"] == dropped)
        assert DROPPED_REACTION in [r["name"] for r in message.get("reactions", [])]
    assert chat_messages(trellis) == [
        ("user", "q1 revised"),
        ("assistant", "You asked: q1 revised"),
    ]
    await slack.post(CHANNEL, BOB, "q4", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: q4")
    assert [m for _, m in chat_messages(trellis)][-2:] == ["q4", "You asked: q4"]


async def test_deleting_a_middle_question_marks_the_later_ones(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Deleting question 2 of 3 removes answers 2 and 3 and marks question 3; answer 1 stays."""
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} q1")
    await answered(slack, CHANNEL, ts, "You asked: q1")
    q2 = await slack.post(CHANNEL, BOB, "q2", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: q2")
    q3 = await slack.post(CHANNEL, ALICE, "q3", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: q3")
    await slack.delete(CHANNEL, q2)
    await slack.wait_for(lambda: any("no longer remembers" in t for t in texts(slack, CHANNEL, ts)))
    shown = texts(slack, CHANNEL, ts)
    assert "You asked: q1" in shown
    assert "You asked: q2" not in shown
    assert "You asked: q3" not in shown
    message = next(m for m in slack.thread(CHANNEL, ts) if m["ts"] == q3)
    assert DROPPED_REACTION in [r["name"] for r in message.get("reactions", [])]
    assert [c for _, c in chat_messages(trellis)] == ["q1", "You asked: q1"]


async def test_stop_after_the_end_tells_the_clicker(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A Stop click after the answer finished changes nothing and says so to the clicker only."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [Step.pause(gate), *answer("You asked: quick")]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} quick")
    working = await working_message(slack, CHANNEL, ts)
    gate.set()
    await answered(slack, CHANNEL, ts, "You asked: quick")
    await slack.click(
        CHANNEL, working["ts"], STOP_ACTION, user=BOB, value=ts, seen_blocks=working["blocks"]
    )
    note = await slack.wait_for(lambda: [e for e in slack.ephemerals if e.get("user") == BOB])
    assert "already finished" in note[0]["text"]
    assert actions(trellis, "interrupt") == []
    assert texts(slack, CHANNEL, ts) == ["You asked: quick"]


async def test_second_stop_click_is_harmless(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Two Stop clicks send one interrupt; the second clicker is told it is already stopping."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [Step.processing("thinking"), Step.pause(gate), *answer("never")]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} long")
    await trellis.wait_for_action("send_message")
    working = await working_message(slack, CHANNEL, ts)
    seen = working["blocks"]
    await slack.click(CHANNEL, working["ts"], STOP_ACTION, user=ALICE, value=ts, seen_blocks=seen)
    await slack.click(CHANNEL, working["ts"], STOP_ACTION, user=BOB, value=ts, seen_blocks=seen)
    await answered(slack, CHANNEL, ts, f"Stopped by <@{ALICE}>")
    await slack.wait_for(lambda: [e for e in slack.ephemerals if e.get("user") == BOB])
    assert len(actions(trellis, "interrupt")) == 1


async def test_stop_racing_the_final_message_ends_consistently(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Stop clicked as the final answer arrives: the answer is shown, once, and the clicker is told."""
    gate = asyncio.Event()
    final_sent = asyncio.Event()
    trellis.on_step = lambda event, data: final_sent.set() if event == "message" else None
    trellis.responder = lambda q: [Step.processing("thinking"), Step.pause(gate), *answer("done")]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} race")
    working = await working_message(slack, CHANNEL, ts)
    gate.set()
    await final_sent.wait()
    await slack.click(
        CHANNEL, working["ts"], STOP_ACTION, user=BOB, value=ts, seen_blocks=working["blocks"]
    )
    await slack.wait_for(lambda: [e for e in slack.ephemerals if e.get("user") == BOB])
    msgs = await answered(slack, CHANNEL, ts, "done")
    assert [body(m) for m in msgs] == ["done"]
    assert chat_messages(trellis)[-1] == ("assistant", "done")


async def test_stop_then_follow_up_continues_the_chat(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """After Stop, nothing more of that answer appears and the next question works as usual."""
    gate = asyncio.Event()

    def responder(q: Question) -> list[Step]:
        if q.text == "stop me":
            return [Step.delta("partial "), Step.pause(gate), *answer("never shown")]
        return answer(f"You asked: {q.text}")

    trellis.responder = responder
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} stop me")
    working = await working_message(slack, CHANNEL, ts)
    await slack.click(CHANNEL, working["ts"], STOP_ACTION, user=ALICE, value=ts)
    await answered(slack, CHANNEL, ts, "Stopped by")
    gate.set()
    await slack.post(CHANNEL, ALICE, "next", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "You asked: next")
    assert not any("never shown" in t for t in texts(slack, CHANNEL, ts))


async def test_charts_of_an_answer_that_beat_stop_are_shown(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """Stop crossing the final answer: the answer is shown with the chart it refers to."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [
        Step.processing("thinking"),
        Step.pause(gate),
        Step.chart("bar", [("North", 1), ("South", 2)], title="Raced chart"),
        Step.message("Two regions."),
    ]
    ts = await slack.post(CHANNEL, ALICE, f"{MENTION} race with a chart")
    await trellis.wait_for_action("send_message")
    working = await working_message(slack, CHANNEL, ts)
    # The click reaches the bot while Trellis's chart and answer are already on their way.
    gate.set()
    await trellis.wait_until(
        lambda: any(c.messages[-1].role == "assistant" for c in trellis.chats.values())
    )
    await slack.click(CHANNEL, working["ts"], STOP_ACTION, user=BOB, seen_blocks=working["blocks"])
    await answered(slack, CHANNEL, ts, "Two regions.")
    await slack.wait_for(lambda: any(f.title == "Raced chart" for f in slack.files.values()))
