"""The store contract's fixtures: every ``store`` test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Clock
from tests.pg import postgres_server, postgres_url
from trellis_slack.store.open import open_store
from trellis_slack.store.postgres import PostgresStore
from trellis_slack.store.sqlite import SqliteStore

__all__ = ["AnyStore", "postgres_server", "postgres_url"]

AnyStore = SqliteStore | PostgresStore
Opener = Callable[[], Coroutine[Any, Any, AnyStore]]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The store backend under test."""
    return str(request.param)


@pytest.fixture
def target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where the store lives: a fresh SQLite file, or a fresh PostgreSQL database."""
    if backend == "sqlite":
        return str(tmp_path / "state.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def open_replica(target: str, clock: Clock) -> AsyncIterator[Opener]:
    """Open another store on the same target (another replica), closed after the test."""
    opened: list[AnyStore] = []

    async def open_one() -> AnyStore:
        opened.append(await open_store(target, clock=clock))
        return opened[-1]

    yield open_one
    for store in reversed(opened):
        await store.close()


@pytest.fixture
async def store(open_replica: Opener) -> AnyStore:
    """The store under test, on each backend, its time ``clock``."""
    return await open_replica()
