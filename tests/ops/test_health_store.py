"""The state store in ``/healthz`` and ``/metrics``: SQLite, a real PostgreSQL stopped and started."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.helpers import ALICE, BOT_USER, CHANNEL, BotFactory
from tests.ops.test_health import HEALTH, get, healthz, samples, value
from tests.pg import PostgresServer
from trellis_slack.bot.app import Bot
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Step, answer
from trellis_slack.ops.health import HealthServer
from trellis_slack.ops.metrics import Metrics
from trellis_slack.settings import Settings
from trellis_slack.store.records import StoreHealth


async def metrics_page(bot: Bot) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return samples((await get(bot, "/metrics"))[1])


async def test_sqlite_store_in_healthz_and_metrics(start_bot: BotFactory) -> None:
    """With SQLite, /healthz and /metrics show the backend, reachability, latency and this replica."""
    bot = await start_bot(**HEALTH)
    status, body = await healthz(bot)
    assert status == 200
    store = body["store"]
    assert (store["backend"], store["state"], store["heartbeat"]) == ("sqlite", "reachable", "ok")
    assert isinstance(store["latency_ms"], float)
    assert (store["turns_held"], store["replicas_live"]) == (0, 1)
    assert "pool_size" not in store  # SQLite has no pool
    page = await metrics_page(bot)
    assert value(page, "trellis_slack_store_info", backend="sqlite") == 1
    assert value(page, "trellis_slack_store_reachable") == 1
    assert value(page, "trellis_slack_store_latency_seconds") >= 0
    assert value(page, "trellis_slack_replicas_live") == 1
    assert value(page, "trellis_slack_heartbeat_ok") == 1
    assert value(page, "trellis_slack_store_turns_held") == 0
    assert not [key for key in page if key[0].startswith("trellis_slack_store_pool")]


async def test_an_answer_in_progress_is_a_turn_held(
    start_bot: BotFactory, slack: FakeSlack, trellis: FakeTrellis
) -> None:
    """While an answer streams, the store's health counts its thread claim (a lease) as held."""
    gate = asyncio.Event()
    trellis.responder = lambda q: [Step.processing("thinking"), Step.pause(gate), *answer("done")]
    bot = await start_bot(**HEALTH)
    ts = await slack.post(CHANNEL, ALICE, f"<@{BOT_USER}> slow question")
    await trellis.wait_for_action("send_message")
    try:
        assert (await healthz(bot))[1]["store"]["turns_held"] == 1
        assert value(await metrics_page(bot), "trellis_slack_store_turns_held") == 1
    finally:
        gate.set()
    assert bot.bridge is not None
    await bot.bridge.runner.finished(CHANNEL, ts)
    assert (await healthz(bot))[1]["store"]["turns_held"] == 0


async def test_postgresql_down_then_back_without_restarting_the_bot(
    postgres_server: PostgresServer, postgres_url: str, start_bot: BotFactory
) -> None:
    """PostgreSQL stopped: /healthz 503 "state store unreachable"; started again: 200, same bot."""
    # (postgres_url before start_bot: the bot stops before its database is dropped.)
    bot = await start_bot(TRELLIS_SLACK_DB=postgres_url, **HEALTH)
    status, body = await healthz(bot)
    assert status == 200
    store = body["store"]
    assert (store["backend"], store["state"], store["replicas_live"]) == (
        "postgresql",
        "reachable",
        1,
    )
    assert store["pool_size"] >= 1
    assert 0 <= store["pool_in_use"] <= store["pool_size"]
    page = await metrics_page(bot)
    assert value(page, "trellis_slack_store_info", backend="postgresql") == 1
    assert value(page, "trellis_slack_store_pool_connections") >= 1

    postgres_server.stop("fast")
    try:
        status, text, _ = await get(bot, "/healthz")
        assert status == 503
        body = json.loads(text)
        assert body["store"]["state"] == "unreachable"
        assert "state store unreachable" in body["reason"]
        assert postgres_server.password not in text
        assert value(await metrics_page(bot), "trellis_slack_store_reachable") == 0
    finally:
        postgres_server.start()
    assert bot.fleet is not None
    async with asyncio.timeout(30):
        while not await bot.fleet.beat():  # the pool reconnects by itself, with its own backoff
            continue
    status, body = await healthz(bot)
    assert status == 200, body
    assert (body["store"]["state"], body["store"]["heartbeat"]) == ("reachable", "ok")
    assert value(await metrics_page(bot), "trellis_slack_store_reachable") == 1


class _Connected:
    async def is_connected(self) -> bool:
        return True


class _Idle:
    max_connections = 3
    open_connections = 0
    queued_turns = 0

    async def check(self, *, identity: str | None = None) -> None:
        return None


class _Store:
    """A store whose health is given, or which never answers (None)."""

    def __init__(self, health: StoreHealth | None) -> None:
        self._health = health

    async def health(self) -> StoreHealth:
        if self._health is None:
            await asyncio.Event().wait()
        assert self._health is not None
        return self._health


class _Fleet:
    def __init__(self, healthy: bool) -> None:
        self.healthy = healthy


async def probe(store: _Store, fleet: _Fleet) -> tuple[int, dict[str, Any], Metrics]:
    """/healthz of a health server on its own, with the given store and heartbeat."""
    settings = Settings(
        slack_bot_token="xoxb-1",
        slack_app_token="xapp-1",
        trellis_token="t",
        health_host="127.0.0.1",
        health_port=0,
        db_path="postgresql://u:secret@127.0.0.1:1/db",
    )
    metrics = Metrics()
    server = HealthServer(
        settings,
        metrics,
        slack=_Connected(),
        trellis=_Idle(),
        store=store,
        fleet=fleet,
        probe_timeout=0.2,
    )
    await server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/healthz"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.json(), metrics
    finally:
        await server.stop()


async def test_a_failing_heartbeat_is_unhealthy_even_when_the_store_answers() -> None:
    """While this replica's heartbeat fails (it takes no questions) /healthz is 503."""
    status, body, metrics = await probe(_Store(StoreHealth("postgresql", True, 1.5)), _Fleet(False))
    assert status == 503
    assert body["store"]["state"] == "unreachable"
    assert body["store"]["heartbeat"] == "failing"
    assert body["reason"] == "state store unreachable: this replica's heartbeat fails"
    assert metrics.heartbeat_ok is False


async def test_a_store_that_does_not_answer_is_unreachable_within_the_probe_timeout() -> None:
    """A store health query that hangs makes /healthz 503 after probe_timeout, not a hung probe."""
    status, body, metrics = await probe(_Store(None), _Fleet(True))
    assert status == 503
    assert body["store"] == {
        "backend": "postgresql",
        "state": "unreachable",
        "latency_ms": None,
        "heartbeat": "ok",
        "error": "no answer within 0.2 s",
    }
    assert "state store unreachable: no answer within 0.2 s" in body["reason"]
    assert metrics.store is not None
    assert not metrics.store.reachable
