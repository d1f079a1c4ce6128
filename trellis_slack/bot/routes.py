"""The one wiring table: every event, action and command the app handles, and the Bolt app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.web.async_client import AsyncWebClient

from trellis_slack.bot.bridge import Bridge
from trellis_slack.bot.commands import COMMAND, Commands
from trellis_slack.bot.feedback import Feedback
from trellis_slack.bot.home import Home
from trellis_slack.bot.intake import Recorded
from trellis_slack.bot.private import SHARE_ACTION, Sharing
from trellis_slack.bot.steps import StepsShower
from trellis_slack.errors import StateError
from trellis_slack.slack.blocks import (
    FEEDBACK_ACTION,
    RETRY_ACTION,
    SHOW_STEPS_ACTION,
    STOP_ACTION,
    Rendered,
)
from trellis_slack.slack.events import parse_button
from trellis_slack.slack.interactions import parse_agent_stop, parse_feedback, parse_show_steps

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Listeners:
    """What the wiring table's handlers hand work to."""

    bridge: Bridge
    commands: Commands
    home: Home
    feedback: Feedback
    steps: StepsShower
    sharing: Sharing


@dataclass(frozen=True, slots=True)
class Route:
    """One row of the wiring table: what Slack sends → which handler."""

    kind: str  # "event" | "action" | "command"
    name: str  # event type, action_id or slash command
    #: Starts the work in the background; may return what to ack with (a command's answer),
    #: or what to wait for before acking (an arriving question, recorded first).
    handler: Callable[[Listeners, dict[str, Any]], Rendered | Recorded | None]


def _recorded_first(
    listeners: Listeners, handle: Callable[[Recorded], Coroutine[Any, Any, None]]
) -> Recorded:
    """Start ``handle``; what it settles once the question is recorded is what the ack awaits."""
    recorded: Recorded = asyncio.get_running_loop().create_future()
    listeners.bridge.spawn(handle(recorded))
    return recorded


def _on_message(listeners: Listeners, body: dict[str, Any]) -> Recorded:
    return _recorded_first(listeners, lambda r: listeners.bridge.on_message(body["event"], r))


def _on_app_mention(listeners: Listeners, body: dict[str, Any]) -> Recorded:
    return _recorded_first(listeners, lambda r: listeners.bridge.on_app_mention(body["event"], r))


def _on_app_home_opened(listeners: Listeners, body: dict[str, Any]) -> None:
    listeners.bridge.spawn(listeners.home.opened(body["event"]))


def _on_command(listeners: Listeners, body: dict[str, Any]) -> Rendered | None:
    answer = listeners.commands.immediate(body)
    if answer is None:
        listeners.bridge.spawn(listeners.commands.run(body))
    return answer


def _on_stop(listeners: Listeners, body: dict[str, Any]) -> None:
    click = parse_button(body)
    if click:
        bridge = listeners.bridge
        bridge.spawn(
            bridge.on_stop(
                channel_id=click.channel_id, question_ts=click.question_ts, user_id=click.user_id
            )
        )


def _on_agent_stopped(listeners: Listeners, body: dict[str, Any]) -> None:
    stop = parse_agent_stop(body["event"])
    if stop:
        bridge = listeners.bridge
        bridge.spawn(
            bridge.on_agent_stopped(
                channel_id=stop.channel_id, thread_ts=stop.thread_ts, user_id=stop.user_id
            )
        )


def _on_feedback(listeners: Listeners, body: dict[str, Any]) -> None:
    click = parse_feedback(body)
    if click:
        listeners.bridge.spawn(
            listeners.feedback.on_click(
                channel_id=click.channel_id,
                message_ts=click.message_ts,
                user_id=click.user_id,
                value=click.value,
                thread_ts=click.thread_ts,
            )
        )


def _on_show_steps(listeners: Listeners, body: dict[str, Any]) -> None:
    click = parse_show_steps(body)
    if click:
        listeners.bridge.spawn(
            listeners.steps.on_click(
                channel_id=click.channel_id,
                user_id=click.user_id,
                question_ts=click.question_ts,
                thread_ts=click.thread_ts,
                question_channel=click.question_channel or click.channel_id,
            )
        )


def _on_share(listeners: Listeners, body: dict[str, Any]) -> None:
    click = parse_feedback(body)  # the same parts: channel, user, thread, the button's value
    if click:
        listeners.bridge.spawn(
            listeners.sharing.on_click(
                channel_id=click.channel_id,
                user_id=click.user_id,
                question_ts=click.value,
                thread_ts=click.thread_ts,
            )
        )


def _on_retry(listeners: Listeners, body: dict[str, Any]) -> None:
    click = parse_button(body)
    if click:
        bridge = listeners.bridge
        bridge.spawn(
            bridge.on_retry(
                channel_id=click.channel_id,
                question_ts=click.question_ts,
                user_id=click.user_id,
                message_ts=click.message_ts,
            )
        )


#: Everything the app handles. ``manifest.yml`` subscribes exactly these events; every ``message``
#: subtype reaches ``_on_message`` (Bolt only acks events a listener matches).
ROUTES: tuple[Route, ...] = (
    Route("event", "message", _on_message),
    Route("event", "app_mention", _on_app_mention),
    Route("action", STOP_ACTION, _on_stop),
    Route("action", RETRY_ACTION, _on_retry),
    Route("action", FEEDBACK_ACTION, _on_feedback),
    Route("action", SHOW_STEPS_ACTION, _on_show_steps),
    Route("action", SHARE_ACTION, _on_share),
    Route("event", "app_home_opened", _on_app_home_opened),
    Route("event", "agent_session_stopped", _on_agent_stopped),
    Route("command", COMMAND, _on_command),
)


#: Seconds an arriving question may take to be recorded before its delivery is left unacked.
RECORD_WITHIN = 2.5
#: Events that must be recorded in the store before they are acked.
_RECORDED_FIRST = frozenset({"message", "app_mention"})


class NotRecorded(Exception):
    """An arriving question the store could not take: its delivery is left unacked."""


async def _on_error(error: Exception) -> None:
    """Bolt's error handler: an unrecorded question is one line, anything else a traceback."""
    if isinstance(error, NotRecorded):
        log.warning("a %s event was left unacked: the state store could not record it", error)
    else:
        log.error("a Slack listener failed", exc_info=error)


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
    # Each listener returns as soon as its work is handed on, so Bolt answers Slack only then:
    # an arriving question is acked once it is recorded, and not at all when it cannot be
    # (a listener that raises makes Bolt answer 500, which Socket Mode does not ack).
    app = AsyncApp(client=client, process_before_response=True)
    app.error(_on_error)
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
        if route.name in _RECORDED_FIRST and not listeners.bridge.fleet.healthy:
            # The store is unreachable, so the question could not be recorded: no ack, and
            # Slack redelivers it (to another replica, or here once the store is back).
            raise NotRecorded(route.name)
        try:
            answer = route.handler(listeners, body)
        except Exception:
            log.exception("the %s %s handler failed", route.kind, route.name)
            answer = None
        if isinstance(answer, asyncio.Future):
            try:
                # Within Slack's 3 s: what is not recorded by then is not acked (Slack retries).
                async with asyncio.timeout(RECORD_WITHIN):
                    await asyncio.shield(answer)
            except (StateError, TimeoutError) as exc:
                if isinstance(exc, StateError):
                    listeners.bridge.fleet.healthy = False  # until a heartbeat succeeds again
                raise NotRecorded(route.name) from None
            await ack()
        elif answer is None:
            await ack()
        else:
            await ack(text=answer.text, blocks=list(answer.blocks), response_type="ephemeral")

    listener.__name__ = f"on_{route.kind}_{route.name}"
    return listener
