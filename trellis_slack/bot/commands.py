"""The ``/trellis`` slash command: check who may run it, then answer status, lists and changes.

What the command understands and how its replies are worded is pure (``bot/commands_text.py``);
who may do what is ``bot/access.py``; every Slack call goes through ``slack/web.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

from trellis_slack.bot.access import Access, may_change_settings, refusal
from trellis_slack.bot.commands_text import (
    COMMAND,
    MAX_ECHO,
    NO_EMAIL,
    NO_PROFILE,
    RESET_WORDS,
    ChooseIntegration,
    Help,
    Status,
    code,
    help_reply,
    integration_lines,
    model_lines,
    note,
    parse,
    reply,
    source,
    status_reply,
    who_may_change,
)
from trellis_slack.errors import TrellisError, TrellisSlackError
from trellis_slack.logs import log_context
from trellis_slack.settings import Settings
from trellis_slack.slack.blocks import Rendered, explain_error
from trellis_slack.slack.events import BotIdentity, SlashCommand, parse_slash_command
from trellis_slack.slack.markdown import escape_mrkdwn
from trellis_slack.slack.users import UserInfo
from trellis_slack.store.base import Store
from trellis_slack.store.records import ChannelSettings
from trellis_slack.trellis.rest import Integration, ModelList
from trellis_slack.trellis.tokens import TokenProvider, with_token

__all__ = [
    "COMMAND",
    "STATUS_TIMEOUT",
    "Commands",
    "ReachabilityCheck",
    "SlackSeam",
    "TrellisLists",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds ``status`` waits for Trellis to connect, sign in and answer a ping.
STATUS_TIMEOUT = 5.0


class ReachabilityCheck(Protocol):
    """Something that can prove Trellis answers: ``TrellisClient``."""

    async def check(self, *, identity: str | None = None) -> None:
        """Open (or reuse) an authenticated socket and ping it; raise when Trellis is unusable."""


class TrellisLists(Protocol):
    """What Trellis offers, over REST: ``TrellisRest``."""

    async def list_integrations(self, token: str) -> tuple[Integration, ...]:
        """The databases the token's member may query."""

    async def list_models(self, token: str) -> ModelList:
        """The models on offer and Trellis's default."""


class SlackSeam(Protocol):
    """The two Slack calls the command makes: ``SlackIO``."""

    async def user(self, user_id: str, *, fresh: bool = False) -> UserInfo | None:
        """``users.info`` (``fresh``: not from the cache); None when it failed."""

    async def respond(self, response_url: str, body: Rendered) -> bool:
        """Answer the command privately through its ``response_url``."""


class Commands:
    """Runs ``/trellis`` subcommands and answers through the command's ``response_url``.

    Choices made here (Slack's and Trellis's docs leave them open):

    * ``help`` needs no I/O, so it is the ack itself; everything else is acked at once and answered
      through ``response_url`` (ephemeral), so a slow Trellis never breaks Slack's 3-second limit.
    * Everything but ``help`` follows the rules for asking in that channel (``bot/access.py``), so
      the command cannot reveal what its user could not ask about.
    * Who may change a channel's integration or model is looked up afresh with ``users.info`` on
      every command (never cached): someone who stopped being an admin loses the right at once.
      When the lookup fails, the command does nothing.
    * An id is accepted only when Trellis lists it; when the list cannot be fetched the change is
      refused and nothing is saved. A new setting applies to new threads; threads already started
      keep the chat (and so the database and model) they began with.
    """

    def __init__(
        self,
        *,
        slack: SlackSeam,
        store: Store,
        rest: TrellisLists,
        tokens: TokenProvider,
        trellis: ReachabilityCheck,
        settings: Settings,
        access: Access,
        bot: BotIdentity,
        status_timeout: float = STATUS_TIMEOUT,
    ) -> None:
        self._slack = slack
        self._store = store
        self._rest = rest
        self._tokens = tokens
        self._trellis = trellis
        self._settings = settings
        self._access = access
        self._bot = bot
        self._status_timeout = status_timeout

    def immediate(self, payload: Mapping[str, Any]) -> Rendered | None:
        """The answer to put in the ack itself when it needs no I/O (help); else None."""
        command = parse(parse_slash_command(payload).text)
        if isinstance(command, Help):
            return help_reply(self._bot.user_id, self._settings.follow_ups, command.unknown)
        return None

    async def run(self, payload: Mapping[str, Any]) -> None:
        """Answer the command through its ``response_url``; never raises."""
        command = parse_slash_command(payload)
        with log_context(channel=command.channel_id):
            answer = await self.answer(command)
            if command.response_url is None:
                log.warning("a /trellis command without a response_url could not be answered")
                return
            await self._slack.respond(command.response_url, answer)

    async def answer(self, command: SlashCommand) -> Rendered:
        """What to tell the person who ran the command."""
        sub = parse(command.text)
        if isinstance(sub, Help):
            return help_reply(self._bot.user_id, self._settings.follow_ups, sub.unknown)
        channel = command.channel_id
        try:
            asker = await self._slack.user(command.user_id, fresh=True)
            if asker is None:
                return note(NO_PROFILE)
            refused = refusal(
                self._access,
                user_id=asker.user_id,
                user_team_id=asker.team_id,
                bot_team_id=self._bot.team_id,
                channel_id=channel,
                is_dm=command.is_dm,
            )
            if refused is not None:
                log.info("/trellis from %s refused: %s", asker.user_id, refused.name)
                return note(refused.reason)
            if isinstance(sub, Status):
                return await self._status(asker, channel)
            if isinstance(sub, ChooseIntegration):
                return await self._integration(asker, channel, sub.choice)
            return await self._model(asker, channel, sub.choice)
        except TrellisSlackError as exc:
            log.warning("/trellis %s failed: %s", type(sub).__name__, exc)
            return note(f"That did not work: {exc}")
        except Exception:
            log.exception("/trellis %s failed unexpectedly", type(sub).__name__)
            return note("Something went wrong on my side. Please try again.")

    # -- who may do what --

    def _may_change(self, asker: UserInfo) -> bool:
        return may_change_settings(
            self._access,
            user_id=asker.user_id,
            user_team_id=asker.team_id,
            bot_team_id=self._bot.team_id,
            is_workspace_admin=asker.is_admin,
        )

    def _identity(self, asker: UserInfo) -> str | None:
        if not self._settings.per_user_identity:
            return None
        if asker.email is None:
            raise _NoEmail
        return asker.email

    async def _authorized(self, asker: UserInfo, call: Callable[[str], Awaitable[T]]) -> T:
        """Call Trellis's REST API as the asker (or with the shared token); once more if refused."""
        return await with_token(self._tokens, self._identity(asker), call)

    # -- status --

    async def _status(self, asker: UserInfo, channel: str) -> Rendered:
        chosen = await self._store.channel_settings(self._bot.team_id, channel)
        defaults = self._settings
        try:
            identity = self._identity(asker)
        except _NoEmail:
            return note(NO_EMAIL)
        problem = await self._reachability(identity)
        names: dict[str, str] = {}
        if problem is None:
            names = await self._integration_names(asker)
        integration = source(
            chosen.integration_id if chosen else None,
            defaults.trellis_integration_id,
            "TRELLIS_INTEGRATION_ID",
        )
        model = source(chosen.model if chosen else None, defaults.trellis_model, "TRELLIS_MODEL")
        return status_reply(integration, model, names, problem)

    async def _reachability(self, identity: str | None) -> str | None:
        """None when Trellis connected, signed in and answered a ping in time; else the problem."""
        try:
            async with asyncio.timeout(self._status_timeout):
                await self._trellis.check(identity=identity)
        except TimeoutError:
            return f"It did not answer within {self._status_timeout:g} seconds."
        except TrellisError as exc:
            log.info("status: Trellis check failed: %s", exc)
            return explain_error(exc)
        return None

    async def _integration_names(self, asker: UserInfo) -> dict[str, str]:
        """Integration names by id, for a friendlier status; empty when they cannot be had."""
        try:
            async with asyncio.timeout(self._status_timeout):
                found = await self._authorized(asker, self._rest.list_integrations)
        except (TimeoutError, TrellisError) as exc:
            log.info("status: no integration names: %s", exc)
            return {}
        return {item.id: item.display_name for item in found}

    # -- integration and model --

    async def _integration(self, asker: UserInfo, channel: str, choice: str | None) -> Rendered:
        if choice is not None and not self._may_change(asker):
            return note(who_may_change(self._access.admin_users, "database", "integration <id>"))
        if choice is not None and choice.lower() in RESET_WORDS:
            await self._save(channel, integration_id=None)
            default = self._settings.trellis_integration_id
            what = f"`{code(default)}`" if default else "Trellis's default"
            log.info("%s reset the integration of %s", asker.user_id, channel)
            return note(
                f"New questions in this channel will use the bot's default database ({what})."
            )
        try:
            integrations = await self._authorized(asker, self._rest.list_integrations)
        except _NoEmail:
            return note(NO_EMAIL)
        except TrellisError as exc:
            return note(f"I could not get the list of databases from Trellis. {explain_error(exc)}")
        if choice is None:
            lines = ["*Databases you can ask about*", *integration_lines(integrations)]
            lines.append(f"Set this channel's with `{COMMAND} integration <id>`.")
            return reply(lines, fallback="Databases you can ask about")
        found = next((item for item in integrations if item.id == choice), None)
        if found is None:
            lines = [
                f":warning: Trellis has no database `{code(choice[:MAX_ECHO])}` that you can "
                "query, so nothing was changed. These are the ones it lists:",
                *integration_lines(integrations),
            ]
            return reply(lines, fallback="Unknown database")
        await self._save(channel, integration_id=found.id)
        log.info("%s set the integration of %s to %s", asker.user_id, channel, found.id)
        return note(
            f"New questions in this channel will use *{escape_mrkdwn(found.display_name)}* "
            f"(`{code(found.id)}`). Threads already started keep their database.",
            emoji=":white_check_mark:",
        )

    async def _model(self, asker: UserInfo, channel: str, choice: str | None) -> Rendered:
        if choice is not None and not self._may_change(asker):
            return note(who_may_change(self._access.admin_users, "model", "model <id>"))
        if choice is not None and choice.lower() in RESET_WORDS:
            await self._save(channel, model=None)
            default = self._settings.trellis_model
            what = f"`{code(default)}`" if default else "Trellis's default"
            log.info("%s reset the model of %s", asker.user_id, channel)
            return note(f"New questions in this channel will use the bot's default model ({what}).")
        try:
            models = await self._authorized(asker, self._rest.list_models)
        except _NoEmail:
            return note(NO_EMAIL)
        except TrellisError as exc:
            return note(f"I could not get the list of models from Trellis. {explain_error(exc)}")
        if choice is None:
            lines = ["*Models on offer*", *model_lines(models)]
            lines.append(f"Set this channel's with `{COMMAND} model <id>`.")
            return reply(lines, fallback="Models on offer")
        found = next((model for model in models.models if model.model_id == choice), None)
        if found is None:
            lines = [
                f":warning: Trellis offers no model `{code(choice[:MAX_ECHO])}`, so nothing "
                "was changed. These are the ones it lists:",
                *model_lines(models),
            ]
            return reply(lines, fallback="Unknown model")
        await self._save(channel, model=found.model_id)
        log.info("%s set the model of %s to %s", asker.user_id, channel, found.model_id)
        return note(
            f"New questions in this channel will use `{code(found.model_id)}`. "
            "Threads already started keep their model.",
            emoji=":white_check_mark:",
        )

    async def _save(self, channel: str, **change: str | None) -> None:
        """Change one of the channel's settings, keeping the other."""
        team = self._bot.team_id
        current = await self._store.channel_settings(team, channel)
        integration = current.integration_id if current else None
        model = current.model if current else None
        await self._store.set_channel_settings(
            ChannelSettings(
                team_id=team,
                channel_id=channel,
                integration_id=change.get("integration_id", integration),
                model=change.get("model", model),
            )
        )


class _NoEmail(Exception):
    """Per-user mode, and Slack shows no e-mail address for the asker."""
