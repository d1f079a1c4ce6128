"""The running bot: the Bolt app, its one wiring table of listeners, start-up and clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Coroutine
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.web.async_client import AsyncWebClient

from trellis_slack.bot.access import Access
from trellis_slack.bot.asks import Defaults
from trellis_slack.bot.bridge import Bridge
from trellis_slack.bot.chats import keep_retiring
from trellis_slack.bot.commands import Commands
from trellis_slack.bot.feedback import Feedback
from trellis_slack.bot.fleet import FREE_SOCKET, Fleet, StoreLimits
from trellis_slack.bot.home import Home
from trellis_slack.bot.private import Sharing
from trellis_slack.bot.routes import Listeners, build_app
from trellis_slack.bot.steps import StepsShower
from trellis_slack.bot.turn import TurnRunner
from trellis_slack.bot.views import STATUS_AFTER
from trellis_slack.errors import ConfigError, SlackRefused, StateError
from trellis_slack.ops.health import HealthServer
from trellis_slack.ops.metrics import Metrics
from trellis_slack.settings import Settings
from trellis_slack.slack.events import BotIdentity
from trellis_slack.slack.users import bot_identity
from trellis_slack.slack.web import SlackIO, web_client
from trellis_slack.store.base import Store
from trellis_slack.store.open import is_postgres, open_store
from trellis_slack.store.records import Command
from trellis_slack.trellis.client import Backoff, TrellisClient
from trellis_slack.trellis.rest import TrellisRest
from trellis_slack.trellis.tokens import ApiKeyTokens, StaticToken, TokenProvider
from trellis_slack.viz.renderer import Renderer

log = logging.getLogger(__name__)

#: How long a (channel, ts) claim is kept. Slack redelivers an event within minutes, so two weeks
#: is ample; questions, answers and conversations themselves are kept (edits and follow-ups of old
#: threads need them).
CLAIM_RETENTION_DAYS = 14.0


def slack_client(settings: Settings, session: aiohttp.ClientSession) -> AsyncWebClient:
    """The Web API client for ``SLACK_BOT_TOKEN`` and ``SLACK_API_URL`` (see ``slack/web.py``)."""
    return web_client(settings.slack_bot_token, settings.slack_api_url, session)


def token_provider(settings: Settings, rest: TrellisRest) -> TokenProvider:
    """A shared static JWT, or one JWT per Slack user minted from the API key."""
    if settings.trellis_token is not None:
        return StaticToken(settings.trellis_token)
    assert settings.trellis_api_key is not None  # guaranteed by Settings
    return ApiKeyTokens(rest, settings.trellis_api_key)


class Bot:
    """Everything the running bot owns, started in order and stopped in the reverse order.

    ``start`` enters each part into one ``AsyncExitStack``; ``stop`` unwinds it: the health server,
    the Socket Mode connection, answers in progress (``grace`` seconds), the Trellis client and
    REST API, the chart workers, the Slack session, the daily clean-up and the state file. A
    start-up cut short (a wrong token, SIGTERM while connecting) unwinds what it got that far.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        backoff: Backoff | None = None,
        update_interval: float = 1.0,
        status_after: float = STATUS_AFTER,
        pace: bool = True,
        warm_up_charts: bool = False,
    ) -> None:
        self.settings = settings
        self._warm_up_charts = warm_up_charts
        self._backoff = backoff or Backoff()
        self._update_interval = update_interval
        self._status_after = status_after
        self._pace = pace
        self.metrics = Metrics()
        self._stack = contextlib.AsyncExitStack()
        self._grace = 10.0
        self._stopped = False
        #: Set while running (tests and the health check look at them).
        self.store: Store | None = None
        self.bridge: Bridge | None = None
        self.fleet: Fleet | None = None
        self.handler: AsyncSocketModeHandler | None = None
        self.health: HealthServer | None = None
        self.renderer: Renderer | None = None

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background until stop, which cancels it."""
        task = asyncio.create_task(work)

        async def end() -> None:
            task.cancel()
            await asyncio.wait([task])

        self._stack.push_async_callback(end)

    async def start(self) -> None:
        """Check the Slack tokens, open the state file, connect to Trellis and to Socket Mode."""
        settings, stack = self.settings, self._stack
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        stack.push_async_callback(session.close)
        client = slack_client(settings, session)
        slack = SlackIO(client)
        bot = await self._identify(slack)
        await self._check_app_token(slack, settings.slack_app_token)

        # Only once Slack took both tokens: a wrong one leaves no state file behind.
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        self.store = store
        # Leaves the fleet after the answers drained (the exit stack unwinds in reverse).
        fleet = self.fleet = Fleet(
            store, ttl=settings.replica_ttl, sole=not is_postgres(settings.db_path)
        )
        stack.push_async_callback(fleet.leave)
        await fleet.beat()
        await store.prune(CLAIM_RETENTION_DAYS)
        self._background(self._prune_daily(store))

        rest = TrellisRest(settings.trellis_api_url)
        stack.push_async_callback(rest.aclose)
        tokens = token_provider(settings, rest)
        trellis = TrellisClient(
            ws_url=settings.trellis_ws_url,
            tokens=tokens,
            rest=rest,
            max_connections=settings.max_connections,
            idle_timeout=settings.idle_timeout,
            turn_timeout=settings.turn_timeout,
            backoff=self._backoff,
            pace=self._pace,
            chat_create_limits=((settings.chats_per_minute, 60.0),),
            limits=StoreLimits(store, fleet),
        )
        stack.push_async_callback(trellis.aclose)

        access = Access.from_settings(settings)
        bridge = self._build_bridge(
            bot=bot, slack=slack, store=store, trellis=trellis, access=access, fleet=fleet
        )
        self.bridge = bridge

        # Heartbeats, adoption and commands from other replicas go on while the answers drain.
        async def perform(command: Command) -> None:
            if command.kind == FREE_SOCKET:
                trellis.close_idle(command.payload)
            else:
                await bridge.perform(command)

        self._background(fleet.run(bridge.take_over, perform))
        stack.push_async_callback(lambda: bridge.shutdown(self._grace))
        if settings.chat_retention_days is not None:
            # Idle chats are retired ahead of Trellis's open-chat cap: at start-up, then daily.
            self._background(
                keep_retiring(
                    bridge.runner.chats, settings.chat_retention_days, bridge.queue.identity_of
                )
            )

        listeners = Listeners(
            bridge=bridge,
            commands=Commands(
                slack=slack,
                store=store,
                rest=rest,
                tokens=tokens,
                trellis=trellis,
                settings=settings,
                access=access,
                bot=bot,
            ),
            home=Home(slack=slack, store=store, settings=settings, access=access, bot=bot),
            feedback=Feedback(
                slack=slack, store=store, rest=rest, tokens=tokens, identities=bridge.queue
            ),
            steps=StepsShower(slack=slack, store=store),
            sharing=Sharing(slack=slack, store=store),
        )
        app = build_app(client, listeners)
        await bridge.recover()
        handler = AsyncSocketModeHandler(app, settings.slack_app_token, web_client=client)
        stack.push_async_callback(handler.close_async)
        self.handler = handler
        await handler.connect_async()
        if settings.health_port is not None:
            health = HealthServer(
                settings,
                self.metrics,
                slack=handler.client,
                trellis=trellis,
                store=store,
                fleet=fleet,
            )
            await health.start()
            stack.push_async_callback(health.stop)
            self.health = health
        log.info("connected to Slack as %s; waiting for questions", bot.user_id)

    # --- the part that turns questions into answers -------------------------------------------

    def _build_bridge(
        self,
        *,
        bot: BotIdentity,
        slack: SlackIO,
        store: Store,
        trellis: TrellisClient,
        access: Access,
        fleet: Fleet,
    ) -> Bridge:
        """The chart workers, the turn runner and the bridge (entered into the exit stack)."""
        renderer = self.renderer = Renderer(charts=self.settings.slack_charts)
        # close() waits briefly for a chart being drawn: keep that off the event loop.
        self._stack.push_async_callback(asyncio.to_thread, renderer.close)
        if self._warm_up_charts:
            # Start the chart workers now so the first chart does not wait for them.
            warm_up = asyncio.create_task(renderer.warm_up())
            self._stack.push_async_callback(asyncio.wait, [warm_up])
        runner = TurnRunner(
            slack=slack,
            trellis=trellis,
            store=store,
            renderer=renderer,
            defaults=Defaults(self.settings.trellis_integration_id, self.settings.trellis_model),
            update_interval=self._update_interval,
            metrics=self.metrics,
            native=self.settings.slack_streaming == "native",
            status_after=self._status_after,
            private_answers=self.settings.private_answers,
        )
        return Bridge(
            bot=bot,
            slack=slack,
            store=store,
            runner=runner,
            access=access,
            trellis=trellis,
            fleet=fleet,
        )

    # --- start-up checks ----------------------------------------------------------------------

    @staticmethod
    async def _identify(slack: SlackIO) -> BotIdentity:
        try:
            return bot_identity(await slack.auth_test())
        except SlackRefused as exc:
            raise ConfigError(
                [
                    f"Slack rejected SLACK_BOT_TOKEN ({exc.error}): reinstall the app and copy "
                    "its Bot User OAuth Token (xoxb-…)"
                ]
            ) from None

    @staticmethod
    async def _check_app_token(slack: SlackIO, app_token: str) -> None:
        """Ask for a Socket Mode URL once, so a wrong app token stops start-up with a clear error.

        slack-sdk's own connect loop would log a traceback and retry forever instead.
        """
        try:
            await slack.check_app_token(app_token)
        except SlackRefused as exc:
            raise ConfigError(
                [
                    f"Slack refused SLACK_APP_TOKEN ({exc.error}): check that Socket Mode is on "
                    "and that the token is this app's app-level token (xapp-…) with "
                    "connections:write"
                ]
            ) from None

    async def stop(self, grace: float = 10.0) -> None:
        """Stop listening, let answers in progress finish (or stop them with a note), close everything."""
        if self._stopped:
            return
        self._stopped = True
        self._grace = grace
        await self._stack.aclose()
        if self.metrics.outcomes:  # a start-up that failed, or answered nothing, has no numbers
            log.info("stopped; %s", self.metrics.summary())
        elif self.handler is not None:
            log.info("stopped")

    @staticmethod
    async def _prune_daily(store: Store) -> None:
        """Forget old duplicate-delivery claims once a day (Slack redelivers within minutes)."""
        while True:
            await asyncio.sleep(24 * 3600)
            try:
                await store.prune(CLAIM_RETENTION_DAYS)
            except StateError:
                log.warning("could not prune the state file", exc_info=True)


async def serve(settings: Settings) -> int:
    """Run the bot until SIGTERM or SIGINT; exit code 0 after a clean shutdown."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bot = Bot(settings)
    try:
        starting = asyncio.ensure_future(bot.start())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():  # SIGTERM while still connecting: give up on starting
            starting.cancel()
            await asyncio.wait([starting])
            return 0
        stopping.cancel()
        starting.result()
        # Everything loaded at start-up lives as long as the process: keep it out of the
        # collector's full passes, which otherwise pause the loop as conversations pile up.
        gc.freeze()
        gc.set_threshold(20_000, 50, 50)
        await stop.wait()
        log.info("shutting down")
    finally:
        # 6 s for answers in progress, then about 3 s to stop the rest: inside Docker's default
        # 10 s between SIGTERM and SIGKILL.
        await bot.stop(grace=6.0)
    return 0
