"""Copying a SQLite state file into PostgreSQL: every table, once, safe to run again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Clock
from trellis_slack.bot.lifecycle_status import Status
from trellis_slack.errors import StateError
from trellis_slack.store.base import AnswerStep
from trellis_slack.store.copy import TABLES, copy_sqlite_to_postgres
from trellis_slack.store.postgres import PostgresStore
from trellis_slack.store.records import (
    BotPost,
    ChannelSettings,
    Conversation,
    PostKind,
    QuestionRecord,
)
from trellis_slack.store.sqlite import SqliteStore

THREAD = "1700000000.000100"


async def fill(path: Path, clock: Clock) -> None:
    """A state file with something in every table the copy takes."""
    async with await SqliteStore.open(path, clock=clock) as s:
        await s.claim_event("C1", THREAD)
        first = Conversation("T1", "C1", THREAD, "", "chat-1", "int-1", None)
        await s.save_conversation(first)
        await s.save_conversation(Conversation("T1", "C1", THREAD, "U2", "chat-2", None, "m"))
        await s.add_question(
            QuestionRecord("C1", THREAD, THREAD, "U1", "how many?", "m-1", Status.ANSWERED)
        )
        await s.retire_conversation(first)
        await s.add_bot_post(BotPost("C1", THREAD, "1700000001.000100", None, PostKind.STATUS))
        await s.add_bot_post(BotPost("C1", THREAD, None, "F1", PostKind.CHART))
        await s.set_channel_settings(ChannelSettings("T1", "C1", "int-2", "m"))
        await s.claim_greeting("T1", "U1")
        await s.save_answer_message("C1", THREAD, "msg-1")
        await s.record_vote("C1", THREAD, "U1", "good")
        await s.save_steps(
            "C1", THREAD, [AnswerStep("query", "Orders", "SELECT 1", ("orders",), 1)]
        )
        await s.keep_private_answer("C1", THREAD, '{"blocks": []}')
        await s.save_files("C1", THREAD, '[{"id": "F1"}]')


async def test_every_table_is_copied_and_a_rerun_adds_nothing(
    tmp_path: Path, postgres_url: str, clock: Clock
) -> None:
    """The copy brings every row across, returns what it added, and adds nothing a second time."""
    path = tmp_path / "state.db"
    await fill(path, clock)
    added = await copy_sqlite_to_postgres(str(path), postgres_url)
    assert set(added) == set(TABLES)
    assert added["conversations"] == 2
    assert added["bot_posts"] == 2
    assert all(n >= 1 for n in added.values()), added
    assert await copy_sqlite_to_postgres(str(path), postgres_url) == dict.fromkeys(TABLES, 0)
    async with await PostgresStore.open(postgres_url) as pg:
        assert not await pg.claim_event("C1", THREAD)
        assert [c.chat_id for c in await pg.conversations_in_thread("T1", "C1", THREAD)] == [
            "chat-1",
            "chat-2",
        ]
        assert await pg.conversation_retired("T1", "C1", THREAD)
        question = await pg.question("C1", THREAD)
        assert question is not None
        assert question.status is Status.ANSWERED
        assert await pg.question_chat_retired("C1", THREAD)
        assert [p.kind for p in await pg.bot_posts("C1", THREAD)] == [
            PostKind.STATUS,
            PostKind.CHART,
        ]
        assert await pg.channel_settings("T1", "C1") == ChannelSettings("T1", "C1", "int-2", "m")
        assert not await pg.claim_greeting("T1", "U1")
        assert await pg.answer_message("C1", THREAD) == "msg-1"
        assert await pg.record_vote("C1", THREAD, "U1", "good") == "good"
        assert await pg.answer_steps("C1", THREAD) == [
            AnswerStep("query", "Orders", "SELECT 1", ("orders",), 1)
        ]
        assert await pg.private_answer("C1", THREAD) == '{"blocks": []}'
        assert await pg.files_of("C1", THREAD) == '[{"id": "F1"}]'


async def test_rows_already_in_postgresql_are_kept(
    tmp_path: Path, postgres_url: str, clock: Clock
) -> None:
    """A row PostgreSQL already has (replicas wrote it) is not overwritten by the older file."""
    path = tmp_path / "state.db"
    await fill(path, clock)
    async with await PostgresStore.open(postgres_url) as pg:
        await pg.set_channel_settings(ChannelSettings("T1", "C1", "newer", None))
    added = await copy_sqlite_to_postgres(str(path), postgres_url)
    assert added["channel_settings"] == 0
    async with await PostgresStore.open(postgres_url) as pg:
        assert await pg.channel_settings("T1", "C1") == ChannelSettings("T1", "C1", "newer", None)


async def test_a_missing_state_file_is_refused(tmp_path: Path, postgres_url: str) -> None:
    """Copying from a file that does not exist fails plainly and creates nothing."""
    with pytest.raises(StateError, match="no state file"):
        await copy_sqlite_to_postgres(str(tmp_path / "missing.db"), postgres_url)
    assert not (tmp_path / "missing.db").exists()
