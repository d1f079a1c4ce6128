"""The App Home: the Home tab shows how to ask and the defaults; Messages greets once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlite_utils import Database

from tests.helpers import ALICE, BOB, BOT_USER, DM, BotFactory
from trellis_slack.bot.access import Access
from trellis_slack.bot.home import Home
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis
from trellis_slack.settings import Settings
from trellis_slack.slack.events import BotIdentity
from trellis_slack.slack.web import SlackIO
from trellis_slack.store.records import ChannelSettings
from trellis_slack.store.schema import MIGRATIONS, SCHEMA_VERSION
from trellis_slack.store.sqlite import SqliteStore as Store

BOT = BotIdentity(user_id=BOT_USER, bot_id="B0BOT", team_id="T0TEAM")


def view_text(view: dict[str, Any]) -> str:
    parts: list[str] = []
    for block in view.get("blocks", []):
        if "text" in block:
            parts.append(block["text"]["text"])
        parts.extend(e.get("text", "") for e in block.get("elements", []))
    return "\n".join(parts)


def greetings(slack: FakeSlack, channel: str = DM) -> list[dict[str, Any]]:
    return [m for m in slack.bot_messages(channel) if "Ask me a question" in m.get("text", "")]


def settings_for(slack: FakeSlack, **extra: str) -> Settings:
    env = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_API_URL": slack.api_url,
        "TRELLIS_TOKEN": FakeTrellis().make_token("member"),
    }
    return Settings.from_mapping(env | extra)


@pytest.fixture
async def client(slack: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    async with aiohttp.ClientSession() as session:
        yield AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, session=session)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(tmp_path / "state.db") as opened:
        yield opened


def make_home(slack: FakeSlack, client: AsyncWebClient, store: Store, **extra: str) -> Home:
    settings = settings_for(slack, **extra)
    access = Access.from_settings(settings)
    return Home(slack=SlackIO(client), store=store, settings=settings, access=access, bot=BOT)


def opened(user: str, tab: str, **extra: Any) -> dict[str, Any]:
    return {"type": "app_home_opened", "user": user, "channel": DM, "tab": tab, **extra}


# --- through the running bot ----------------------------------------------------------------------


async def test_the_home_tab_shows_how_to_ask_and_the_defaults(
    slack: FakeSlack, start_bot: BotFactory
) -> None:
    """Opening Home shows how to ask, the bot's database, model and follow-up mode."""
    await start_bot(
        TRELLIS_INTEGRATION_ID="int-sales", TRELLIS_MODEL="deep-2", FOLLOW_UPS="mentions"
    )
    ack = await slack.open_home(ALICE, "home")
    assert ack.payload is None
    view = await slack.wait_for(lambda: slack.home_views.get(ALICE))
    text = view_text(view)
    assert f"mention <@{BOT_USER}> with your question" in text
    assert "Database: `int-sales`" in text
    assert "Model: `deep-2`" in text
    assert "Follow-ups: only replies that mention me" in text
    assert "/trellis integration" in text


async def test_the_first_visit_to_messages_is_greeted(
    slack: FakeSlack, start_bot: BotFactory
) -> None:
    """The first time someone opens the Messages tab, the bot says hello and how to ask."""
    await start_bot()
    await slack.open_home(ALICE, "messages")
    greeting = (await slack.wait_for(lambda: greetings(slack)))[0]
    assert f"Hi <@{ALICE}>!" in greeting["text"]
    assert "/trellis help" in greeting["text"]
    assert "thread_ts" not in greeting


# --- the Home handler against the local Slack -----------------------------------------------------


async def test_a_greeting_is_sent_once_even_after_a_restart(
    slack: FakeSlack, client: AsyncWebClient, tmp_path: Path
) -> None:
    """Two quick visits and a visit after a restart still give one greeting."""
    async with await Store.open(tmp_path / "greet.db") as store:
        home = make_home(slack, client, store)
        await asyncio.gather(
            home.opened(opened(ALICE, "messages")), home.opened(opened(ALICE, "messages"))
        )
    async with await Store.open(tmp_path / "greet.db") as store:
        await make_home(slack, client, store).opened(opened(ALICE, "messages"))
    assert len(greetings(slack)) == 1


async def test_a_greeting_that_failed_is_tried_on_the_next_visit(
    slack: FakeSlack, client: AsyncWebClient, store: Store
) -> None:
    """When Slack refuses the greeting, the next visit greets instead of never."""
    home = make_home(slack, client, store)
    slack.fail("chat.postMessage", "fatal_error")
    await home.opened(opened(ALICE, "messages"))
    assert greetings(slack) == []
    await home.opened(opened(ALICE, "messages"))
    assert len(greetings(slack)) == 1


async def test_an_unchanged_home_tab_is_not_published_again(
    slack: FakeSlack, client: AsyncWebClient, store: Store
) -> None:
    """A Home tab that already shows the current content is left alone; a changed one is redone."""
    await make_home(slack, client, store).opened(opened(ALICE, "home"))
    shown = slack.home_views[ALICE]
    await make_home(slack, client, store).opened(opened(ALICE, "home", view=shown))
    assert len(slack.calls_to("views.publish")) == 1
    changed = make_home(slack, client, store, TRELLIS_MODEL="fast-1")
    await changed.opened(opened(ALICE, "home", view=shown))
    assert len(slack.calls_to("views.publish")) == 2
    assert "Model: `fast-1`" in view_text(slack.home_views[ALICE])


async def test_people_who_may_not_ask_are_told_and_not_greeted(
    slack: FakeSlack, client: AsyncWebClient, store: Store
) -> None:
    """Someone ALLOWED_USERS leaves out sees why on Home and gets no invitation to ask."""
    home = make_home(slack, client, store, ALLOWED_USERS=BOB)
    await home.opened(opened(ALICE, "home"))
    await home.opened(opened(ALICE, "messages"))
    assert "not on the list of people who can ask" in view_text(slack.home_views[ALICE])
    assert greetings(slack) == []
    await home.opened(opened(BOB, "home"))
    assert "not on the list" not in view_text(slack.home_views[BOB])


async def test_an_older_state_file_gains_greetings_and_keeps_its_settings(tmp_path: Path) -> None:
    """A state file from before greetings is upgraded in place; channel settings survive."""
    path = tmp_path / "v1.db"
    db = Database(str(path))
    MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    db.table("channel_settings").insert(
        {"team_id": "T1", "channel_id": "C1", "integration_id": "int", "updated_at": 1.0}
    )
    db.close()
    async with await Store.open(path) as store:
        assert await store.channel_settings("T1", "C1") == ChannelSettings("T1", "C1", "int", None)
        assert await store.claim_greeting("T1", "U1")
        assert not await store.claim_greeting("T1", "U1")
    assert SCHEMA_VERSION >= 2


async def test_no_greeting_in_a_dm_the_bot_will_not_answer_in(
    slack: FakeSlack, client: AsyncWebClient, store: Store
) -> None:
    """With ALLOWED_CHANNELS not listing the DM, the Messages tab invites no questions."""
    await make_home(slack, client, store, ALLOWED_CHANNELS="C0ELSEWHERE").opened(
        opened(ALICE, "messages")
    )
    await make_home(slack, client, store, ALLOWED_CHANNELS=DM).opened(opened(ALICE, "messages"))
    assert len(greetings(slack)) == 1
