"""The running bot: the Bolt app, its one wiring table of listeners, start-up and clean shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from trellis_slack.bot.bridge import Access, Bridge
from trellis_slack.bot.commands import COMMAND, Commands
from trellis_slack.bot.home import Home
from trellis_slack.bot.turn import Defaults, TurnRunner
from trellis_slack.errors import ConfigError, SlackUnavailable, StateError
from trellis_slack.ops.health import HealthServer
from trellis_slack.ops.metrics import Metrics
from trellis_slack.settings import Settings
from trellis_slack.slack.blocks import RETRY_ACTION, STOP_ACTION, Rendered
from trellis_slack.slack.events import BotIdentity
from trellis_slack.slack.web import SlackIO
from trellis_slack.store.sqlite import Store
from trellis_slack.trellis.client import Backoff, TrellisClient
from trellis_slack.trellis.rest import TrellisRest
from trellis_slack.trellis.tokens import ApiKeyTokens, StaticToken, TokenProvider
from trellis_slack.viz.renderer import Renderer

log = logging.getLogger(__name__)

#: How long a (channel, ts) claim is kept. Slack redelivers an event within minutes, so two weeks
#: is ample; questions, answers and conversations themselves are kept (edits and follow-ups of old
#: threads need them).
CLAIM_RETENTION_DAYS = 14.0

Handler = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Listeners:
    """What the wiring table's handlers hand work to."""

    bridge: Bridge
    commands: Commands
    home: Home


@dataclass(frozen=True, slots=True)
class Route:
    """One row of the wiring table: what Slack sends → which handler."""

    kind: str  # "event" | "action" | "command"
    name: str  # event type, action_id or slash command
    #: Starts the work in the background; may return what to ack with (a command's answer).
    handler: Callable[[Listeners, dict[str, Any]], Rendered | None]


def _on_message(listeners: Listeners, body: dict[str, Any]) -> None:
    listeners.bridge.spawn(listeners.bridge.on_message(body["event"]))


def _on_app_mention(listeners: Listeners, body: dict[str, Any]) -> None:
    listeners.bridge.spawn(listeners.bridge.on_app_mention(body["event"]))


def _on_app_home_opened(listeners: Listeners, body: dict[str, Any]) -> None:
    listeners.bridge.spawn(listeners.home.opened(body["event"]))


def _on_command(listeners: Listeners, body: dict[str, Any]) -> Rendered | None:
    answer = listeners.commands.immediate(body)
    if answer is None:
        listeners.bridge.spawn(listeners.commands.run(body))
    return answer


def _button_context(body: dict[str, Any]) -> tuple[str, str, str, str | None] | None:
    """(channel, question ts, clicking user, clicked message ts) from a block_actions payload."""
    try:
        action = body["actions"][0]
        container = body.get("container") or {}
        channel = container.get("channel_id") or body["channel"]["id"]
        return channel, str(action["value"]), body["user"]["id"], container.get("message_ts")
    except (KeyError, IndexError, TypeError):
        log.warning("a button payload without the fields it needs was ignored")
        return None


def _on_stop(listeners: Listeners, body: dict[str, Any]) -> None:
    context = _button_context(body)
    if context:
        channel, question_ts, user, _ = context
        bridge = listeners.bridge
        bridge.spawn(bridge.on_stop(channel_id=channel, question_ts=question_ts, user_id=user))


def _on_retry(listeners: Listeners, body: dict[str, Any]) -> None:
    context = _button_context(body)
    if context:
        channel, question_ts, user, message_ts = context
        bridge = listeners.bridge
        bridge.spawn(
            bridge.on_retry(
                channel_id=channel, question_ts=question_ts, user_id=user, message_ts=message_ts
            )
        )


#: Everything the app handles. ``manifest.yml`` subscribes exactly these events; every ``message``
#: subtype reaches ``_on_message`` (Bolt only acks events a listener matches).
ROUTES: tuple[Route, ...] = (
    Route("event", "message", _on_message),
    Route("event", "app_mention", _on_app_mention),
    Route("action", STOP_ACTION, _on_stop),
    Route("action", RETRY_ACTION, _on_retry),
    Route("event", "app_home_opened", _on_app_home_opened),
    Route("command", COMMAND, _on_command),
)


class _QuietTokenWarning(logging.Filter):
    """Drops Bolt's start-up warning that ``SLACK_BOT_TOKEN`` is unused.

    Bolt reads ``SLACK_BOT_TOKEN`` from the environment itself, then warns that the client we pass
    (the same token, plus ``SLACK_API_URL`` and rate-limit retries) wins. That is intended, and
    the warning would only worry an admin.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


def build_app(client: AsyncWebClient, listeners: Listeners) -> AsyncApp:
    """A Bolt app wired from ``ROUTES``; listeners ack at once and hand the work on."""
    bolt_logger = logging.getLogger(f"slack_bolt.{AsyncApp.__name__}")
    if not any(isinstance(f, _QuietTokenWarning) for f in bolt_logger.filters):
        bolt_logger.addFilter(_QuietTokenWarning())
    app = AsyncApp(client=client, process_before_response=False)
    for route in ROUTES:
        app_listener = _listener(listeners, route)
        if route.kind == "event":
            app.event(route.name)(app_listener)
        elif route.kind == "command":
            app.command(route.name)(app_listener)
        else:
            app.action(route.name)(app_listener)
    return app


def _listener(listeners: Listeners, route: Route) -> Handler:
    async def listener(ack: Callable[..., Awaitable[Any]], body: dict[str, Any]) -> None:
        try:
            answer = route.handler(listeners, body)
        except Exception:
            log.exception("the %s %s handler failed", route.kind, route.name)
            answer = None
        if answer is None:
            await ack()
        else:
            await ack(text=answer.text, blocks=list(answer.blocks), response_type="ephemeral")

    listener.__name__ = f"on_{route.kind}_{route.name}"
    return listener


def slack_client(settings: Settings, session: aiohttp.ClientSession) -> AsyncWebClient:
    """The Web API client: ``SLACK_API_URL``, 429s retried after ``Retry-After``.

    One shared ``aiohttp`` session keeps connections to Slack alive: without it slack-sdk opens a
    new connection for every call, which at a thousand conversations costs more than the calls.
    """
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        session=session,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=6),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


def token_provider(settings: Settings, rest: TrellisRest) -> TokenProvider:
    """A shared static JWT, or one JWT per Slack user minted from the API key."""
    if settings.trellis_token is not None:
        return StaticToken(settings.trellis_token)
    assert settings.trellis_api_key is not None  # guaranteed by Settings
    return ApiKeyTokens(rest, settings.trellis_api_key)


class Bot:
    """Everything the running bot owns, started and stopped in the right order."""

    def __init__(
        self,
        settings: Settings,
        *,
        backoff: Backoff | None = None,
        update_interval: float = 1.0,
        pace: bool = True,
        warm_up_charts: bool = True,
    ) -> None:
        self.settings = settings
        self._warm_up_charts = warm_up_charts
        self._backoff = backoff or Backoff()
        self._update_interval = update_interval
        self._pace = pace
        self.store: Store | None = None
        self._session: aiohttp.ClientSession | None = None
        self.client: AsyncWebClient | None = None
        self.rest = TrellisRest(settings.trellis_api_url)
        self.trellis: TrellisClient | None = None
        self.renderer: Renderer | None = None
        self.bridge: Bridge | None = None
        self.handler: AsyncSocketModeHandler | None = None
        self._stopped = False
        self.metrics = Metrics()
        self.health: HealthServer | None = None
        self._warm_up: asyncio.Task[None] | None = None
        self._housekeeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the state file, check the Slack token, connect to Socket Mode."""
        settings = self.settings
        self.store = await Store.open(settings.db_path)
        await self.store.prune(CLAIM_RETENTION_DAYS)
        self._housekeeping = asyncio.create_task(self._prune_daily(self.store))
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self.client = slack_client(settings, self._session)
        bot = await self._identify(self.client)
        await self._check_app_token(self.client, settings.slack_app_token)
        tokens = token_provider(settings, self.rest)
        self.trellis = TrellisClient(
            ws_url=settings.trellis_ws_url,
            tokens=tokens,
            rest=self.rest,
            max_connections=settings.max_connections,
            idle_timeout=settings.idle_timeout,
            turn_timeout=settings.turn_timeout,
            backoff=self._backoff,
            pace=self._pace,
        )
        self.renderer = Renderer()
        if self._warm_up_charts:
            # Start the chart workers now so the first chart does not wait for them.
            self._warm_up = asyncio.create_task(self.renderer.warm_up())
        slack = SlackIO(self.client)
        runner = TurnRunner(
            slack=slack,
            trellis=self.trellis,
            store=self.store,
            renderer=self.renderer,
            defaults=Defaults(settings.trellis_integration_id, settings.trellis_model),
            update_interval=self._update_interval,
            metrics=self.metrics,
        )
        self.bridge = Bridge(
            bot=bot,
            slack=slack,
            store=self.store,
            runner=runner,
            access=Access(
                allowed_channels=settings.allowed_channels,
                allowed_users=settings.allowed_users,
                allow_external_users=settings.allow_external_users,
                follow_ups=settings.follow_ups,
                per_user_identity=settings.per_user_identity,
            ),
        )
        listeners = Listeners(
            bridge=self.bridge,
            commands=Commands(
                client=self.client,
                store=self.store,
                rest=self.rest,
                tokens=tokens,
                trellis=self.trellis,
                settings=settings,
                bot=bot,
            ),
            home=Home(
                client=self.client, slack=slack, store=self.store, settings=settings, bot=bot
            ),
        )
        app = build_app(self.client, listeners)
        await self.bridge.recover()
        self.handler = AsyncSocketModeHandler(app, settings.slack_app_token, web_client=self.client)
        await self.handler.connect_async()
        if settings.health_port is not None:
            self.health = HealthServer(
                settings, self.metrics, slack=self.handler.client, trellis=self.trellis
            )
            await self.health.start()
        log.info("connected to Slack as %s; waiting for questions", bot.user_id)

    @staticmethod
    async def _identify(client: AsyncWebClient) -> BotIdentity:
        auth = await _start_up_call(
            client.auth_test(),
            "Slack rejected SLACK_BOT_TOKEN ({error}): reinstall the app and copy its "
            "Bot User OAuth Token (xoxb-…)",
        )
        return BotIdentity(
            user_id=str(auth["user_id"]),
            bot_id=str(auth.get("bot_id") or ""),
            team_id=str(auth["team_id"]),
        )

    @staticmethod
    async def _check_app_token(client: AsyncWebClient, app_token: str) -> None:
        """Ask for a Socket Mode URL once, so a wrong app token stops start-up with a clear error.

        slack-sdk's own connect loop would log a traceback and retry forever instead.
        """
        await _start_up_call(
            client.apps_connections_open(app_token=app_token),
            "Slack refused SLACK_APP_TOKEN ({error}): check that Socket Mode is on and that the "
            "token is this app's app-level token (xapp-…) with connections:write",
        )

    async def stop(self, grace: float = 10.0) -> None:
        """Stop listening, let answers in progress finish (or stop them with a note), close everything."""
        if self._stopped:
            return
        self._stopped = True
        if self.health is not None:
            await self.health.stop()
        if self.handler is not None:
            await self.handler.close_async()
        if self.bridge is not None:
            await self.bridge.shutdown(grace)
        if self.trellis is not None:
            await self.trellis.aclose()
        await self.rest.aclose()
        if self._session is not None:
            await self._session.close()
        if self._warm_up is not None:
            await asyncio.wait([self._warm_up])
        if self.renderer is not None:
            # close() waits briefly for a chart being drawn: keep that off the event loop.
            await asyncio.to_thread(self.renderer.close)
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.wait([self._housekeeping])
        if self.store is not None:
            await self.store.close()
        log.info("stopped; %s", self.metrics.summary())

    @staticmethod
    async def _prune_daily(store: Store) -> None:
        """Forget old duplicate-delivery claims once a day (Slack redelivers within minutes)."""
        while True:
            await asyncio.sleep(24 * 3600)
            try:
                await store.prune(CLAIM_RETENTION_DAYS)
            except StateError:
                log.warning("could not prune the state file", exc_info=True)


async def _start_up_call(call: Awaitable[AsyncSlackResponse], refused: str) -> AsyncSlackResponse:
    """One Slack call at start-up: a refusal is a configuration problem (``refused``, with
    ``{error}`` filled in), a network failure is not."""
    try:
        return await call
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown error")
        raise ConfigError([refused.format(error=error)]) from None
    except (SlackClientError, OSError, aiohttp.ClientError) as exc:
        raise SlackUnavailable(
            f"cannot reach Slack at SLACK_API_URL ({type(exc).__name__}): check the network, "
            "proxy or firewall"
        ) from None


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
