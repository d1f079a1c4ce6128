"""PostgreSQL's own behaviour: its schema version, a server restarted underneath, the test server."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tests.pg import PostgresServer, give_up
from trellis_slack.errors import StateError
from trellis_slack.store.postgres import PostgresStore
from trellis_slack.store.postgres_schema import SCHEMA_VERSION


async def test_a_database_from_a_newer_version_is_refused(postgres_url: str) -> None:
    """A schema newer than this version understands stops the store from opening, plainly."""
    await (await PostgresStore.open(postgres_url)).close()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION + 1,)
        )
    with pytest.raises(StateError, match="newer version of trellis-slack"):
        await PostgresStore.open(postgres_url)


async def test_the_store_recovers_when_postgresql_restarts(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """While PostgreSQL is down calls fail as StateError and health says so; then all works again."""
    async with await PostgresStore.open(postgres_url, wait=1) as store:
        assert await store.claim_event("C1", "1.1")
        woken = store.watch_thread("C1", "1.1")
        postgres_server.stop("fast")
        try:
            async with asyncio.timeout(10):
                await woken.wait()  # the listening connection was lost: everybody rechecks
            with pytest.raises(StateError, match=r"postgresql://trellis:\*\*\*@"):
                await store.claim_event("C1", "1.2")
            health = await store.health()
            assert not health.reachable
            assert postgres_server.password not in health.error
        finally:
            postgres_server.start()
        async with asyncio.timeout(30):
            while True:  # the pool reconnects by itself, with its own backoff
                try:
                    assert await store.claim_event("C1", "1.2")
                    break
                except StateError:
                    continue
            while True:  # listening again: it wakes every waiter when it is back
                back = store.watch_thread("C1", "1.1")
                if store.listening:
                    break
                await back.wait()
        assert (await store.health()).error == ""
        assert not await store.claim_event("C1", "1.1")


def test_without_postgresql_tests_skip_but_ci_fails() -> None:
    """Missing PostgreSQL skips its tests on a developer's machine and fails them on CI."""
    with pytest.raises(pytest.skip.Exception, match="install"):
        give_up("install postgresql", {})
    with pytest.raises(pytest.fail.Exception, match="install"):
        give_up("install postgresql", {"CI": "true"})
