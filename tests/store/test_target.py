"""Where the state lives: a path or a PostgreSQL URL, opened by one factory, never showing a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pg import PostgresServer
from trellis_slack.errors import ConfigError, StateError
from trellis_slack.settings import Settings
from trellis_slack.store.open import open_store
from trellis_slack.store.postgres import PostgresStore
from trellis_slack.store.sqlite import SqliteStore
from trellis_slack.store.target import describe, is_postgres, passwords_of, scrub

#: The variables `Settings` needs besides TRELLIS_SLACK_DB.
ENV = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "TRELLIS_API_KEY": "key"}

URL = "postgresql://bot:s%40cret-pw@db.example:5432/trellis?sslmode=require"


def test_only_postgresql_urls_are_postgres() -> None:
    """postgresql:// and postgres:// URLs mean PostgreSQL; anything else is a file path."""
    assert is_postgres(URL)
    assert is_postgres("postgres://db/x")
    assert is_postgres("POSTGRESQL://db/x")
    assert not is_postgres("./trellis-slack.db")
    assert not is_postgres("/data/postgresql.db")


def test_describe_hides_the_password_in_the_user_part_and_the_query() -> None:
    """A URL is shown with *** for its password, wherever the password was written."""
    assert describe(URL) == "postgresql://bot:***@db.example:5432/trellis?sslmode=require"
    shown = describe("postgresql://db.example/trellis?user=bot&password=hunter22")
    assert "hunter22" not in shown
    assert shown == "postgresql://db.example/trellis?user=bot&password=***"
    assert describe("postgresql://bot@db/x") == "postgresql://bot@db/x"
    assert describe("./state.db") == "./state.db"


def test_scrub_hides_the_password_as_written_and_decoded() -> None:
    """An error quoting the URL or the (decoded) password shows neither."""
    assert passwords_of(URL) == ("s%40cret-pw", "s@cret-pw")
    text = scrub(f"cannot reach {URL}: password s@cret-pw refused", URL)
    assert "s@cret-pw" not in text
    assert "s%40cret-pw" not in text
    assert "postgresql://bot:***@db.example" in text


def test_settings_take_a_url_and_keep_it_out_of_repr() -> None:
    """TRELLIS_SLACK_DB may be a PostgreSQL URL; the settings' repr never shows it."""
    settings = Settings.from_mapping({**ENV, "TRELLIS_SLACK_DB": URL})
    assert settings.db_path == URL
    assert "s%40cret-pw" not in repr(settings)


def test_settings_refuse_other_urls_without_quoting_them() -> None:
    """A URL of another database is a configuration problem that does not repeat the URL."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping({**ENV, "TRELLIS_SLACK_DB": "mysql://bot:pw123@db/x"})
    assert "TRELLIS_SLACK_DB must be a file path or a postgresql:// URL" in str(caught.value)
    assert "pw123" not in str(caught.value)


async def test_open_store_picks_the_backend(tmp_path: Path, postgres_url: str) -> None:
    """A path opens SQLite, a URL PostgreSQL; settings work as well as a target."""
    sqlite = await open_store(str(tmp_path / "state.db"))
    postgres = await open_store(Settings.from_mapping({**ENV, "TRELLIS_SLACK_DB": postgres_url}))
    try:
        assert isinstance(sqlite, SqliteStore)
        assert isinstance(postgres, PostgresStore)
    finally:
        await sqlite.close()
        await postgres.close()


async def test_a_wrong_password_fails_plainly_without_the_password(
    postgres_server: PostgresServer,
) -> None:
    """PostgreSQL refusing the password is a StateError naming the database, not the password."""
    url = postgres_server.url().replace(postgres_server.password, "wrong-pw-4242")
    with pytest.raises(StateError) as caught:
        await PostgresStore.open(url, wait=2)
    message = str(caught.value)
    assert "wrong-pw-4242" not in message
    assert postgres_server.password not in message
    assert f"127.0.0.1:{postgres_server.port}" in message
    assert caught.value.__cause__ is None


async def test_an_unreachable_database_fails_plainly(postgres_server: PostgresServer) -> None:
    """Nobody listening is a StateError that says which database (password hidden)."""
    url = postgres_server.url().replace(str(postgres_server.port), "1")
    with pytest.raises(StateError, match=r"cannot open the database postgresql://trellis:\*\*\*@"):
        await PostgresStore.open(url, wait=2)
