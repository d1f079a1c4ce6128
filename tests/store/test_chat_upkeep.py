"""The store's chat upkeep: least recently used chats, idle ones, retiring and reviving them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.helpers import Clock
from trellis_slack.bot.lifecycle_status import Status
from trellis_slack.store.records import Conversation, QuestionRecord
from trellis_slack.store.schema import SCHEMA_VERSION
from trellis_slack.store.sqlite import SqliteStore

DAY = 86_400.0


def chat(thread: str, owner: str = "", chat_id: str | None = None) -> Conversation:
    return Conversation("T1", "C1", thread, owner, chat_id or f"chat-{thread}", None, None)


async def save(store: SqliteStore, clock: Clock, *conversations: Conversation) -> None:
    """Save and use each conversation, one second apart."""
    for conversation in conversations:
        clock.now += 1
        await store.save_conversation(conversation)
        await store.touch_conversation(conversation)


async def test_least_recently_used_comes_first_and_per_owner(
    store: SqliteStore, clock: Clock
) -> None:
    """The order is by last use (a touch moves a chat to the back); other owners are left out."""
    await save(store, clock, chat("1"), chat("2"), chat("3"), chat("4", owner="U2"))
    await save(store, clock, chat("1"))  # used again
    found = await store.least_recently_used("", 2)
    assert [c.thread_ts for c in found] == ["2", "3"]
    assert [c.thread_ts for c in await store.least_recently_used("U2", 5)] == ["4"]
    excluded = await store.least_recently_used("", 2, exclude={"chat-2"})
    assert [c.thread_ts for c in excluded] == ["3", "1"]


async def test_retiring_marks_the_thread_and_its_questions(
    store: SqliteStore, clock: Clock
) -> None:
    """A retired chat is no longer a candidate; its questions are marked, later ones are not."""
    await save(store, clock, chat("1"), chat("2"))
    await store.add_question(
        QuestionRecord("C1", "1.5", "1", "U1", "q", "msg-1", Status.ANSWERED, owner_id="")
    )
    assert await store.retire_conversation(chat("1")) is True
    assert await store.retire_conversation(chat("1")) is False  # already retired
    assert await store.conversation_retired("T1", "C1", "1")
    assert not await store.conversation_retired("T1", "C1", "2")
    assert await store.question_chat_retired("C1", "1.5")
    assert [c.thread_ts for c in await store.least_recently_used("", 5)] == ["2"]
    await store.add_question(QuestionRecord("C1", "1.6", "1", "U1", "q2", None, Status.QUEUED))
    assert not await store.question_chat_retired("C1", "1.6")


async def test_a_new_chat_for_a_retired_thread_makes_it_live(
    store: SqliteStore, clock: Clock
) -> None:
    """Saving and using a new chat for the thread clears its retirement."""
    await save(store, clock, chat("1"))
    await store.retire_conversation(chat("1"))
    await save(store, clock, chat("1", chat_id="chat-new"))
    assert not await store.conversation_retired("T1", "C1", "1")
    assert [c.chat_id for c in await store.least_recently_used("", 5)] == ["chat-new"]


async def test_a_retirement_of_a_replaced_chat_changes_nothing(
    store: SqliteStore, clock: Clock
) -> None:
    """Retiring a chat the thread no longer has leaves the thread's new chat live."""
    await save(store, clock, chat("1"), chat("1", chat_id="chat-new"))
    assert await store.retire_conversation(chat("1")) is False
    assert not await store.conversation_retired("T1", "C1", "1")


async def test_idle_conversations_are_those_unused_for_that_long(
    store: SqliteStore, clock: Clock
) -> None:
    """Only live chats unused for more than the given days are idle."""
    await save(store, clock, chat("old"), chat("gone"))
    await store.retire_conversation(chat("gone"))
    clock.now += 10 * DAY
    await save(store, clock, chat("new"))
    assert [c.thread_ts for c in await store.idle_conversations(7)] == ["old"]
    assert await store.idle_conversations(11) == []


async def test_migration_5_keeps_conversations_and_dates_them(tmp_path: Path) -> None:
    """A schema-4 file gains the upkeep columns; its conversations count as used when saved."""
    path = tmp_path / "state.db"
    s = await SqliteStore.open(path, clock=lambda: 1000.0)
    await s.save_conversation(chat("1"))
    await s.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX idx_conversations_owner_id_retired_at_used_at")
    conn.execute("ALTER TABLE conversations DROP COLUMN used_at")
    conn.execute("ALTER TABLE conversations DROP COLUMN retired_at")
    conn.execute("ALTER TABLE questions DROP COLUMN chat_retired_at")
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()
    s = await SqliteStore.open(path, clock=lambda: 1000.0 + 30 * DAY)
    try:
        assert [c.thread_ts for c in await s.idle_conversations(29)] == ["1"]
    finally:
        await s.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 5
    conn.close()
