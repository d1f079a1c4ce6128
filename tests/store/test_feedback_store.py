"""The store's feedback (both backends): answers' Trellis messages and one vote per person."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from trellis_slack.store.base import Store as StoreProtocol
from trellis_slack.store.schema import SCHEMA_VERSION
from trellis_slack.store.sqlite import SqliteStore


def test_the_sqlite_store_is_a_store_with_feedback() -> None:
    """SqliteStore has every feedback method the Store Protocol names."""
    for name in ("save_answer_message", "answer_message", "record_vote"):
        assert hasattr(StoreProtocol, name)
        assert callable(getattr(SqliteStore, name))
    store: type[StoreProtocol] = SqliteStore  # mypy checks the whole Protocol here
    assert store is SqliteStore


async def test_answer_message_is_saved_per_question(store: SqliteStore) -> None:
    """The answer's Trellis message id is found by (channel, question); None before one is saved."""
    assert await store.answer_message("C1", "1.0001") is None
    await store.save_answer_message("C1", "1.0001", "msg_a")
    await store.save_answer_message("C2", "1.0001", "msg_b")
    assert await store.answer_message("C1", "1.0001") == "msg_a"
    assert await store.answer_message("C2", "1.0001") == "msg_b"
    assert await store.answer_message("C1", "1.0002") is None


async def test_a_vote_returns_the_one_it_replaced(store: SqliteStore) -> None:
    """Voting returns the person's previous vote: none, the same, then the changed one."""
    assert await store.record_vote("C1", "1.0001", "U1", "positive") is None
    assert await store.record_vote("C1", "1.0001", "U1", "positive") == "positive"
    assert await store.record_vote("C1", "1.0001", "U1", "negative") == "positive"
    assert await store.record_vote("C1", "1.0001", "U1", "negative") == "negative"


async def test_votes_are_per_person_and_per_answer(store: SqliteStore) -> None:
    """Another person, or another question, has a vote of its own."""
    await store.record_vote("C1", "1.0001", "U1", "positive")
    assert await store.record_vote("C1", "1.0001", "U2", "negative") is None
    assert await store.record_vote("C1", "1.0002", "U1", "negative") is None
    assert await store.record_vote("C1", "1.0001", "U1", "positive") == "positive"


async def test_none_removes_a_vote(store: SqliteStore) -> None:
    """Recording None takes the vote back (what a refused first vote needs)."""
    await store.record_vote("C1", "1.0001", "U1", "negative")
    assert await store.record_vote("C1", "1.0001", "U1", None) == "negative"
    assert await store.record_vote("C1", "1.0001", "U1", "positive") is None


async def test_a_new_answer_forgets_the_old_votes(store: SqliteStore) -> None:
    """A different message for the question (an edit, a Retry) clears its votes; the same keeps them."""
    await store.save_answer_message("C1", "1.0001", "msg_a")
    await store.record_vote("C1", "1.0001", "U1", "positive")
    await store.record_vote("C1", "1.0002", "U1", "positive")
    await store.save_answer_message("C1", "1.0001", "msg_a")
    assert await store.record_vote("C1", "1.0001", "U1", "positive") == "positive"
    await store.save_answer_message("C1", "1.0001", "msg_b")
    assert await store.answer_message("C1", "1.0001") == "msg_b"
    assert await store.record_vote("C1", "1.0001", "U1", "positive") is None
    assert await store.record_vote("C1", "1.0002", "U1", "positive") == "positive"


async def test_votes_survive_a_restart(tmp_path: Path) -> None:
    """Answers and votes are in the file: a reopened store still has them."""
    path = tmp_path / "state.db"
    s = await SqliteStore.open(path)
    await s.save_answer_message("C1", "1.0001", "msg_a")
    await s.record_vote("C1", "1.0001", "U1", "negative")
    await s.close()
    s = await SqliteStore.open(path)
    try:
        assert await s.answer_message("C1", "1.0001") == "msg_a"
        assert await s.record_vote("C1", "1.0001", "U1", "negative") == "negative"
    finally:
        await s.close()


async def test_a_version_3_file_gains_the_feedback_tables(tmp_path: Path) -> None:
    """Migration 4 adds answers and votes to a file of schema 3 and keeps what it held."""
    path = tmp_path / "state.db"
    s = await SqliteStore.open(path)
    await s.claim_event("C1", "1.0001")
    await s.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE answers")
    conn.execute("DROP TABLE votes")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    s = await SqliteStore.open(path)
    try:
        assert not await s.claim_event("C1", "1.0001")
        assert await s.record_vote("C1", "1.0001", "U1", "positive") is None
    finally:
        await s.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 4
    conn.close()
