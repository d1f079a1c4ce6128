"""Copying a SQLite state file into a PostgreSQL store, so an installation can grow to replicas."""

from __future__ import annotations

import logging
import os
import sqlite3

import psycopg
from psycopg.rows import TupleRow

from trellis_slack.errors import StateError
from trellis_slack.store.postgres import PostgresStore
from trellis_slack.store.sqlite import SqliteStore
from trellis_slack.store.target import describe, scrub

logger = logging.getLogger(__name__)

#: What is copied: each table and its columns, in an order that keeps references sound. Leases
#: (thread claims, replicas, slots, rates, commands) are not state to keep: they end with the
#: process that held them. ``bot_posts`` is keyed by its content, not by its id (see `_copy_posts`).
TABLES: dict[str, tuple[str, ...]] = {
    "event_claims": ("channel_id", "ts", "claimed_at"),
    "conversations": (
        "team_id", "channel_id", "thread_ts", "owner_id", "chat_id", "integration_id", "model",
        "updated_at", "used_at", "retired_at",
    ),
    "questions": (
        "channel_id", "ts", "thread_ts", "user_id", "text", "trellis_message_id", "status",
        "owner_id", "updated_at", "chat_retired_at", "handler",
    ),
    "bot_posts": ("channel_id", "question_ts", "ts", "file_id", "kind", "created_at"),
    "channel_settings": ("team_id", "channel_id", "integration_id", "model", "updated_at"),
    "greeted_users": ("team_id", "user_id", "greeted_at"),
    "answers": ("channel_id", "question_ts", "message_id", "saved_at"),
    "votes": ("channel_id", "question_ts", "user_id", "rating", "voted_at"),
    "answer_steps": (
        "channel_id", "question_ts", "position", "kind", "title", "sql", "tables", "row_count",
        "text",
    ),
    "private_answers": ("channel_id", "question_ts", "body", "shared_by"),
    "question_files": ("channel_id", "ts", "files"),
}  # fmt: skip

# A post already in PostgreSQL (the same message or file for the same question) is not copied.
_POST_MISSING = (
    "NOT EXISTS (SELECT 1 FROM bot_posts p WHERE p.channel_id = %s AND p.question_ts = %s"
    " AND p.ts IS NOT DISTINCT FROM %s AND p.file_id IS NOT DISTINCT FROM %s)"
)


async def copy_sqlite_to_postgres(sqlite_path: str, postgres_url: str) -> dict[str, int]:
    """Copy every table of the state file at ``sqlite_path`` into the database at ``postgres_url``.

    Both are migrated to this version first (the state file too, as ``run`` would). Rows already
    in PostgreSQL are kept as they are (``ON CONFLICT DO NOTHING``), so the copy is safe to run
    again, or after replicas started writing; it is one transaction (all or nothing). Returns
    the rows added per table (0 everywhere on a re-run). Stop the bot that uses the file first.
    Raises `StateError` (without the password) when either side fails.
    """
    if not os.path.isfile(sqlite_path):  # noqa: ASYNC240 (one stat, before anything opens)
        raise StateError(f"there is no state file at {sqlite_path}")
    await (await SqliteStore.open(sqlite_path)).close()
    await (await PostgresStore.open(postgres_url)).close()
    try:
        source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StateError(f"cannot read the state file {sqlite_path}: {exc}") from exc
    try:
        rows = {table: _read(source, table, columns) for table, columns in TABLES.items()}
    except sqlite3.Error as exc:
        raise StateError(f"cannot read the state file {sqlite_path}: {exc}") from exc
    finally:
        source.close()
    try:
        async with (
            await psycopg.AsyncConnection.connect(postgres_url) as conn,
            conn.transaction(),
        ):
            added = {table: await _write(conn, table, rows[table]) for table in TABLES}
    except psycopg.Error as exc:
        where = describe(postgres_url)
        raise StateError(scrub(f"copying into {where} failed: {exc}", postgres_url)) from None
    logger.info(
        "copied %s into %s: %s",
        sqlite_path,
        describe(postgres_url),
        ", ".join(f"{n} {table}" for table, n in added.items()),
    )
    return added


def _read(
    source: sqlite3.Connection, table: str, columns: tuple[str, ...]
) -> list[tuple[object, ...]]:
    order = "id" if table == "bot_posts" else "rowid"
    return source.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}").fetchall()  # noqa: S608


async def _count(conn: psycopg.AsyncConnection[TupleRow], table: str) -> int:
    cur = await conn.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
    row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def _write(
    conn: psycopg.AsyncConnection[TupleRow], table: str, rows: list[tuple[object, ...]]
) -> int:
    before = await _count(conn, table)
    columns = TABLES[table]
    marks = ", ".join(["%s"] * len(columns))
    async with conn.cursor() as cur:
        if table == "bot_posts":
            for row in rows:  # content-keyed: one at a time, in the order they were posted
                await cur.execute(
                    f"INSERT INTO bot_posts ({', '.join(columns)}) SELECT {marks}"
                    f" WHERE {_POST_MISSING}",
                    (*row, row[0], row[1], row[2], row[3]),
                )
        elif rows:
            await cur.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
                " ON CONFLICT DO NOTHING",
                rows,
            )
    return await _count(conn, table) - before
