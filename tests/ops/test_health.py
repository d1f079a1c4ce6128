"""The health and metrics server of a running bot, as a probe and a Prometheus scraper see it."""

from __future__ import annotations

import json
import socket
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import ALICE, BOT_USER, CHANNEL, BotFactory, answered
from trellis_slack.bot.app import Bot
from trellis_slack.errors import ConfigError
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Step
from trellis_slack.ops.health import HealthServer
from trellis_slack.ops.metrics import Metrics
from trellis_slack.settings import Settings

HEALTH = {"HEALTH_HOST": "127.0.0.1", "HEALTH_PORT": "0"}


async def get(bot: Bot, path: str) -> tuple[int, str, str]:
    """(status, body, content type) of a GET to the bot's health server."""
    assert bot.health is not None
    url = f"http://127.0.0.1:{bot.health.port}{path}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text(), response.headers["Content-Type"]


async def healthz(bot: Bot) -> tuple[int, dict[str, Any]]:
    status, text, content_type = await get(bot, "/healthz")
    assert content_type.startswith("application/json")
    return status, json.loads(text)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text page, keyed by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    page: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return page[(name, frozenset(labels.items()))]


async def ask(slack: FakeSlack, bot: Bot, text: str, expect: str) -> None:
    """Mention the bot in the channel and wait until the whole turn has ended."""
    ts = await slack.post(CHANNEL, ALICE, f"<@{BOT_USER}> {text}")
    await answered(slack, CHANNEL, ts, expect)
    assert bot.bridge is not None
    await bot.bridge.runner.finished(CHANNEL, ts)


async def test_no_port_means_no_server(bot: Bot) -> None:
    """Without HEALTH_PORT the bot opens no HTTP port."""
    assert bot.health is None


async def test_healthy_bot_answers_200(start_bot: BotFactory, trellis: FakeTrellis) -> None:
    """A connected bot with Trellis reachable answers /healthz with 200 and both states."""
    bot = await start_bot(**HEALTH)
    status, body = await healthz(bot)
    assert status == 200
    assert (body["slack"], body["trellis"], body["store"]["state"]) == (
        "connected",
        "reachable",
        "reachable",
    )
    assert trellis.actions("ping"), "Trellis was looked at with a ping"


async def test_trellis_is_looked_at_once_per_window(
    start_bot: BotFactory, trellis: FakeTrellis
) -> None:
    """Probes in quick succession share one look at Trellis (cached for ~30 s)."""
    bot = await start_bot(**HEALTH)
    for _ in range(3):
        assert (await healthz(bot))[0] == 200
    assert bot.health is not None
    assert bot.health.probes == 1
    assert len(trellis.actions("ping")) == 1


async def test_a_recent_answer_proves_trellis_reachable(
    start_bot: BotFactory, slack: FakeSlack, trellis: FakeTrellis
) -> None:
    """Right after an answer, /healthz does not ask Trellis again."""
    bot = await start_bot(**HEALTH)
    await ask(slack, bot, "how many orders?", "You asked: how many orders?")
    assert (await healthz(bot))[0] == 200
    assert bot.health is not None
    assert bot.health.probes == 0
    assert not trellis.actions("ping")


async def test_trellis_down_is_503(start_bot: BotFactory, trellis: FakeTrellis) -> None:
    """With Trellis unreachable /healthz answers 503 and says why."""
    bot = await start_bot(**HEALTH)
    await trellis.stop()
    status, body = await healthz(bot)
    assert status == 503
    assert body["slack"] == "connected"
    assert body["trellis"] == "unreachable"
    assert "Trellis is unreachable" in body["reason"]


async def test_rejected_token_is_503(start_bot: BotFactory) -> None:
    """A Trellis token that Trellis rejects makes /healthz 503 with trellis "rejected"."""
    foreign = FakeTrellis().make_token("someone")  # signed by another Trellis
    bot = await start_bot(TRELLIS_TOKEN=foreign, **HEALTH)
    status, body = await healthz(bot)
    assert status == 503
    assert body["trellis"] == "rejected"
    assert foreign not in body["reason"]


async def test_slack_socket_down_is_503(start_bot: BotFactory) -> None:
    """When the Socket Mode connection is closed /healthz answers 503 with slack "disconnected"."""
    bot = await start_bot(**HEALTH)
    assert bot.handler is not None
    await bot.handler.close_async()
    status, body = await healthz(bot)
    assert status == 503
    assert body["slack"] == "disconnected"
    assert "Socket Mode" in body["reason"]


async def test_per_user_mode_checks_trellis_without_minting(
    start_bot: BotFactory, trellis: FakeTrellis
) -> None:
    """With an API key the probe reaches Trellis's API without credentials: no member, no socket."""
    bot = await start_bot(TRELLIS_TOKEN="", TRELLIS_API_KEY="test-api-key", **HEALTH)
    status, body = await healthz(bot)
    assert (status, body["slack"], body["trellis"]) == (200, "connected", "reachable")
    assert trellis.members == {}
    assert trellis.accepted_connections == 0


async def test_per_user_mode_trellis_down_is_503(
    start_bot: BotFactory, trellis: FakeTrellis
) -> None:
    """With an API key and Trellis down /healthz answers 503."""
    bot = await start_bot(TRELLIS_TOKEN="", TRELLIS_API_KEY="test-api-key", **HEALTH)
    await trellis.stop()
    status, body = await healthz(bot)
    assert status == 503
    assert body["trellis"] == "unreachable"


async def test_metrics_count_an_answered_question(start_bot: BotFactory, slack: FakeSlack) -> None:
    """After one answer /metrics shows the question, the answer, the latencies and the sockets."""
    bot = await start_bot(**HEALTH)
    await ask(slack, bot, "how many orders?", "You asked: how many orders?")
    status, text, content_type = await get(bot, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    page = samples(text)
    assert value(page, "trellis_slack_questions_total") == 1
    assert value(page, "trellis_slack_answers_total", outcome="answered") == 1
    assert value(page, "trellis_slack_first_sign_seconds_count") == 1
    assert value(page, "trellis_slack_answer_seconds_count", outcome="answered") == 1
    assert value(page, "trellis_slack_bridge_overhead_seconds_count") >= 1
    assert value(page, "trellis_slack_trellis_connections") == 1
    assert value(page, "trellis_slack_queued_turns") == 0
    assert not [key for key in page if key[0] == "trellis_slack_errors_total"]


async def test_metrics_count_errors_by_kind(
    start_bot: BotFactory, slack: FakeSlack, trellis: FakeTrellis
) -> None:
    """A Trellis error shown to the user is counted under its code, and the turn as failed."""
    trellis.responder = lambda q: [Step.error("No datasource connected", code="NO_DATASOURCE")]
    bot = await start_bot(**HEALTH)
    await ask(slack, bot, "orders?", "No datasource")
    page = samples((await get(bot, "/metrics"))[1])
    assert value(page, "trellis_slack_errors_total", kind="trellis_no_datasource") == 1
    assert value(page, "trellis_slack_answers_total", outcome="failed") == 1
    assert value(page, "trellis_slack_answer_seconds_count", outcome="failed") == 1


class _Connected:
    async def is_connected(self) -> bool:
        return True


class _Idle:
    max_connections = 3
    open_connections = 0
    queued_turns = 0

    async def check(self, *, identity: str | None = None) -> None:
        return None


async def test_a_port_in_use_is_a_configuration_error() -> None:
    """A HEALTH_PORT another program holds stops start-up with a clear message, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings(
            slack_bot_token="xoxb-1",
            slack_app_token="xapp-1",
            trellis_token="t",
            health_host="127.0.0.1",
            health_port=port,
        )
        server = HealthServer(settings, Metrics(), slack=_Connected(), trellis=_Idle())
        with pytest.raises(ConfigError) as caught:
            await server.start()
    assert f"cannot serve HEALTH_PORT {port} on HEALTH_HOST 127.0.0.1" in str(caught.value)
