"""`trellis-slack check`'s state store line: SQLite files and a real PostgreSQL, never the password."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.helpers import bot_env
from tests.pg import PostgresServer
from trellis_slack.cli import main
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis
from trellis_slack.ops.store_checks import NAME, store_check
from trellis_slack.store.open import open_store
from trellis_slack.store.postgres_schema import SCHEMA_VERSION as PG_VERSION
from trellis_slack.store.schema import SCHEMA_VERSION as SQLITE_VERSION


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """`main` configures the root logger; put it back for the other tests."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    yield
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def with_netloc(url: str, netloc: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------- SQLite


async def test_no_state_file_yet_is_fine_and_none_is_created(tmp_path: Path) -> None:
    """A path where no state file exists yet passes (run creates it); the check creates nothing."""
    path = tmp_path / "state.db"
    check = await store_check(str(path))
    assert check.status == "ok"
    assert check.detail == (
        f"SQLite file {path}: no state file yet; `run` creates it (schema version {SQLITE_VERSION})"
    )
    assert list(tmp_path.iterdir()) == []  # noqa: ASYNC240 (one listing, nothing runs meanwhile)


async def test_a_missing_folder_fails(tmp_path: Path) -> None:
    """A state file path in a folder that does not exist fails, saying so."""
    check = await store_check(str(tmp_path / "nowhere" / "state.db"))
    assert check.status == "failed"
    assert "does not exist" in check.detail
    assert check.fix is not None


async def test_a_current_state_file_is_reachable_and_writable(tmp_path: Path) -> None:
    """A state file the bot wrote passes with its schema version, current, and writable."""
    path = tmp_path / "state.db"
    await (await open_store(str(path))).close()
    check = await store_check(str(path))
    assert (check.status, check.detail) == (
        "ok",
        f"SQLite file {path}: schema version {SQLITE_VERSION} (current), writable",
    )


async def test_an_older_state_file_passes_and_is_not_migrated(tmp_path: Path) -> None:
    """An older state file passes (run migrates it) and is left at its version."""
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 3")
    check = await store_check(str(path))
    assert check.status == "ok"
    assert f"schema version 3: `run` migrates it to {SQLITE_VERSION}" in check.detail
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3


async def test_a_newer_state_file_fails(tmp_path: Path) -> None:
    """A state file from a newer version fails: this version would refuse to start on it."""
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SQLITE_VERSION + 1}")
    check = await store_check(str(path))
    assert check.status == "failed"
    assert "newer than this version understands" in check.detail
    assert check.fix is not None
    assert "upgrade trellis-slack" in check.fix


async def test_a_file_that_is_not_a_database_fails(tmp_path: Path) -> None:
    """A file that is not SQLite fails with what it is, not a traceback."""
    path = tmp_path / "state.db"
    path.write_bytes(b"this is a text file, not a database\n" * 200)
    check = await store_check(str(path))
    assert check.status == "failed"
    assert check.detail == f"SQLite file {path}: this file is not a SQLite database"


async def test_a_file_held_locked_fails_within_the_time_given(tmp_path: Path) -> None:
    """A file whose write lock another process keeps fails after per_call seconds, saying so."""
    path = tmp_path / "state.db"
    await (await open_store(str(path))).close()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        check = await store_check(str(path), per_call=0.2)
    finally:
        holder.close()
    assert check.status == "failed"
    assert "holds its write lock" in check.detail


# ----------------------------------------------------------------------------------- PostgreSQL


async def test_an_empty_database_passes_and_is_left_empty(postgres_url: str) -> None:
    """An empty PostgreSQL database passes (run creates the tables); the check creates none."""
    check = await store_check(postgres_url)
    assert check.status == "ok", check
    assert check.detail.startswith("PostgreSQL postgresql://trellis:***@127.0.0.1:")
    assert check.detail.endswith(
        f": reachable, no tables yet: `run` creates them (schema version {PG_VERSION}), writable"
    )
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert await cur.fetchone() == (0,)


async def test_a_migrated_database_passes(postgres_url: str) -> None:
    """A database the bot migrated passes: reachable, schema current, writable."""
    await (await open_store(postgres_url)).close()
    check = await store_check(postgres_url)
    assert check.status == "ok", check
    assert check.detail.endswith(f": reachable, schema version {PG_VERSION} (current), writable")


async def test_a_newer_database_fails(postgres_url: str) -> None:
    """A database written by a newer version fails with the fix."""
    await (await open_store(postgres_url)).close()
    async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
        await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (PG_VERSION + 1,))
    check = await store_check(postgres_url)
    assert check.status == "failed"
    assert f"schema version {PG_VERSION + 1}, newer" in check.detail


async def test_a_wrong_password_fails_without_showing_it(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    """A password PostgreSQL rejects fails with the fix; neither password is in the line."""
    wrong = "not-the-" + postgres_server.password
    url = with_netloc(postgres_url, f"trellis:{wrong}@127.0.0.1:{postgres_server.port}")
    check = await store_check(url)
    assert check.status == "failed"
    assert "password authentication failed" in check.detail
    assert check.fix == "check the user and password in TRELLIS_SLACK_DB"
    text = f"{check.detail} {check.fix}"
    assert wrong not in text
    assert postgres_server.password not in text


async def test_a_wrong_port_fails_as_unreachable(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    """Nothing listening on the URL's port fails with where to look, without the password."""
    url = with_netloc(postgres_url, f"trellis:{postgres_server.password}@127.0.0.1:{free_port()}")
    check = await store_check(url, per_call=5)
    assert check.status == "failed"
    assert "Connection refused" in check.detail
    assert check.fix is not None
    assert "host and port" in check.fix
    assert postgres_server.password not in check.detail


async def test_a_missing_database_fails_with_create_it(postgres_server: PostgresServer) -> None:
    """A database that does not exist fails: create it, the bot makes its tables."""
    check = await store_check(postgres_server.url(f"missing_{secrets.token_hex(4)}"))
    assert check.status == "failed"
    assert "does not exist" in check.detail
    assert check.fix is not None
    assert check.fix.startswith("create the database")


@pytest.fixture
def stranger(postgres_server: PostgresServer, postgres_url: str) -> Iterator[str]:
    """The URL of ``postgres_url``'s database as a user that may log in but owns nothing."""
    name, password = f"stranger_{secrets.token_hex(4)}", secrets.token_urlsafe(9)
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    yield with_netloc(postgres_url, f"{name}:{password}@127.0.0.1:{postgres_server.port}")
    with psycopg.connect(postgres_url, autocommit=True) as owner:
        owner.execute(f"DROP OWNED BY {name}")
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f"DROP ROLE {name}")


async def test_a_user_who_may_not_create_tables_fails(stranger: str) -> None:
    """A user without CREATE on the schema (PostgreSQL 15's default) fails as not writable."""
    check = await store_check(stranger)
    assert check.status == "failed"
    assert "not writable (this user may not create tables here" in check.detail


async def test_a_user_who_may_not_write_the_tables_fails(postgres_url: str, stranger: str) -> None:
    """A user who may read the bot's tables but not write them fails as not writable."""
    await (await open_store(postgres_url)).close()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as owner:
        user = urlsplit(stranger).username
        await owner.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {user}")
    check = await store_check(stranger)
    assert check.status == "failed"
    assert "not writable (this user may not write the bot's tables)" in check.detail


# ------------------------------------------------------------------------------- the whole check


async def test_check_reports_the_database_without_its_password(
    slack: FakeSlack,
    trellis: FakeTrellis,
    tmp_path: Path,
    postgres_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`trellis-slack check` with a PostgreSQL URL has a ✓ state store line, and no password."""
    password = urlsplit(postgres_url).password
    assert password
    env = bot_env(slack, trellis, tmp_path / "state.db", TRELLIS_SLACK_DB=postgres_url)
    code = await asyncio.to_thread(main, ["check"], env)
    out = capsys.readouterr()
    assert code == 0, out.out
    assert f"✓ {NAME}: PostgreSQL postgresql://trellis:***@127.0.0.1:" in out.out
    assert "All 7 checks passed" in out.out
    assert password not in out.out + out.err
    assert out.err == ""  # no log line above (or below) the report


async def test_check_fails_on_an_unreachable_database(
    slack: FakeSlack,
    trellis: FakeTrellis,
    tmp_path: Path,
    postgres_server: PostgresServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unreachable database is a ✗ line and exit 1; the password stays hidden."""
    url = with_netloc(
        postgres_server.url("trellis"),
        f"trellis:{postgres_server.password}@127.0.0.1:{free_port()}",
    )
    env = bot_env(slack, trellis, tmp_path / "state.db", TRELLIS_SLACK_DB=url)
    code = await asyncio.to_thread(main, ["check"], env)
    out = capsys.readouterr()
    assert code == 1
    assert f"✗ {NAME}: PostgreSQL postgresql://trellis:***@127.0.0.1:" in out.out
    assert "1 of 7 checks failed" in out.out
    assert postgres_server.password not in out.out + out.err


async def test_a_bad_database_setting_skips_the_store_check(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A TRELLIS_SLACK_DB that is neither a path nor a PostgreSQL URL is reported once; its check is skipped."""
    env = bot_env(slack, trellis, tmp_path / "state.db", TRELLIS_SLACK_DB="mysql://u:pw@h/db")
    code = await asyncio.to_thread(main, ["check"], env)
    out = capsys.readouterr().out
    assert code == 1
    assert "TRELLIS_SLACK_DB must be a file path or a postgresql:// URL" in out
    assert f"- {NAME}: TRELLIS_SLACK_DB has a problem (above)" in out
