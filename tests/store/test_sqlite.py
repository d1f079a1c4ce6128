"""The store contract on both backends (the ``store`` fixture), and SQLite's own file handling."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import sqlite3
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from trellis_slack.bot.lifecycle import Status
from trellis_slack.errors import StateError
from trellis_slack.store.records import (
    BotPost,
    ChannelSettings,
    Conversation,
    PostKind,
    QuestionRecord,
)
from trellis_slack.store.schema import SCHEMA_VERSION
from trellis_slack.store.sqlite import SqliteStore as Store

REPO = Path(__file__).resolve().parents[2]


class FakeClock:
    """A settable Unix clock."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Run with a umask that would leave new files readable by everyone."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _question(ts: str, thread_ts: str = "1700000000.000100", **kw: str | None) -> QuestionRecord:
    fields: dict[str, str | None] = {
        "channel_id": "C1",
        "ts": ts,
        "thread_ts": thread_ts,
        "user_id": "U1",
        "text": "how many orders last week?",
        "trellis_message_id": None,
        "status": "queued",
    }
    fields.update(kw)
    return QuestionRecord(**fields)  # type: ignore[arg-type]


def _mode(p: Path) -> int | None:
    """The permission bits of `p`, or None when it does not exist."""
    try:
        return stat.S_IMODE(p.stat().st_mode)
    except FileNotFoundError:
        return None


def _size(p: Path) -> int:
    """The size of `p` in bytes, 0 when it does not exist."""
    try:
        return p.stat().st_size
    except FileNotFoundError:
        return 0


def _create(p: Path, mode: int) -> None:
    p.touch()
    p.chmod(mode)


# --- event claims -------------------------------------------------------------------------------


async def test_claim_event_is_true_only_the_first_time(store: Store) -> None:
    """A Slack event (channel, ts) is handled once; its redeliveries are recognised."""
    assert await store.claim_event("C1", "1700000000.000100") is True
    assert await store.claim_event("C1", "1700000000.000100") is False
    assert await store.claim_event("C2", "1700000000.000100") is True
    assert await store.claim_event("C1", "1700000000.000200") is True


async def test_claims_survive_a_restart(path: Path) -> None:
    """An event claimed before a restart is still recognised as a duplicate after it."""
    first = await Store.open(path)
    assert await first.claim_event("C1", "1700000000.000100") is True
    await first.close()
    second = await Store.open(path)
    try:
        assert await second.claim_event("C1", "1700000000.000100") is False
    finally:
        await second.close()


async def test_concurrent_claims_of_one_event_let_exactly_one_through(store: Store) -> None:
    """Fifty simultaneous deliveries of one event yield exactly one handler."""
    async with asyncio.timeout(10):
        results = await asyncio.gather(
            *(store.claim_event("C1", "1700000000.000100") for _ in range(50))
        )
    assert results.count(True) == 1
    assert results.count(False) == 49


async def test_prune_forgets_only_old_claims() -> None:
    """Pruning drops claims older than the cut-off, so their events count as new again."""
    clock = FakeClock()
    s = await Store.open(":memory:", clock=clock)
    try:
        assert await s.claim_event("C1", "1.000001")
        clock.now += 15 * 86_400
        assert await s.claim_event("C1", "2.000001")
        assert await s.prune(older_than_days=14) == 1
        assert await s.prune(older_than_days=14) == 0
        assert await s.claim_event("C1", "1.000001") is True
        assert await s.claim_event("C1", "2.000001") is False
        with pytest.raises(ValueError, match="negative"):
            await s.prune(-1)
    finally:
        await s.close()


# --- conversations ------------------------------------------------------------------------------


async def test_conversation_round_trip_and_upsert(store: Store) -> None:
    """A thread's saved chat comes back as saved, and saving again replaces it."""
    assert await store.conversation("T1", "C1", "1.000100") is None
    conv = Conversation("T1", "C1", "1.000100", "", "chat-1", "int-1", "gpt")
    await store.save_conversation(conv)
    assert await store.conversation("T1", "C1", "1.000100") == conv
    replaced = Conversation("T1", "C1", "1.000100", "", "chat-2", None, None)
    await store.save_conversation(replaced)
    assert await store.conversation("T1", "C1", "1.000100") == replaced
    assert await store.conversation("T2", "C1", "1.000100") is None


async def test_per_user_conversations_in_one_thread(store: Store) -> None:
    """In per-user mode each asker in a thread has their own chat, all listed for the thread."""
    alice = Conversation("T1", "C1", "1.000100", "UA", "chat-a", None, None)
    bob = Conversation("T1", "C1", "1.000100", "UB", "chat-b", "int-1", None)
    elsewhere = Conversation("T1", "C1", "2.000100", "UA", "chat-c", None, None)
    for conv in (alice, bob, elsewhere):
        await store.save_conversation(conv)
    assert await store.conversation("T1", "C1", "1.000100", "UB") == bob
    assert await store.conversation("T1", "C1", "1.000100") is None
    assert await store.conversations_in_thread("T1", "C1", "1.000100") == [alice, bob]
    assert await store.conversations_in_thread("T1", "C9", "1.000100") == []


# --- questions ----------------------------------------------------------------------------------


async def test_question_round_trip_and_upsert(store: Store) -> None:
    """A question comes back as saved; adding it again by (channel, ts) replaces it."""
    assert await store.question("C1", "1700000000.000200") is None
    q = _question("1700000000.000200", owner_id="U1")
    await store.add_question(q)
    assert await store.question("C1", "1700000000.000200") == q
    again = _question("1700000000.000200", text="edited", status="answering")
    await store.add_question(again)
    assert await store.question("C1", "1700000000.000200") == again
    assert (await store.stats())["questions"] == 1


async def test_update_question_changes_only_given_fields(store: Store) -> None:
    """Updating a question leaves every field passed as None as it was."""
    await store.add_question(_question("1.000200", trellis_message_id="m-1"))
    await store.update_question("C1", "1.000200", status=Status.ANSWERING)
    got = await store.question("C1", "1.000200")
    assert got is not None
    assert (got.status, got.trellis_message_id, got.text) == (
        "answering",
        "m-1",
        "how many orders last week?",
    )
    await store.update_question("C1", "1.000200", trellis_message_id="m-2", text="and today?")
    got = await store.question("C1", "1.000200")
    assert got is not None
    assert (got.status, got.trellis_message_id, got.text) == ("answering", "m-2", "and today?")
    await store.update_question("C1", "9.000000", status=Status.FAILED)
    assert await store.question("C1", "9.000000") is None
    with pytest.raises(ValueError, match=r"(?i)status"):
        await store.update_question("C1", "1.000200", status="done")  # type: ignore[arg-type]


async def test_questions_in_thread_are_in_numeric_ts_order(store: Store) -> None:
    """A thread's questions come oldest first, comparing Slack ts as numbers, not as text."""
    thread = "999999999.000100"
    # Added newest first; "1000000000..." sorts before "999999999..." as text.
    for ts in ("1000000000.000001", "999999999.000300", "999999999.000100"):
        await store.add_question(_question(ts, thread_ts=thread))
    await store.add_question(_question("999999999.000200", thread_ts="other"))
    got = [q.ts for q in await store.questions_in_thread("C1", thread)]
    assert got == ["999999999.000100", "999999999.000300", "1000000000.000001"]


def test_question_status_is_checked() -> None:
    """A question with a status outside the known set is refused."""
    with pytest.raises(ValueError, match=r"(?i)status"):
        _question("1.000100", status="done")


# --- bot posts ----------------------------------------------------------------------------------


async def test_bot_posts_round_trip_in_insertion_order(store: Store) -> None:
    """What the bot posted for a question comes back in the order it was recorded."""
    posts = [
        BotPost("C1", "1.000100", "1.000300", None, PostKind.STATUS),
        BotPost("C1", "1.000100", None, "F1", PostKind.CHART),
        BotPost("C1", "1.000100", "1.000200", None, PostKind.ANSWER),
    ]
    for post in posts:
        await store.add_bot_post(post)
    await store.add_bot_post(BotPost("C1", "2.000100", "2.000200", None, PostKind.ANSWER))
    assert await store.bot_posts("C1", "1.000100") == posts
    assert await store.bot_posts("C2", "1.000100") == []


async def test_re_adding_a_bot_post_updates_it_in_place(store: Store) -> None:
    """A status message turned into the answer, or a file whose ts became known, stays one post."""
    await store.add_bot_post(BotPost("C1", "1.000100", "1.000200", None, PostKind.STATUS))
    await store.add_bot_post(BotPost("C1", "1.000100", None, "F1", PostKind.CHART))
    await store.add_bot_post(BotPost("C1", "1.000100", "1.000200", None, PostKind.ANSWER))
    await store.add_bot_post(BotPost("C1", "1.000100", "1.000300", "F1", PostKind.CHART))
    assert await store.bot_posts("C1", "1.000100") == [
        BotPost("C1", "1.000100", "1.000200", None, PostKind.ANSWER),
        BotPost("C1", "1.000100", "1.000300", "F1", PostKind.CHART),
    ]


async def test_remove_and_recognise_bot_posts(store: Store) -> None:
    """Removed posts are forgotten by ts or file id; is_bot_post knows only recorded messages."""
    await store.add_bot_post(BotPost("C1", "1.000100", "1.000200", None, PostKind.ANSWER))
    await store.add_bot_post(BotPost("C1", "1.000100", None, "F1", PostKind.CHART))
    await store.add_bot_post(BotPost("C1", "1.000100", "1.000400", None, PostKind.NOTE))
    assert await store.is_bot_post("C1", "1.000200") is True
    assert await store.is_bot_post("C2", "1.000200") is False
    assert await store.is_bot_post("C1", "1.000100") is False
    await store.remove_bot_post("C1", ts="1.000200")
    await store.remove_bot_post("C1", file_id="F1")
    await store.remove_bot_post("C1", ts="1.000400", file_id="F-other")  # both must match
    assert await store.is_bot_post("C1", "1.000200") is False
    assert await store.bot_posts("C1", "1.000100") == [
        BotPost("C1", "1.000100", "1.000400", None, PostKind.NOTE)
    ]
    with pytest.raises(ValueError, match="ts or a file_id"):
        await store.remove_bot_post("C1")


def test_bot_post_needs_a_ts_or_file_and_a_known_kind() -> None:
    """A bot post without anything to point at, or of an unknown kind, is refused."""
    with pytest.raises(ValueError, match="ts or a file id"):
        BotPost("C1", "1.000100", None, None, PostKind.ANSWER)
    with pytest.raises(ValueError, match="kind"):
        BotPost("C1", "1.000100", "1.000200", None, "banner")  # type: ignore[arg-type]


# --- channel settings and stats -----------------------------------------------------------------


async def test_channel_settings_round_trip_and_upsert(store: Store) -> None:
    """A channel's settings come back as set, and setting them again replaces them."""
    assert await store.channel_settings("T1", "C1") is None
    await store.set_channel_settings(ChannelSettings("T1", "C1", "int-1", "gpt"))
    await store.set_channel_settings(ChannelSettings("T1", "C2", "int-2", None))
    await store.set_channel_settings(ChannelSettings("T1", "C1", None, "claude"))
    assert await store.channel_settings("T1", "C1") == ChannelSettings("T1", "C1", None, "claude")
    assert await store.channel_settings("T1", "C2") == ChannelSettings("T1", "C2", "int-2", None)


async def test_stats_count_rows_per_table(store: Store) -> None:
    """Diagnostics report how many rows each table holds."""
    assert await store.stats() == {
        "event_claims": 0,
        "conversations": 0,
        "questions": 0,
        "bot_posts": 0,
        "channel_settings": 0,
    }
    await store.claim_event("C1", "1.000001")
    await store.claim_event("C1", "1.000002")
    await store.save_conversation(Conversation("T1", "C1", "1.000001", "", "chat", None, None))
    await store.add_question(_question("1.000001"))
    await store.add_bot_post(BotPost("C1", "1.000001", "1.000003", None, PostKind.ANSWER))
    await store.set_channel_settings(ChannelSettings("T1", "C1", None, None))
    assert await store.stats() == {
        "event_claims": 2,
        "conversations": 1,
        "questions": 1,
        "bot_posts": 1,
        "channel_settings": 1,
    }


# --- the file: creation, migrations, permissions, WAL -------------------------------------------


async def test_migrates_an_empty_file_and_reopens_idempotently(path: Path) -> None:
    """An empty file gets the current schema; reopening keeps the data and the version."""
    _create(path, 0o600)
    s = await Store.open(path)
    await s.add_question(_question("1.000200"))
    await s.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    s = await Store.open(path)
    try:
        assert await s.question("C1", "1.000200") == _question("1.000200")
    finally:
        await s.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_a_file_from_a_newer_version_is_refused(path: Path) -> None:
    """A state file written by a newer trellis-slack is not touched, and the error says why."""
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StateError, match="newer version") as info:
        await Store.open(path)
    assert str(path) in str(info.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in str(info.value)


@pytest.mark.usefixtures("permissive_umask")
async def test_state_files_are_owner_only(path: Path) -> None:
    """The state file and its WAL companions are created readable by their owner only."""
    s = await Store.open(path)
    try:
        await s.claim_event("C1", "1.000001")
        modes = (_mode(path), _mode(Path(f"{path}-wal")), _mode(Path(f"{path}-shm")))
        assert modes == (0o600, 0o600, 0o600)
    finally:
        await s.close()


@pytest.mark.usefixtures("permissive_umask")
async def test_an_existing_world_readable_file_is_made_owner_only(path: Path) -> None:
    """A state file left readable by others is tightened to owner-only when opened."""
    _create(path, 0o644)
    s = await Store.open(path)
    try:
        await s.claim_event("C1", "1.000001")
        assert _mode(path) == 0o600
        assert _mode(Path(f"{path}-wal")) == 0o600
    finally:
        await s.close()


async def test_wal_mode_is_on_and_checkpointed_on_close(path: Path) -> None:
    """The file uses write-ahead logging, and closing folds the log back into the file."""
    s = await Store.open(path)
    await s.claim_event("C1", "1.000001")
    # Another connection (say an operator's sqlite3 shell) stays open, so only an explicit
    # checkpoint, not SQLite's last-connection clean-up, can empty the log.
    other = sqlite3.connect(path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert _size(Path(f"{path}-wal")) > 0
        await s.close()
        assert _size(Path(f"{path}-wal")) == 0
        assert other.execute("SELECT count(*) FROM event_claims").fetchone()[0] == 1
    finally:
        other.close()


async def test_close_is_idempotent_and_later_calls_fail_plainly(path: Path) -> None:
    """Closing twice is fine; using a closed store raises StateError rather than crashing."""
    s = await Store.open(path)
    await s.close()
    await s.close()
    with pytest.raises(StateError, match="closed"):
        await s.claim_event("C1", "1.000001")


def _in_missing_directory(d: Path) -> Path:
    return d / "missing" / "state.db"


def _the_directory_itself(d: Path) -> Path:
    return d


def _under_a_regular_file(d: Path) -> Path:
    (d / "f").write_text("x")
    return d / "f" / "state.db"


def _not_a_database(d: Path) -> Path:
    (d / "junk.db").write_bytes(b"this is no database" * 100)
    return d / "junk.db"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_in_missing_directory, "No such file"),
        (_the_directory_itself, "Is a directory"),
        (_under_a_regular_file, "Not a directory"),
        (_not_a_database, "not a database"),
    ],
    ids=["missing-dir", "a-directory", "parent-is-a-file", "not-a-database"],
)
async def test_unopenable_paths_raise_state_error_naming_the_path(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    """A state path that cannot be opened fails with StateError naming the path and the reason."""
    target = make(tmp_path)
    with pytest.raises(StateError) as info:
        await Store.open(target)
    assert str(target) in str(info.value)
    assert reason in str(info.value)


_CHILD = """
import asyncio, sys
from trellis_slack.errors import StateError
from trellis_slack.store.sqlite import SqliteStore as Store

async def main() -> None:
    try:
        store = await Store.open(sys.argv[1])
    except StateError as exc:
        print("StateError:", exc)
    else:
        await store.close()
        print("opened")

asyncio.run(main())
"""


async def _open_outcome(target: Path) -> str:
    """Open `target` as an ordinary user would: in-process, or as root without the override."""
    if os.geteuid() != 0:
        try:
            s = await Store.open(target)
        except StateError as exc:
            return f"StateError: {exc}"
        await s.close()
        return "opened"
    # root ignores file modes; a child without CAP_DAC_OVERRIDE is held to them.
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("as root this test needs setpriv: install util-linux")
    proc = await asyncio.create_subprocess_exec(
        setpriv,
        "--bounding-set=-dac_override,-dac_read_search",
        sys.executable,
        "-c",
        _CHILD,
        str(target),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


@pytest.mark.parametrize(
    ("existing", "reason"),
    [(False, "Permission denied"), (True, "is not writable")],
    ids=["new-file", "existing-file"],
)
async def test_unwritable_directory_raises_state_error_naming_the_path(
    tmp_path: Path, existing: bool, reason: str
) -> None:
    """A state file in a read-only directory fails with StateError naming the path."""
    ro = tmp_path / "ro"
    ro.mkdir()
    target = ro / "state.db"
    if existing:  # the file itself is writable, but SQLite cannot create its -wal beside it
        _create(target, 0o600)
    ro.chmod(0o500)
    try:
        outcome = await _open_outcome(target)
    finally:
        ro.chmod(0o700)
    assert outcome.startswith("StateError: ")
    assert str(target) in outcome
    assert reason in outcome


# --- the event loop -----------------------------------------------------------------------------


async def test_event_loop_keeps_running_while_inserts_run(path: Path) -> None:
    """Database work never blocks the event loop: other tasks run between every insert."""
    s = await Store.open(path)
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)  # a yield, not a wait

    task = asyncio.create_task(ticker())
    seen: list[int] = []
    try:
        async with asyncio.timeout(60):
            for i in range(1000):
                await s.add_question(_question(f"1700000000.{i:06d}"))
                seen.append(ticks)
    finally:
        stop.set()
        await task
        await s.close()
    assert all(later > earlier for earlier, later in itertools.pairwise(seen))


async def test_thread_has_questions_tells_the_bots_threads_apart(tmp_path: Path) -> None:
    """A thread counts as the bot's once a question was recorded there, and only that thread."""
    async with await Store.open(tmp_path / "s.db") as store:
        assert not await store.thread_has_questions("C1", "100.000001")
        await store.add_question(
            QuestionRecord(
                channel_id="C1",
                ts="100.000002",
                thread_ts="100.000001",
                user_id="U1",
                text="q",
                trellis_message_id=None,
                status=Status.QUEUED,
            )
        )
        assert await store.thread_has_questions("C1", "100.000001")
        assert not await store.thread_has_questions("C1", "200.000001")
        assert not await store.thread_has_questions("C2", "100.000001")
