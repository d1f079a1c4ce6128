"""The optional HTTP server: ``/healthz`` for probes and ``/metrics`` for Prometheus."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from aiohttp import web
from prometheus_client import generate_latest

from trellis_slack.errors import ConfigError, TrellisAuthError, TrellisError
from trellis_slack.ops.metrics import Metrics, TrellisGauges
from trellis_slack.settings import Settings
from trellis_slack.store.records import StoreHealth
from trellis_slack.store.target import is_postgres

log = logging.getLogger(__name__)

#: The classic Prometheus text exposition format, which every scraper reads.
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class SocketModeClient(Protocol):
    """What tells whether the Socket Mode socket is up (slack-sdk's Socket Mode client)."""

    async def is_connected(self) -> bool: ...


class TrellisPing(TrellisGauges, Protocol):
    """The Trellis client as the health check uses it."""

    max_connections: int

    async def check(self, *, identity: str | None = None) -> None: ...


class StoreProbe(Protocol):
    """The state store as the health check uses it (`Store.health`, which never raises)."""

    async def health(self) -> StoreHealth: ...


class Heartbeat(Protocol):
    """This replica's heartbeat in the store (`bot.fleet.Fleet`): False while renewing it fails."""

    @property
    def healthy(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class TrellisHealth:
    """The outcome of one look at Trellis: ``reachable``, ``rejected`` or ``unreachable``."""

    state: str
    reason: str | None = None


class HealthServer:
    """Serves ``/healthz`` and ``/metrics`` on ``HEALTH_HOST:HEALTH_PORT`` while the bot runs.

    ``/healthz`` answers 200 ``{"slack": "connected", "trellis": "reachable", "store": {...}}``
    when the Socket Mode socket is connected, Trellis is usable and the state store answers,
    else 503 with the same keys and a ``reason``. Choices made here (the docs leave them open):

    * The store is looked at on every probe and every scrape (one trivial query, bounded by
      ``probe_timeout``): a lost database must show at once. ``store`` says its ``backend``,
      ``state`` (``reachable`` or ``unreachable``), ``latency_ms``, the pool's ``pool_size``
      and ``pool_in_use`` (PostgreSQL), the ``turns_held`` and ``slots_held`` by live replicas,
      ``replicas_live``, and ``heartbeat`` (``ok`` or ``failing``). A failing heartbeat makes
      the replica unhealthy even when the query just worked: until a heartbeat succeeds again
      it takes no new questions. The reason then starts "state store unreachable"; the error
      shown is the store's, which never holds the password.

    * Trellis is not asked on every probe: an answer from Trellis within ``cache_for`` seconds
      counts, and so does the last probe's result (good or bad) for ``cache_for`` seconds.
      Concurrent probes share one look.
    * With one shared token the look is ``TrellisClient.check()``: an authenticated socket (an
      idle one is reused, so one socket tends to stay open) answers a ping. When every socket
      is busy answering, that is proof enough: the look would only queue behind the answers and
      report a busy Trellis as down. In per-user mode there is no token without an asker,
      and minting one would create a Trellis member, so the look is an HTTP request to
      ``TRELLIS_API_URL`` without credentials: any answer below 500 proves Trellis is reachable.
    * A look that takes longer than ``probe_timeout`` counts as unreachable, so a probe with a
      short timeout (a container health check) gets an answer rather than hanging.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        slack: SocketModeClient,
        trellis: TrellisPing,
        store: StoreProbe | None = None,
        fleet: Heartbeat | None = None,
        cache_for: float = 30.0,
        probe_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._slack = slack
        self._trellis = trellis
        self._store = store
        self._fleet = fleet
        self._cache_for = cache_for
        self._probe_timeout = probe_timeout
        self._clock = clock
        self._last: TrellisHealth | None = None
        self._last_at = 0.0
        self._lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        #: How many times Trellis was actually looked at (tests check the cache with it).
        self.probes = 0
        metrics.track(trellis)

    @property
    def port(self) -> int:
        """The port bound (useful with ``HEALTH_PORT=0``)."""
        if self._port is None:
            raise RuntimeError("the health server is not started")
        return self._port

    async def start(self) -> None:
        """Listen on ``settings.health_host:settings.health_port``; ConfigError if that fails."""
        host, port = self._settings.health_host, self._settings.health_port
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_page)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, host, port).start()
        except OSError as exc:
            await self.stop()
            reason = exc.strerror or type(exc).__name__
            raise ConfigError(
                [f"cannot serve HEALTH_PORT {port} on HEALTH_HOST {host} ({reason})"]
            ) from None
        self._port = int(self._runner.addresses[0][1])
        log.info("health and metrics on http://%s:%d/healthz and /metrics", host, self._port)

    async def stop(self) -> None:
        """Stop listening."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        slack_ok = await self._slack_connected()
        trellis = await self.trellis_health()
        body: dict[str, object] = {
            "slack": "connected" if slack_ok else "disconnected",
            "trellis": trellis.state,
        }
        reasons = []
        if not slack_ok:
            reasons.append("the Slack Socket Mode connection is down")
        if trellis.reason:
            reasons.append(trellis.reason)
        healthy = slack_ok and trellis.state == "reachable"
        store = await self.store_health()
        if store is not None:
            health, beating = store
            reachable = health.reachable and beating is not False
            body["store"] = _store_body(health, beating, reachable)
            if not reachable:
                healthy = False
                why = health.error if not health.reachable else "this replica's heartbeat fails"
                reasons.append(f"state store unreachable: {why}")
        if not healthy:
            body["reason"] = "; ".join(reasons)
        return web.json_response(body, status=200 if healthy else 503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        await self.store_health()
        return web.Response(
            body=generate_latest(self._metrics.registry),
            headers={"Content-Type": PROMETHEUS_TEXT},
        )

    async def _slack_connected(self) -> bool:
        try:
            return await self._slack.is_connected()
        except Exception:
            log.exception("could not tell whether the Slack socket is connected")
            return False

    async def store_health(self) -> tuple[StoreHealth, bool | None] | None:
        """The store's health now and whether the heartbeat holds (None: no fleet), or None.

        Also handed to the metrics, so ``/metrics`` shows the same look.
        """
        if self._store is None:
            return None
        try:
            async with asyncio.timeout(self._probe_timeout):
                health = await self._store.health()
        except TimeoutError:
            backend = "postgresql" if is_postgres(self._settings.db_path) else "sqlite"
            error = f"no answer within {self._probe_timeout:g} s"
            health = StoreHealth(backend, False, None, error=error)
        beating = None if self._fleet is None else self._fleet.healthy
        self._metrics.observe_store(health, beating)
        return health, beating

    async def trellis_health(self) -> TrellisHealth:
        """Trellis's state, looked at no more than once every ``cache_for`` seconds."""
        async with self._lock:
            now = self._clock()
            answered = self._metrics.last_answer_at
            if answered is not None and now - answered < self._cache_for:
                return TrellisHealth("reachable")
            if self._last is not None and now - self._last_at < self._cache_for:
                return self._last
            self._last = await self._look()
            self._last_at = self._clock()
            return self._last

    async def _look(self) -> TrellisHealth:
        trellis = self._trellis
        if (
            not self._settings.per_user_identity
            and trellis.open_connections >= trellis.max_connections
        ):
            return TrellisHealth("reachable")
        self.probes += 1
        probe: Awaitable[None] = (
            self._reach_api() if self._settings.per_user_identity else self._trellis.check()
        )
        try:
            async with asyncio.timeout(self._probe_timeout):
                await probe
        except TrellisAuthError as exc:
            log.warning("health check: Trellis rejected the token: %s", exc)
            return TrellisHealth("rejected", f"Trellis rejected the token: {exc}")
        except (TrellisError, TimeoutError) as exc:
            reason = str(exc) or f"no answer within {self._probe_timeout:g} s"
            log.warning("health check: Trellis is unreachable: %s", reason)
            return TrellisHealth("unreachable", f"Trellis is unreachable: {reason}")
        return TrellisHealth("reachable")

    async def _reach_api(self) -> None:
        """Any HTTP answer below 500 from the REST API, without credentials (per-user mode)."""
        url = self._settings.trellis_api_url + "/v1/models"
        try:
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                status = response.status
        except aiohttp.ClientError as exc:
            raise TrellisError(f"could not reach {url} ({type(exc).__name__})") from exc
        if status >= 500:
            raise TrellisError(f"{url} answered HTTP {status}")


def _store_body(health: StoreHealth, beating: bool | None, reachable: bool) -> dict[str, object]:
    """The ``store`` part of ``/healthz`` (pool numbers only where there is a pool)."""
    body: dict[str, object] = {
        "backend": health.backend,
        "state": "reachable" if reachable else "unreachable",
        "latency_ms": health.latency_ms,
    }
    if health.pool_size is not None:
        body["pool_size"] = health.pool_size
        body["pool_in_use"] = health.pool_in_use
    if health.reachable:
        body["turns_held"] = health.turns_held
        body["slots_held"] = health.slots_held
        body["replicas_live"] = health.replicas_live
    if beating is not None:
        body["heartbeat"] = "ok" if beating else "failing"
    if health.error:
        body["error"] = health.error
    return body
