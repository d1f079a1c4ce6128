"""The App Home: the Home tab (how to ask, the current defaults) and a one-time Messages greeting."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from trellis_slack.bot.commands import COMMAND, usage_lines
from trellis_slack.settings import Settings
from trellis_slack.slack.blocks import Block, Rendered
from trellis_slack.slack.events import BotIdentity
from trellis_slack.slack.markdown import escape_mrkdwn
from trellis_slack.slack.web import SlackIO
from trellis_slack.store.sqlite import Store

log = logging.getLogger(__name__)

_NOT_ALLOWED = (
    ":lock: You are not on the list of people who can ask me questions. "
    "Ask whoever runs this bot in your workspace if you need access."
)


def may_ask(settings: Settings, user_id: str) -> bool:
    """Whether ``ALLOWED_USERS`` lets this person ask (``TRELLIS_ADMIN_USERS`` always may)."""
    if settings.admin_users is not None and user_id in settings.admin_users:
        return True
    return settings.allowed_users is None or user_id in settings.allowed_users


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _code(text: str) -> str:
    return escape_mrkdwn(text.replace("`", "'"))


def defaults_lines(settings: Settings) -> list[str]:
    """The bot's defaults in words: database, model, and what counts as a follow-up."""
    integration = settings.trellis_integration_id
    model = settings.trellis_model
    follow_ups = (
        "any reply in a thread I answered"
        if settings.follow_ups == "all"
        else "only replies that mention me"
    )
    return [
        "• Database: "
        + (
            f"`{_code(integration)}`"
            if integration
            else "none chosen (an admin can choose one with `/trellis integration <id>`)"
        ),
        "• Model: " + (f"`{_code(model)}`" if model else "Trellis default"),
        f"• Follow-ups: {follow_ups}",
    ]


def home_view(bot: BotIdentity, settings: Settings, *, allowed: bool) -> dict[str, Any]:
    """The Home tab: how to ask, the current defaults, and how admins change them per channel.

    ``private_metadata`` holds a digest of the blocks, so an unchanged tab is not published again.
    """
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Ask Trellis about your data"}},
        _section(
            f"I'm <@{bot.user_id}>: ask me questions about your data in plain words and I answer "
            "from Trellis, the AI data analyst, with numbers, tables and charts."
        ),
    ]
    if not allowed:
        blocks.append(_section(_NOT_ALLOWED))
    blocks += [
        _section("*How to ask*\n" + "\n".join(usage_lines(bot.user_id, settings.follow_ups))),
        {"type": "divider"},
        _section("*Current defaults*\n" + "\n".join(defaults_lines(settings))),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": (
                        f"`{COMMAND} status` shows what a channel uses. Workspace admins can choose "
                        f"a channel's database and model with `{COMMAND} integration` and "
                        f"`{COMMAND} model`; `{COMMAND} help` lists every command."
                    ),
                }
            ],
        },
    ]
    digest = hashlib.sha256(json.dumps(blocks, sort_keys=True).encode()).hexdigest()[:32]
    return {"type": "home", "blocks": blocks, "private_metadata": digest}


def greeting(bot: BotIdentity, user_id: str) -> Rendered:
    """The first message in someone's Messages tab: how to ask."""
    text = (
        f"Hi <@{user_id}>! Ask me a question about your data right here, for example "
        "“orders by region last month”, and I'll answer in a thread. Reply in that thread to "
        f"follow up. In channels, mention <@{bot.user_id}>. `{COMMAND} help` shows everything "
        "I can do."
    )
    return Rendered(text=text, blocks=(_section(f":wave: {text}"),))


class Home:
    """Handles ``app_home_opened``.

    Choices made here (Slack's docs leave them open):

    * The Home tab is published whenever it is opened and its content changed (a digest in
      ``private_metadata`` tells), so it always shows the current defaults without a
      ``views.publish`` on every visit.
    * The greeting is claimed in the state file before it is posted, so two quick visits (or a
      redelivered event) greet once; when the post fails the claim is released and the next visit
      tries again. People ``ALLOWED_USERS`` leaves out are not greeted (their Home tab says why).
    """

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        slack: SlackIO,
        store: Store,
        settings: Settings,
        bot: BotIdentity,
    ) -> None:
        self._client = client
        self._slack = slack
        self._store = store
        self._settings = settings
        self._bot = bot

    async def opened(self, event: Mapping[str, Any]) -> None:
        """Someone opened the app's Home or Messages tab."""
        user = event.get("user")
        if not isinstance(user, str) or not user:
            log.warning("an app_home_opened event without a user was ignored")
            return
        tab = event.get("tab")
        if tab == "home":
            await self._publish(user, event.get("view"))
        elif tab == "messages":
            channel = event.get("channel")
            await self._greet(user, channel if isinstance(channel, str) and channel else user)

    async def _publish(self, user: str, shown: object) -> None:
        view = home_view(self._bot, self._settings, allowed=may_ask(self._settings, user))
        if isinstance(shown, Mapping) and shown.get("private_metadata") == view["private_metadata"]:
            log.debug("the Home tab of %s is current", user)
            return
        try:
            await self._client.views_publish(user_id=user, view=view)
        except SlackApiError as exc:
            log.warning(
                "Slack views.publish failed: %s", exc.response.get("error", "unknown error")
            )
        except (TimeoutError, SlackClientError, OSError) as exc:
            log.warning("Slack views.publish failed: %s", type(exc).__name__)

    async def _greet(self, user: str, channel: str) -> None:
        if not may_ask(self._settings, user):
            return
        allowed = self._settings.allowed_channels
        if allowed is not None and channel not in allowed:
            return  # the bot will not answer in this DM: do not invite questions there
        team = self._bot.team_id
        if not await self._store.claim_greeting(team, user):
            return
        if await self._slack.post(channel, None, greeting(self._bot, user)) is None:
            log.warning("could not greet %s; will try on their next visit", user)
            await self._store.release_greeting(team, user)
        else:
            log.info("greeted %s in the Messages tab", user)
