"""The App Home: the Home tab (how to ask, the current defaults) and a one-time Messages greeting."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from trellis_slack.bot.access import Access, Refusal, person_refusal, refusal
from trellis_slack.bot.commands_text import COMMAND, usage_lines
from trellis_slack.settings import Settings
from trellis_slack.slack.blocks import Block, Rendered
from trellis_slack.slack.events import BotIdentity, HomeOpened, parse_home_opened
from trellis_slack.slack.markdown import escape_mrkdwn
from trellis_slack.slack.users import UserInfo
from trellis_slack.store.base import Store

log = logging.getLogger(__name__)

#: What the Home tab adds to a refusal: where to go from here.
_ASK_FOR_ACCESS = "Ask whoever runs this bot in your workspace if you need access."


def not_allowed_line(why: Refusal) -> str:
    """The Home tab's line for someone who may not ask the bot anywhere."""
    text = why.reason.removeprefix("Sorry, ")
    return f":lock: {text[0].upper()}{text[1:]} {_ASK_FOR_ACCESS}"


class HomeSlack(Protocol):
    """The Slack calls the App Home makes: ``SlackIO``."""

    async def user(self, user_id: str, *, fresh: bool = False) -> UserInfo | None:
        """``users.info`` (cached); None when it failed."""

    async def publish_home(self, user_id: str, view: dict[str, Any]) -> bool:
        """Show ``view`` as this person's Home tab."""

    async def post(self, channel: str, thread_ts: str | None, body: Rendered) -> str | None:
        """Post a message; its ``ts``, or None."""

    async def suggest_prompts(self, channel: str, prompts: Sequence[tuple[str, str]]) -> bool:
        """Suggest what to ask in the bot's conversation."""


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


def home_view(
    bot: BotIdentity, settings: Settings, *, refused: Refusal | None = None
) -> dict[str, Any]:
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
    if refused is not None:
        blocks.append(_section(not_allowed_line(refused)))
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
    * Who may ask follows ``bot/access.py``; the person's workspace comes from ``users.info``
      (cached). Someone who may not ask anywhere sees why on the Home tab; someone who may not
      ask in their DM with the bot is not greeted there.
    * The greeting is claimed in the state file before it is posted, so two quick visits (or a
      redelivered event) greet once; when the post fails the claim is released and the next visit
      tries again.
    """

    def __init__(
        self,
        *,
        slack: HomeSlack,
        store: Store,
        settings: Settings,
        access: Access,
        bot: BotIdentity,
    ) -> None:
        self._slack = slack
        self._store = store
        self._settings = settings
        self._access = access
        self._bot = bot

    async def opened(self, event: Mapping[str, Any]) -> None:
        """Someone opened the app's Home or Messages tab."""
        visit = parse_home_opened(event)
        if visit is None:
            return
        if visit.tab == "home":
            await self._publish(visit)
        elif visit.tab == "messages":
            await self._greet(visit)

    async def _team_of(self, user_id: str) -> str | None:
        """The person's workspace (None when Slack cannot say: treated as this one)."""
        info = await self._slack.user(user_id)
        return info.team_id if info is not None else None

    async def _publish(self, visit: HomeOpened) -> None:
        user = visit.user_id
        refused = person_refusal(
            self._access,
            user_id=user,
            user_team_id=await self._team_of(user),
            bot_team_id=self._bot.team_id,
        )
        view = home_view(self._bot, self._settings, refused=refused)
        if visit.shown_digest == view["private_metadata"]:
            log.debug("the Home tab of %s is current", user)
            return
        await self._slack.publish_home(user, view)

    async def _greet(self, visit: HomeOpened) -> None:
        user, channel = visit.user_id, visit.channel_id
        refused = refusal(
            self._access,
            user_id=user,
            user_team_id=await self._team_of(user),
            bot_team_id=self._bot.team_id,
            channel_id=channel,
            is_dm=True,
        )
        if refused is not None:
            return  # the bot will not answer this person here: do not invite questions
        # Every visit: Slack shows these above the message box until the person writes.
        await self._slack.suggest_prompts(channel, self._settings.suggested_prompts)
        team = self._bot.team_id
        if not await self._store.claim_greeting(team, user):
            return
        if await self._slack.post(channel, None, greeting(self._bot, user)) is None:
            log.warning("could not greet %s; will try on their next visit", user)
            await self._store.release_greeting(team, user)
        else:
            log.info("greeted %s in the Messages tab", user)
