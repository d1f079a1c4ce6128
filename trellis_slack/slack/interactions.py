"""Slack's interaction payloads parsed once: button clicks, slash commands, App Home visits."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trellis_slack.slack.blocks import question_at

logger = logging.getLogger(__name__)


def non_empty(data: Mapping[str, Any], key: str) -> str | None:
    """`data[key]` if it is a non-empty string."""
    value = data.get(key)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class ButtonClick:
    """Someone clicked one of the bot's buttons (Stop, Retry) under an answer."""

    channel_id: str
    #: The question the button belongs to (the button's ``value``).
    question_ts: str
    user_id: str
    #: The message the button sat in, when Slack says.
    message_ts: str | None


def parse_button(body: Mapping[str, Any]) -> ButtonClick | None:
    """A Stop or Retry click (the button's value is the question's ts); None when parts lack."""
    click = parse_feedback(body)  # the same parts: channel, user, message, the button's value
    if click is None:
        return None
    channel_id, question_ts = question_at(click.value, click.channel_id)
    return ButtonClick(channel_id, question_ts, click.user_id, click.message_ts)


@dataclass(frozen=True, slots=True)
class SlashCommand:
    """A slash command someone ran: its text, who, where, and where to answer."""

    text: str
    user_id: str
    channel_id: str
    is_dm: bool
    response_url: str | None


def parse_slash_command(body: Mapping[str, Any]) -> SlashCommand:
    """A ``slash_commands`` payload; missing fields are empty (the command then refuses)."""
    channel = non_empty(body, "channel_id") or ""
    text = body.get("text")
    return SlashCommand(
        text=text if isinstance(text, str) else "",
        user_id=non_empty(body, "user_id") or "",
        channel_id=channel,
        is_dm=body.get("channel_name") == "directmessage" or channel.startswith("D"),
        response_url=non_empty(body, "response_url"),
    )


@dataclass(frozen=True, slots=True)
class HomeOpened:
    """Someone opened the app's Home or Messages tab."""

    user_id: str
    tab: str  # "home" | "messages"
    #: The person's DM with the bot (their Messages tab); the user id when Slack leaves it out.
    channel_id: str
    #: ``private_metadata`` of the Home tab they see now, if any.
    shown_digest: str | None


def parse_home_opened(event: Mapping[str, Any]) -> HomeOpened | None:
    """An ``app_home_opened`` event; None (and a warning) without a user."""
    user = non_empty(event, "user") if isinstance(event, Mapping) else None
    if user is None:
        logger.warning("an app_home_opened event without a user was ignored")
        return None
    view = event.get("view")
    digest = view.get("private_metadata") if isinstance(view, Mapping) else None
    return HomeOpened(
        user_id=user,
        tab=non_empty(event, "tab") or "",
        channel_id=non_empty(event, "channel") or user,
        shown_digest=digest if isinstance(digest, str) else None,
    )


@dataclass(frozen=True, slots=True)
class AgentStop:
    """Slack's own stop control was used on the bot's answer (``agent_session_stopped``)."""

    channel_id: str
    thread_ts: str
    user_id: str
    #: The streamed messages Slack stopped (empty when no stream was active).
    message_ts: tuple[str, ...]


def parse_agent_stop(event: Mapping[str, Any]) -> AgentStop | None:
    """The ``agent_session_stopped`` event, or None when it lacks what a stop needs."""
    channel, thread, user = (non_empty(event, key) for key in ("channel", "thread_ts", "user"))
    if channel is None or thread is None or user is None:
        logger.warning("an agent_session_stopped event without channel, thread or user was ignored")
        return None
    stopped = event.get("streaming_message_ts")
    message_ts = (
        tuple(ts for ts in stopped if isinstance(ts, str)) if isinstance(stopped, list) else ()
    )
    return AgentStop(channel, thread, user, message_ts)


@dataclass(frozen=True, slots=True)
class FeedbackClick:
    """A click on an answer's feedback buttons; ``value`` is the chosen button's."""

    channel_id: str
    message_ts: str | None
    thread_ts: str | None
    user_id: str
    value: str


def parse_feedback(body: Mapping[str, Any]) -> FeedbackClick | None:
    """A ``block_actions`` click (a button or ``feedback_buttons``): channel, user, message and
    the chosen button's value; None (and a warning) when it lacks a part."""
    container = body.get("container")
    container = container if isinstance(container, Mapping) else {}
    channel = body.get("channel")
    user = body.get("user")
    actions = body.get("actions")
    action = actions[0] if isinstance(actions, list) and actions else None
    channel_id = non_empty(container, "channel_id") or (
        non_empty(channel, "id") if isinstance(channel, Mapping) else None
    )
    user_id = non_empty(user, "id") if isinstance(user, Mapping) else None
    value = non_empty(action, "value") if isinstance(action, Mapping) else None
    if channel_id is None or user_id is None or value is None:
        logger.warning("a click without channel, user or value was ignored")
        return None
    return FeedbackClick(
        channel_id,
        non_empty(container, "message_ts"),
        non_empty(container, "thread_ts"),
        user_id,
        value,
    )


@dataclass(frozen=True, slots=True)
class StepsClick:
    """A click on an answer's "Show steps" button: which question's steps, for whom."""

    channel_id: str
    user_id: str
    question_ts: str
    thread_ts: str | None
    #: The question's own channel (``channel_id`` is where the button was clicked).
    question_channel: str = ""


def parse_show_steps(body: Mapping[str, Any]) -> StepsClick | None:
    """The ``block_actions`` of a "Show steps" click, or None when it lacks a part."""
    click = parse_feedback(body)  # the same parts: channel, user, the button's value
    if click is None:
        return None
    question_channel, question_ts = question_at(click.value, click.channel_id)
    return StepsClick(
        click.channel_id, click.user_id, question_ts, click.thread_ts, question_channel
    )
