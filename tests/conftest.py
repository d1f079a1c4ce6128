"""Shared fixtures: the local Slack and Trellis servers, and the real bot connected to both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ALICE, BOB, BOT_USER, CHANNEL, DM, MALLORY, BotFactory, Clock, bot_env
from trellis_slack.bot.app import Bot
from trellis_slack.demo.runner import Demo
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis
from trellis_slack.settings import Settings
from trellis_slack.store.sqlite import SqliteStore
from trellis_slack.trellis.client import Backoff


@pytest.fixture
async def trellis() -> AsyncIterator[FakeTrellis]:
    async with FakeTrellis(version="current") as server:
        yield server


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(bot_user_id=BOT_USER) as server:
        server.add_user(ALICE, "alice", email="alice@example.com")
        server.add_user(BOB, "bob", email="bob@example.com")
        server.add_user(MALLORY, "mallory", email="m@elsewhere.example", team_id="T0OTHER")
        server.add_channel(CHANNEL, "general", members=[ALICE, BOB, MALLORY, BOT_USER])
        server.add_channel(DM, "alice-dm", kind="im", members=[ALICE, BOT_USER])
        yield server


@pytest.fixture
async def start_bot(
    slack: FakeSlack, trellis: FakeTrellis, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[BotFactory]:
    """Start real bots (AsyncApp + Socket Mode + Trellis client + SQLite) against the fakes."""
    running: list[Bot] = []

    # Tests that pin the edited-message path (SLACK_STREAMING=update, also every fallback) say so.
    if request.node.get_closest_marker("edited_messages") is not None:
        extra_defaults = {"SLACK_STREAMING": "update"}
    else:
        extra_defaults = {}

    async def start(**extra: Any) -> Bot:
        extra = {**extra_defaults, **extra}
        update_interval = float(extra.pop("update_interval", 0.05))
        status_after = float(extra.pop("status_after", 1.5))
        env = bot_env(slack, trellis, tmp_path / "state.db", **extra)
        bot = Bot(
            Settings.from_mapping(env),
            backoff=Backoff(base=0.0, cap=0.0, jitter=0.0),
            update_interval=update_interval,
            status_after=status_after,
            pace=False,
            warm_up_charts=False,
        )
        before = slack.socket_connections
        await bot.start()
        running.append(bot)
        await slack.wait_for(lambda: slack.socket_connections > before)
        return bot

    yield start
    for bot in running:
        await bot.stop(grace=2.0)


@pytest.fixture
async def bot(start_bot: BotFactory) -> Bot:
    return await start_bot()


@pytest.fixture
async def hold() -> AsyncIterator[asyncio.Event]:
    """Set at the end of a test: releases the demo's slow answers so it can stop."""
    event = asyncio.Event()
    yield event
    event.set()


@pytest.fixture
async def demo(hold: asyncio.Event) -> AsyncIterator[Demo]:
    """The offline demo (local Slack + Trellis + the real bot + the page), paced at zero."""
    async with Demo(
        port=0,
        pace=0,
        hold=hold,
        update_interval=0.05,
        warm_up_charts=False,
        slash_timeout=2.0,
        backoff=Backoff(base=0.0, cap=0.0, jitter=0.0),
    ) as running:
        yield running
        hold.set()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def clocked_store(clock: Clock) -> AsyncIterator[SqliteStore]:
    """An in-memory store whose time is ``clock``."""
    store = await SqliteStore.open(":memory:", clock=clock)
    yield store
    await store.close()
