"""The SQLite state store: thread ↔ chat mapping, event dedupe, questions and bot posts."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlite_utils import Database

from trellis_slack.errors import StateError

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Every status a question can be in.
QUESTION_STATUSES = frozenset(
    {"queued", "answering", "answered", "failed", "stopped", "dropped", "deleted"}
)
#: Every kind of message or file the bot posts for a question.
BOT_POST_KINDS = frozenset({"status", "answer", "chart", "table", "file", "note", "error"})

#: How long a write waits for another connection's lock before giving up (milliseconds).
BUSY_TIMEOUT_MS = 5_000

_MEMORY = ":memory:"
_SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Conversation:
    """The Trellis chat that answers one Slack thread (for one asker, in per-user mode)."""

    team_id: str
    channel_id: str
    thread_ts: str
    #: "" when every Slack user shares one Trellis identity; the asker's user id in per-user mode.
    owner_id: str
    chat_id: str
    integration_id: str | None
    model: str | None


@dataclass(frozen=True, slots=True)
class QuestionRecord:
    """A Slack message the bot took as a question, and how far answering it got."""

    channel_id: str
    ts: str
    thread_ts: str
    user_id: str
    text: str
    trellis_message_id: str | None
    #: One of `QUESTION_STATUSES`.
    status: str
    owner_id: str = ""

    def __post_init__(self) -> None:
        _check_status(self.status)


@dataclass(frozen=True, slots=True)
class BotPost:
    """A message (``ts``) or file (``file_id``) the bot posted while answering a question."""

    channel_id: str
    question_ts: str
    ts: str | None
    file_id: str | None
    #: One of `BOT_POST_KINDS`.
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in BOT_POST_KINDS:
            raise ValueError(f"unknown bot post kind {self.kind!r}")
        if self.ts is None and self.file_id is None:
            raise ValueError("a bot post needs a message ts or a file id")


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """Per-channel choices of Trellis integration and model (None means the app's default)."""

    team_id: str
    channel_id: str
    integration_id: str | None
    model: str | None


def _check_status(status: str) -> None:
    if status not in QUESTION_STATUSES:
        raise ValueError(f"unknown question status {status!r}")


def _ts_order(ts: str) -> tuple[int, Decimal, str]:
    """Sort key putting Slack timestamps in numeric order; anything unparsable goes last."""
    try:
        number = Decimal(ts)
    except InvalidOperation:
        return (1, Decimal(0), ts)
    if not number.is_finite():
        return (1, Decimal(0), ts)
    return (0, number, ts)


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


MIGRATIONS: tuple[Callable[[Database], None], ...] = (
    _migration_1_initial,
    _migration_2_greeted_users,
)
#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)

_TABLES = ("event_claims", "conversations", "questions", "bot_posts", "channel_settings")


def _user_version(db: Database) -> int:
    row = db.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def _migrate(db: Database, where: str) -> int:
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


def _connect(path: str) -> sqlite3.Connection:
    return sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_MS / 1000,
        check_same_thread=False,
    )


def _open_sync(path: str) -> Database:
    """Create (0600) or open the file, configure the connection and migrate; on the worker."""
    if path == _MEMORY:
        db = Database(_connect(path), execute_plugins=False)
        _migrate(db, "in memory")
        return db
    # umask is process-wide: keep the window short. Inside it anything created (the file, and
    # the -wal/-shm files SQLite makes on first use) is owner-only; later SQLite gives
    # re-created -wal/-shm files the main file's mode.
    old_umask = os.umask(0o077)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.close(fd)
        _tighten(path)
        conn = _connect(path)
        db = Database(conn, execute_plugins=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_MS)}")
            db.enable_wal()
            db.execute("PRAGMA synchronous = NORMAL")
            old = _migrate(db, path)
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


def _question(row: dict[str, Any]) -> QuestionRecord:
    return QuestionRecord(
        channel_id=row["channel_id"],
        ts=row["ts"],
        thread_ts=row["thread_ts"],
        user_id=row["user_id"],
        text=row["text"],
        trellis_message_id=row["trellis_message_id"],
        status=row["status"],
        owner_id=row["owner_id"],
    )


def _conversation(row: dict[str, Any]) -> Conversation:
    return Conversation(
        team_id=row["team_id"],
        channel_id=row["channel_id"],
        thread_ts=row["thread_ts"],
        owner_id=row["owner_id"],
        chat_id=row["chat_id"],
        integration_id=row["integration_id"],
        model=row["model"],
    )


class Store:
    """Durable bot state in one SQLite file, all database work on one worker thread.

    Open with ``await Store.open(path)``; every method is a coroutine that runs its SQL on the
    store's single worker thread, so the event loop never waits on the disk and calls are
    serialised in the order they were made.
    """

    def __init__(
        self,
        db: Database,
        executor: ThreadPoolExecutor,
        where: str,
        clock: Callable[[], float],
    ) -> None:
        """Use `Store.open`; this only assembles an already opened store."""
        self._db = db
        self._executor = executor
        self._where = where
        self._clock = clock
        self._closed = False
        self._close_done: asyncio.Future[None] | None = None

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> Self:
        """Open (creating and migrating if needed) the state file at `path`; ":memory:" for tests.

        `clock` gives the current Unix time, for claim ages (tests pass a fake one).
        Raises `StateError` when the file cannot be created, opened or migrated.
        """
        where = os.fspath(path)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trellis-store")
        loop = asyncio.get_running_loop()
        try:
            try:
                db = await loop.run_in_executor(executor, _open_sync, where)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise StateError(f"cannot open the state file {where}: {reason}") from exc
            except sqlite3.Error as exc:
                raise StateError(f"cannot open the state file {where}: {exc}") from exc
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(db, executor, where, clock)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Checkpoint the WAL into the main file and close; later calls do nothing."""
        if self._close_done is None:
            self._closed = True
            loop = asyncio.get_running_loop()
            self._close_done = loop.run_in_executor(self._executor, self._close_sync)
            self._close_done.add_done_callback(lambda _: self._executor.shutdown(wait=False))
        await asyncio.shield(self._close_done)

    def _close_sync(self) -> None:
        try:
            if self._where != _MEMORY:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            logger.warning("state store %s: WAL checkpoint on close failed: %s", self._where, exc)
        finally:
            self._db.close()
        logger.info("state store %s closed", self._where)

    async def _run(self, fn: Callable[..., _T], /, *args: Any) -> _T:
        """Run `fn(*args)` on the worker thread; SQLite errors become `StateError`."""
        if self._closed:
            raise StateError("the state store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        except sqlite3.Error as exc:
            raise StateError(f"the state store at {self._where} failed: {exc}") from exc

    # --- event dedupe ---------------------------------------------------------------------------

    async def claim_event(self, channel_id: str, ts: str) -> bool:
        """True only the first time (channel, ts) is claimed, ever (claims survive restarts)."""
        return await self._run(self._claim_event, channel_id, ts)

    def _claim_event(self, channel_id: str, ts: str) -> bool:
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO event_claims (channel_id, ts, claimed_at) VALUES (?, ?, ?)",
            (channel_id, ts, self._clock()),
        )
        return cursor.rowcount == 1

    async def prune(self, older_than_days: float = 14.0) -> int:
        """Forget event claims older than `older_than_days`; return how many were forgotten."""
        if older_than_days < 0:
            raise ValueError("older_than_days must not be negative")
        return await self._run(self._prune, older_than_days)

    def _prune(self, older_than_days: float) -> int:
        cutoff = self._clock() - older_than_days * _SECONDS_PER_DAY
        cursor = self._db.execute("DELETE FROM event_claims WHERE claimed_at < ?", (cutoff,))
        removed = cursor.rowcount
        if removed:
            logger.info(
                "state store: forgot %d event claims older than %s days", removed, older_than_days
            )
        return removed

    # --- conversations --------------------------------------------------------------------------

    async def conversation(
        self, team_id: str, channel_id: str, thread_ts: str, owner_id: str = ""
    ) -> Conversation | None:
        """The Trellis chat saved for this thread (and owner), or None."""
        return await self._run(self._conversation, team_id, channel_id, thread_ts, owner_id)

    def _conversation(
        self, team_id: str, channel_id: str, thread_ts: str, owner_id: str
    ) -> Conversation | None:
        rows = self._db.table("conversations").rows_where(
            "team_id = ? AND channel_id = ? AND thread_ts = ? AND owner_id = ?",
            [team_id, channel_id, thread_ts, owner_id],
            limit=1,
        )
        row = next(rows, None)
        return None if row is None else _conversation(row)

    async def save_conversation(self, conversation: Conversation) -> None:
        """Insert or replace the chat for (team, channel, thread, owner)."""
        await self._run(self._save_conversation, conversation)

    def _save_conversation(self, c: Conversation) -> None:
        self._db.table("conversations").upsert(
            {
                "team_id": c.team_id,
                "channel_id": c.channel_id,
                "thread_ts": c.thread_ts,
                "owner_id": c.owner_id,
                "chat_id": c.chat_id,
                "integration_id": c.integration_id,
                "model": c.model,
                "updated_at": self._clock(),
            },
            pk=("team_id", "channel_id", "thread_ts", "owner_id"),
        )

    async def conversations_in_thread(
        self, team_id: str, channel_id: str, thread_ts: str
    ) -> list[Conversation]:
        """Every owner's chat in this thread, in the order they were first saved."""
        return await self._run(self._conversations_in_thread, team_id, channel_id, thread_ts)

    def _conversations_in_thread(
        self, team_id: str, channel_id: str, thread_ts: str
    ) -> list[Conversation]:
        rows = self._db.table("conversations").rows_where(
            "team_id = ? AND channel_id = ? AND thread_ts = ?",
            [team_id, channel_id, thread_ts],
            order_by="rowid",
        )
        return [_conversation(row) for row in rows]

    # --- questions ------------------------------------------------------------------------------

    async def add_question(self, question: QuestionRecord) -> None:
        """Insert or replace the question keyed by (channel, ts)."""
        await self._run(self._add_question, question)

    def _add_question(self, q: QuestionRecord) -> None:
        self._db.table("questions").upsert(
            {
                "channel_id": q.channel_id,
                "ts": q.ts,
                "thread_ts": q.thread_ts,
                "user_id": q.user_id,
                "text": q.text,
                "trellis_message_id": q.trellis_message_id,
                "status": q.status,
                "owner_id": q.owner_id,
                "updated_at": self._clock(),
            },
            pk=("channel_id", "ts"),
        )

    async def question(self, channel_id: str, ts: str) -> QuestionRecord | None:
        """The question asked by the message (channel, ts), or None."""
        return await self._run(self._question, channel_id, ts)

    def _question(self, channel_id: str, ts: str) -> QuestionRecord | None:
        rows = self._db.table("questions").rows_where(
            "channel_id = ? AND ts = ?", [channel_id, ts], limit=1
        )
        row = next(rows, None)
        return None if row is None else _question(row)

    async def update_question(
        self,
        channel_id: str,
        ts: str,
        *,
        trellis_message_id: str | None = None,
        status: str | None = None,
        text: str | None = None,
    ) -> None:
        """Change the given fields of a saved question (None leaves a field as it is).

        Does nothing when no such question was saved.
        """
        if status is not None:
            _check_status(status)
        if trellis_message_id is None and status is None and text is None:
            return
        await self._run(self._update_question, channel_id, ts, trellis_message_id, status, text)

    def _update_question(
        self,
        channel_id: str,
        ts: str,
        trellis_message_id: str | None,
        status: str | None,
        text: str | None,
    ) -> None:
        cursor = self._db.execute(
            "UPDATE questions SET"
            " trellis_message_id = COALESCE(?, trellis_message_id),"
            " status = COALESCE(?, status),"
            " text = COALESCE(?, text),"
            " updated_at = ?"
            " WHERE channel_id = ? AND ts = ?",
            (trellis_message_id, status, text, self._clock(), channel_id, ts),
        )
        if cursor.rowcount == 0:
            logger.debug("state store: no question %s/%s to update", channel_id, ts)

    async def questions_in_thread(self, channel_id: str, thread_ts: str) -> list[QuestionRecord]:
        """The thread's questions, oldest first (Slack ts compared as numbers, not text)."""
        return await self._run(self._questions_in_thread, channel_id, thread_ts)

    def _questions_in_thread(self, channel_id: str, thread_ts: str) -> list[QuestionRecord]:
        rows = self._db.table("questions").rows_where(
            "channel_id = ? AND thread_ts = ?", [channel_id, thread_ts]
        )
        return sorted((_question(row) for row in rows), key=lambda q: _ts_order(q.ts))

    async def thread_has_questions(self, channel_id: str, thread_ts: str) -> bool:
        """Whether the bot took any question in this thread (one indexed lookup)."""
        return await self._run(self._thread_has_questions, channel_id, thread_ts)

    def _thread_has_questions(self, channel_id: str, thread_ts: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM questions WHERE channel_id = ? AND thread_ts = ? LIMIT 1",
            (channel_id, thread_ts),
        ).fetchone()
        return row is not None

    async def unfinished_questions(self) -> list[QuestionRecord]:
        """Questions left "queued" or "answering": the process ended before it answered them."""
        return await self._run(self._unfinished_questions)

    def _unfinished_questions(self) -> list[QuestionRecord]:
        rows = self._db.table("questions").rows_where("status IN ('queued', 'answering')")
        return sorted((_question(row) for row in rows), key=lambda q: _ts_order(q.ts))

    # --- the bot's own posts --------------------------------------------------------------------

    async def add_bot_post(self, post: BotPost) -> None:
        """Record a message or file posted for a question.

        Re-adding a post with the same ts (or, without a ts, the same file id) in the channel
        updates that record in place, e.g. a status message edited into the answer.
        """
        await self._run(self._add_bot_post, post)

    def _add_bot_post(self, post: BotPost) -> None:
        table = self._db.table("bot_posts")
        # The same post seen again: same message ts, or the same file (whose share ts may have
        # been learned since).
        where = "channel_id = ? AND (ts = ? OR file_id = ?)"
        args = [post.channel_id, post.ts, post.file_id]
        values = {
            "channel_id": post.channel_id,
            "question_ts": post.question_ts,
            "ts": post.ts,
            "file_id": post.file_id,
            "kind": post.kind,
        }
        with self._db.atomic():
            existing = next(
                table.rows_where(where, args, select="id", order_by="id", limit=1), None
            )
            if existing is None:
                table.insert({**values, "created_at": self._clock()})
            else:
                table.update(existing["id"], values)

    async def bot_posts(self, channel_id: str, question_ts: str) -> list[BotPost]:
        """What the bot posted for the question (channel, question_ts), in the order posted."""
        return await self._run(self._bot_posts, channel_id, question_ts)

    def _bot_posts(self, channel_id: str, question_ts: str) -> list[BotPost]:
        rows = self._db.table("bot_posts").rows_where(
            "channel_id = ? AND question_ts = ?", [channel_id, question_ts], order_by="id"
        )
        return [
            BotPost(
                channel_id=row["channel_id"],
                question_ts=row["question_ts"],
                ts=row["ts"],
                file_id=row["file_id"],
                kind=row["kind"],
            )
            for row in rows
        ]

    async def remove_bot_post(
        self, channel_id: str, *, ts: str | None = None, file_id: str | None = None
    ) -> None:
        """Forget the bot post with this ts and/or file id (both must match when both are given)."""
        if ts is None and file_id is None:
            raise ValueError("remove_bot_post needs a ts or a file_id")
        await self._run(self._remove_bot_post, channel_id, ts, file_id)

    def _remove_bot_post(self, channel_id: str, ts: str | None, file_id: str | None) -> None:
        where = ["channel_id = ?"]
        args = [channel_id]
        if ts is not None:
            where.append("ts = ?")
            args.append(ts)
        if file_id is not None:
            where.append("file_id = ?")
            args.append(file_id)
        self._db.table("bot_posts").delete_where(" AND ".join(where), args)

    async def is_bot_post(self, channel_id: str, ts: str) -> bool:
        """Whether the message (channel, ts) is one the bot recorded as its own."""
        return await self._run(self._is_bot_post, channel_id, ts)

    def _is_bot_post(self, channel_id: str, ts: str) -> bool:
        rows = self._db.table("bot_posts").rows_where(
            "channel_id = ? AND ts = ?", [channel_id, ts], select="id", limit=1
        )
        return next(rows, None) is not None

    # --- channel settings -----------------------------------------------------------------------

    async def channel_settings(self, team_id: str, channel_id: str) -> ChannelSettings | None:
        """The channel's saved integration and model, or None when none were set."""
        return await self._run(self._channel_settings, team_id, channel_id)

    def _channel_settings(self, team_id: str, channel_id: str) -> ChannelSettings | None:
        rows = self._db.table("channel_settings").rows_where(
            "team_id = ? AND channel_id = ?", [team_id, channel_id], limit=1
        )
        row = next(rows, None)
        if row is None:
            return None
        return ChannelSettings(
            team_id=row["team_id"],
            channel_id=row["channel_id"],
            integration_id=row["integration_id"],
            model=row["model"],
        )

    async def set_channel_settings(self, settings: ChannelSettings) -> None:
        """Insert or replace the channel's settings."""
        await self._run(self._set_channel_settings, settings)

    def _set_channel_settings(self, s: ChannelSettings) -> None:
        self._db.table("channel_settings").upsert(
            {
                "team_id": s.team_id,
                "channel_id": s.channel_id,
                "integration_id": s.integration_id,
                "model": s.model,
                "updated_at": self._clock(),
            },
            pk=("team_id", "channel_id"),
        )

    # --- the Messages-tab greeting --------------------------------------------------------------

    async def claim_greeting(self, team_id: str, user_id: str) -> bool:
        """True only the first time this person is claimed for the greeting (survives restarts)."""
        return await self._run(self._claim_greeting, team_id, user_id)

    def _claim_greeting(self, team_id: str, user_id: str) -> bool:
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO greeted_users (team_id, user_id, greeted_at) VALUES (?, ?, ?)",
            (team_id, user_id, self._clock()),
        )
        return cursor.rowcount == 1

    async def release_greeting(self, team_id: str, user_id: str) -> None:
        """Forget a claim whose greeting could not be posted, so the next visit tries again."""
        await self._run(self._release_greeting, team_id, user_id)

    def _release_greeting(self, team_id: str, user_id: str) -> None:
        self._db.execute(
            "DELETE FROM greeted_users WHERE team_id = ? AND user_id = ?", (team_id, user_id)
        )

    # --- diagnostics ----------------------------------------------------------------------------

    async def stats(self) -> dict[str, int]:
        """Row counts per table, for diagnostics."""
        return await self._run(self._stats)

    def _stats(self) -> dict[str, int]:
        return {name: self._db.table(name).count for name in _TABLES}
