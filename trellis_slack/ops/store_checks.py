"""``trellis-slack check``, the state store: ``TRELLIS_SLACK_DB`` reachable, its schema, writable.

Choices made here (the docs leave them open):

* The check changes nothing: it neither creates a state file nor migrates a database (a
  check run beside older replicas must not upgrade their database underneath them). Writable
  is proven by what would be written, then undone: SQLite's write lock taken and released
  (``BEGIN IMMEDIATE`` / ``ROLLBACK``), PostgreSQL's ``CREATE TABLE`` (what migrations need)
  inside a transaction that is rolled back, and the tables' privileges once they exist.
* A SQLite file that does not exist yet is fine when its folder is writable: ``run`` creates
  it. An empty PostgreSQL database is fine too: ``run`` creates the tables.
* A schema older than this version is fine (``run`` migrates it), a newer one fails: this
  version would refuse to start on it.
* The target is named as `store.target.describe` shows it: never with its password.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3

import psycopg

from trellis_slack.ops.check_report import Check
from trellis_slack.store.postgres_schema import SCHEMA_VERSION as PG_SCHEMA_VERSION
from trellis_slack.store.schema import SCHEMA_VERSION as SQLITE_SCHEMA_VERSION
from trellis_slack.store.target import describe, is_postgres, scrub

__all__ = ["NAME", "store_check"]

NAME = "State store (TRELLIS_SLACK_DB)"


async def store_check(target: str, per_call: float = 10.0) -> Check:
    """Check the SQLite file or PostgreSQL database at ``target``; ``per_call`` bounds each step."""
    if is_postgres(target):
        return await _postgres(target, per_call)
    return await asyncio.to_thread(_sqlite, target, per_call)


def _schema(found: int, current: int) -> tuple[bool, str]:
    """(fine, words) for a schema version found against the one this version writes."""
    if found > current:
        return False, f"schema version {found}, newer than this version understands ({current})"
    if found == current:
        return True, f"schema version {found} (current)"
    if found == 0:
        return True, f"no tables yet: `run` creates them (schema version {current})"
    return True, f"schema version {found}: `run` migrates it to {current}"


_NEWER_FIX = (
    "upgrade trellis-slack to the version that wrote it, or point TRELLIS_SLACK_DB at "
    "another state store"
)


# --------------------------------------------------------------------------------------- SQLite


def _sqlite(path: str, per_call: float) -> Check:
    shown = f"SQLite file {path}"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(path):
        if not os.path.isdir(folder):
            return Check(
                NAME,
                "failed",
                f"{shown}: the folder {folder} does not exist",
                "create the folder, or set TRELLIS_SLACK_DB to a path in one that exists",
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            return Check(
                NAME,
                "failed",
                f"{shown}: no state file yet, and {folder} is not writable",
                "let the bot's user write the folder, or choose another path",
            )
        return Check(
            NAME,
            "ok",
            f"{shown}: no state file yet; `run` creates it (schema version {SQLITE_SCHEMA_VERSION})",
        )
    try:
        found = _sqlite_probe(path, per_call)
    except sqlite3.Error as exc:
        return Check(NAME, "failed", f"{shown}: {_sqlite_problem(exc)}", _sqlite_fix(exc, folder))
    fine, schema = _schema(found, SQLITE_SCHEMA_VERSION)
    if not fine:
        return Check(NAME, "failed", f"{shown}: {schema}", _NEWER_FIX)
    if not os.access(folder, os.W_OK | os.X_OK):
        # SQLite makes its -wal and -shm files beside the state file.
        return Check(
            NAME,
            "failed",
            f"{shown}: {schema}; the folder {folder} is not writable",
            "let the bot's user write the folder: SQLite keeps its journal beside the file",
        )
    return Check(NAME, "ok", f"{shown}: {schema}, writable")


def _sqlite_probe(path: str, per_call: float) -> int:
    """The file's schema version, after taking its write lock and giving it back."""
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=per_call, isolation_level=None)
    try:
        row = conn.execute("PRAGMA user_version").fetchone()
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # is it a database at all
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return int(row[0])
    finally:
        conn.close()


def _sqlite_problem(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "not a database" in text:
        return "this file is not a SQLite database"
    if "readonly" in text or "unable to open" in text:
        return f"cannot write it ({text})"
    if "locked" in text:
        return "another process holds its write lock and does not give it back"
    return text


def _sqlite_fix(exc: sqlite3.Error, folder: str) -> str:
    text = str(exc)
    if "not a database" in text:
        return "point TRELLIS_SLACK_DB at the bot's state file, or at a path where none exists yet"
    if "locked" in text:
        return "stop whatever else has the file open, then check again"
    return f"let the bot's user read and write the file and the folder {folder}"


# ----------------------------------------------------------------------------------- PostgreSQL


async def _postgres(url: str, per_call: float) -> Check:
    shown = f"PostgreSQL {describe(url)}"
    try:
        async with asyncio.timeout(per_call):
            found, writable = await _postgres_probe(url, per_call)
    except TimeoutError:
        return Check(NAME, "failed", f"{shown}: no answer within {per_call:g} s", _UNREACHABLE)
    except psycopg.Error as exc:
        problem = scrub(
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, url
        )
        return Check(NAME, "failed", f"{shown}: {problem}", _postgres_fix(problem))
    fine, schema = _schema(found, PG_SCHEMA_VERSION)
    if not fine:
        return Check(NAME, "failed", f"{shown}: {schema}", _NEWER_FIX)
    if writable:
        return Check(
            NAME,
            "failed",
            f"{shown}: {schema}; not writable ({writable})",
            "connect to the primary server, as a user that owns the database",
        )
    return Check(NAME, "ok", f"{shown}: reachable, {schema}, writable")


_UNREACHABLE = (
    "check the host and port in TRELLIS_SLACK_DB, that PostgreSQL runs there and accepts TCP "
    "connections from this host (listen_addresses, pg_hba.conf, firewalls)"
)


async def _postgres_probe(url: str, per_call: float) -> tuple[int, str]:
    """(schema version, "" or why it is not writable); nothing is left changed."""
    async with await psycopg.AsyncConnection.connect(
        url, connect_timeout=max(1, round(per_call)), application_name="trellis-slack check"
    ) as conn:
        cur = await conn.execute("SELECT to_regclass('schema_version') IS NOT NULL")
        row = await cur.fetchone()
        found = 0
        if row is not None and row[0]:
            cur = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_version")
            row = await cur.fetchone()
            found = 0 if row is None else int(row[0])
        await conn.rollback()
        return found, await _not_writable(conn, has_tables=found > 0)


async def _not_writable(
    conn: psycopg.AsyncConnection[tuple[object, ...]], *, has_tables: bool
) -> str:
    cur = await conn.execute("SHOW transaction_read_only")
    row = await cur.fetchone()
    if row is not None and row[0] == "on":
        return "the server is read-only: a standby?"
    if has_tables:
        cur = await conn.execute(
            "SELECT has_table_privilege('questions', 'INSERT, UPDATE, DELETE')"
        )
        row = await cur.fetchone()
        if row is None or not row[0]:
            return "this user may not write the bot's tables"
    try:
        await conn.execute("CREATE TABLE trellis_slack_check_probe (probe integer)")
    except psycopg.errors.InsufficientPrivilege:
        return "this user may not create tables here: migrations need to"
    finally:
        await conn.rollback()
    return ""


def _postgres_fix(problem: str) -> str:
    if "password authentication failed" in problem or "no password supplied" in problem:
        return "check the user and password in TRELLIS_SLACK_DB"
    if "does not exist" in problem and "database" in problem:
        return "create the database (and a user that owns it): the bot creates its tables"
    if "permission denied" in problem:
        return "connect as a user that owns the database (or may create tables in it)"
    return _UNREACHABLE
