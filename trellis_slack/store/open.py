"""Opening the store ``TRELLIS_SLACK_DB`` names: SQLite for a file path, PostgreSQL for a URL."""

from __future__ import annotations

import time
from collections.abc import Callable

from trellis_slack.settings import Settings
from trellis_slack.store.base import Store
from trellis_slack.store.postgres import PostgresStore
from trellis_slack.store.sqlite import SqliteStore
from trellis_slack.store.target import describe, is_postgres

__all__ = ["describe", "is_postgres", "open_store"]


async def open_store(
    target: Settings | str, *, clock: Callable[[], float] = time.time
) -> SqliteStore | PostgresStore:
    """Open (creating and migrating if needed) the store at ``target`` or ``settings.db_path``.

    A ``postgresql://`` or ``postgres://`` URL opens a `PostgresStore` (several replicas may
    share it); anything else is the path of a SQLite file (one process). Raises `StateError`,
    which names the target as `describe` does: never with its password.
    """
    where = target.db_path if isinstance(target, Settings) else target
    if is_postgres(where):
        return await PostgresStore.open(where, clock=clock)
    return await SqliteStore.open(where, clock=clock)


def _is_store(store: SqliteStore | PostgresStore) -> Store:
    """Both backends are a `Store` (mypy checks this line)."""
    return store
