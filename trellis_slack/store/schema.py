"""The SQLite store's schema: its migrations, and opening a state file safely (0600, WAL)."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable

from sqlite_utils import Database

from trellis_slack.errors import StateError

logger = logging.getLogger(__name__)

#: How long a write waits for another connection's lock before giving up (milliseconds).
BUSY_TIMEOUT_MS = 5_000

#: The path that opens a private in-memory database (for tests).
MEMORY = ":memory:"


# --- schema migrations ------------------------------------------------------------------------
# Each function moves the schema up one version; MIGRATIONS[n] turns version n into n + 1.
# Never edit a released migration: append a new one.


def _migration_1_initial(db: Database) -> None:
    db.create_table(
        "event_claims",
        {"channel_id": str, "ts": str, "claimed_at": float},
        pk=("channel_id", "ts"),
        not_null={"claimed_at"},
    )
    db.table("event_claims").create_index(["claimed_at"])
    db.create_table(
        "conversations",
        {
            "team_id": str,
            "channel_id": str,
            "thread_ts": str,
            "owner_id": str,
            "chat_id": str,
            "integration_id": str,
            "model": str,
            "updated_at": float,
        },
        pk=("team_id", "channel_id", "thread_ts", "owner_id"),
        not_null={"chat_id", "updated_at"},
    )
    db.create_table(
        "questions",
        {
            "channel_id": str,
            "ts": str,
            "thread_ts": str,
            "user_id": str,
            "text": str,
            "trellis_message_id": str,
            "status": str,
            "owner_id": str,
            "updated_at": float,
        },
        pk=("channel_id", "ts"),
        not_null={"thread_ts", "user_id", "text", "status", "owner_id", "updated_at"},
    )
    db.table("questions").create_index(["channel_id", "thread_ts"])
    db.create_table(
        "bot_posts",
        {
            "id": int,
            "channel_id": str,
            "question_ts": str,
            "ts": str,
            "file_id": str,
            "kind": str,
            "created_at": float,
        },
        pk="id",
        not_null={"channel_id", "question_ts", "kind", "created_at"},
    )
    bot_posts = db.table("bot_posts")
    bot_posts.create_index(["channel_id", "question_ts"])
    bot_posts.create_index(["channel_id", "ts"])
    bot_posts.create_index(["channel_id", "file_id"])
    db.create_table(
        "channel_settings",
        {
            "team_id": str,
            "channel_id": str,
            "integration_id": str,
            "model": str,
            "updated_at": float,
        },
        pk=("team_id", "channel_id"),
        not_null={"updated_at"},
    )


def _migration_2_greeted_users(db: Database) -> None:
    """Who was already greeted in the app's Messages tab (the greeting is sent once)."""
    db.create_table(
        "greeted_users",
        {"team_id": str, "user_id": str, "greeted_at": float},
        pk=("team_id", "user_id"),
        not_null={"greeted_at"},
    )


def _migration_3_thread_turns(db: Database) -> None:
    """Who answers in a thread right now: one answer at a time per thread, in the store."""
    db.create_table(
        "thread_turns",
        {
            "channel_id": str,
            "thread_ts": str,
            "question_ts": str,
            "holder": str,
            "claimed_at": float,
        },
        pk=("channel_id", "thread_ts"),
        not_null={"question_ts", "holder", "claimed_at"},
    )


def _migration_4_feedback(db: Database) -> None:
    """Each answer's Trellis assistant message, and each person's vote on it."""
    db.create_table(
        "answers",
        {"channel_id": str, "question_ts": str, "message_id": str, "saved_at": float},
        pk=("channel_id", "question_ts"),
        not_null={"message_id", "saved_at"},
    )
    db.create_table(
        "votes",
        {
            "channel_id": str,
            "question_ts": str,
            "user_id": str,
            "rating": str,
            "voted_at": float,
        },
        pk=("channel_id", "question_ts", "user_id"),
        not_null={"rating", "voted_at"},
    )


def _migration_5_chat_upkeep(db: Database) -> None:
    """When each thread's chat was last used, and when it was retired (deleted in Trellis)."""
    conversations, questions = db.table("conversations"), db.table("questions")
    for table, column in (
        (conversations, "used_at"),
        (conversations, "retired_at"),
        (questions, "chat_retired_at"),
    ):
        if column not in table.columns_dict:  # a file rewound by hand may have them already
            table.add_column(column, float)
    db.execute("UPDATE conversations SET used_at = updated_at WHERE used_at IS NULL")
    conversations.create_index(["owner_id", "retired_at", "used_at"], if_not_exists=True)


def _migration_6_answer_steps(db: Database) -> None:
    """The steps of each answer (tool events): per question, in order."""
    db.create_table(
        "answer_steps",
        {
            "channel_id": str,
            "question_ts": str,
            "position": int,
            "kind": str,
            "title": str,
            "sql": str,
            "tables": str,  # JSON list of table names
            "row_count": int,
            "text": str,
        },
        pk=("channel_id", "question_ts", "position"),
        not_null={"kind", "tables"},
        if_not_exists=True,  # a file rewound by hand may have it already
    )


def _migration_7_private_answers(db: Database) -> None:
    """Answers shown only to their asker (``PRIVATE_ANSWERS=ephemeral``), kept for Share."""
    db.create_table(
        "private_answers",
        {"channel_id": str, "question_ts": str, "body": str, "shared_by": str},
        pk=("channel_id", "question_ts"),
        not_null={"body"},
        if_not_exists=True,
    )


def _migration_8_replicas(db: Database) -> None:
    """Replicas: heartbeats, each question's handler and claim's replica, commands, slots, rates.

    Each step may find its work done (a file rewound by hand).
    """
    for table, column in (("questions", "handler"), ("thread_turns", "replica")):
        if column not in db.table(table).columns_dict:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
    db.create_table(
        "replicas",
        {"replica": str, "expires_at": float},
        pk="replica",
        not_null={"expires_at"},
        if_not_exists=True,
    )
    db.create_table(
        "commands",
        {
            "id": int,
            "replica": str,
            "kind": str,
            "channel_id": str,
            "ts": str,
            "user_id": str,
            "payload": str,
            "created_at": float,
        },
        pk="id",
        not_null={"replica", "kind", "channel_id", "ts", "user_id", "payload", "created_at"},
        if_not_exists=True,
    )
    db.table("commands").create_index(["replica", "id"], if_not_exists=True)
    db.create_table(
        "slots",
        {"key": str, "slot": int, "replica": str, "claimed_at": float},
        pk=("key", "slot"),
        not_null={"replica", "claimed_at"},
        if_not_exists=True,
    )
    db.create_table(
        "rates",
        {"id": int, "key": str, "at": float},
        pk="id",
        not_null={"key", "at"},
        if_not_exists=True,
    )
    db.table("rates").create_index(["key", "at"], if_not_exists=True)


def _migration_9_question_files(db: Database) -> None:
    """The files attached to each question (Slack's links, never their content)."""
    db.create_table(
        "question_files",
        {"channel_id": str, "ts": str, "files": str},
        pk=("channel_id", "ts"),
        not_null={"files"},
        if_not_exists=True,
    )


MIGRATIONS: tuple[Callable[[Database], None], ...] = (
    _migration_1_initial,
    _migration_2_greeted_users,
    _migration_3_thread_turns,
    _migration_4_feedback,
    _migration_5_chat_upkeep,
    _migration_6_answer_steps,
    _migration_7_private_answers,
    _migration_8_replicas,
    _migration_9_question_files,
)
#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)

#: The tables `stats` counts.
TABLES = ("event_claims", "conversations", "questions", "bot_posts", "channel_settings")


def _user_version(db: Database) -> int:
    row = db.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(db: Database, where: str) -> int:
    """Bring the schema up to `SCHEMA_VERSION`, one transaction per step; return the old version."""
    found = _user_version(db)
    if found > SCHEMA_VERSION:
        raise StateError(
            f"the state file {where} was written by a newer version of trellis-slack "
            f"(schema version {found}; this version understands up to {SCHEMA_VERSION}). "
            "Upgrade trellis-slack, or point it at a different state file."
        )
    if found == SCHEMA_VERSION:
        return found
    for target, migration in enumerate(MIGRATIONS, start=1):
        # IMMEDIATE takes the write lock before reading the version, so two processes opening
        # the same new file cannot both run a step.
        db.execute("BEGIN IMMEDIATE")
        try:
            current = _user_version(db)
            if current > SCHEMA_VERSION:
                raise StateError(
                    f"the state file {where} was upgraded to schema version {current} by a "
                    "newer trellis-slack while this one was opening it"
                )
            if current < target:
                migration(db)
                # PRAGMA cannot take a bound parameter; target is an int from enumerate().
                db.execute(f"PRAGMA user_version = {int(target)}")
                logger.info("state store %s: migrated schema to version %d", where, target)
            db.execute("COMMIT")
        except BaseException:
            db.rollback()
            raise
    return found


def _tighten(path: str) -> None:
    """Make an existing state file (and its WAL companions) owner-only."""
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            mode = os.stat(name).st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & 0o077:
            try:
                os.chmod(name, 0o600)
            except OSError as exc:
                logger.warning(
                    "state file %s is readable by others (mode %o) and could not be made "
                    "owner-only: %s",
                    name,
                    mode,
                    exc.strerror,
                )
            else:
                logger.info("state file %s was mode %o; made it owner-only (600)", name, mode)


def connect(path: str) -> sqlite3.Connection:
    return sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_MS / 1000,
        check_same_thread=False,
    )


def open_sync(path: str) -> Database:
    """Create (0600) or open the file, configure the connection and migrate; on the worker."""
    if path == MEMORY:
        db = Database(connect(path), execute_plugins=False)
        migrate(db, "in memory")
        return db
    # umask is process-wide: keep the window short. Inside it anything created (the file, and
    # the -wal/-shm files SQLite makes on first use) is owner-only; later SQLite gives
    # re-created -wal/-shm files the main file's mode.
    old_umask = os.umask(0o077)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.close(fd)
        _tighten(path)
        conn = connect(path)
        db = Database(conn, execute_plugins=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_MS)}")
            db.enable_wal()
            db.execute("PRAGMA synchronous = NORMAL")
            old = migrate(db, path)
        except sqlite3.Error as exc:
            conn.close()
            directory = os.path.dirname(os.path.abspath(path))
            hint = ""
            if not os.access(directory, os.W_OK | os.X_OK):
                hint = f" (SQLite must create files beside it, and {directory} is not writable)"
            raise StateError(f"cannot open the state file {path}: {exc}{hint}") from exc
        except BaseException:
            conn.close()
            raise
    finally:
        os.umask(old_umask)
    logger.info("state store opened at %s (schema version %d, was %d)", path, SCHEMA_VERSION, old)
    return db
