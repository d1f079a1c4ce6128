"""The ``/trellis`` slash command: parse a subcommand, check who may run it, answer ephemerally."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from trellis_slack.errors import TrellisError, TrellisSlackError
from trellis_slack.logs import log_context
from trellis_slack.settings import FollowUps, Settings
from trellis_slack.slack.blocks import Block, Rendered, explain_error
from trellis_slack.slack.events import BotIdentity
from trellis_slack.slack.markdown import escape_mrkdwn
from trellis_slack.store.sqlite import ChannelSettings, Store
from trellis_slack.trellis.rest import Integration, Model, ModelList, TrellisRest
from trellis_slack.trellis.tokens import TokenProvider, with_token

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The slash command the app registers (``manifest.yml`` declares the same name).
COMMAND = "/trellis"
#: Seconds ``status`` waits for Trellis to connect, sign in and answer a ping.
STATUS_TIMEOUT = 5.0
#: Words that put a channel back on the bot's default integration or model.
RESET_WORDS = frozenset({"default", "reset"})
#: Longest list shown in one answer (a workspace with more integrations sees the first ones).
_MAX_LISTED = 40
#: Longest piece of the user's own text quoted back.
_MAX_ECHO = 80
_SECTION_LIMIT = 3000


# --- what was asked (pure) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Help:
    """``help``, empty text, or a subcommand the bot does not know (``unknown``)."""

    unknown: str | None = None


@dataclass(frozen=True, slots=True)
class Status:
    """``status``: this channel's integration and model, and whether Trellis is reachable."""


@dataclass(frozen=True, slots=True)
class ChooseIntegration:
    """``integration [id]``: list the integrations (``choice`` None) or set this channel's."""

    choice: str | None


@dataclass(frozen=True, slots=True)
class ChooseModel:
    """``model [name]``: list the models (``choice`` None) or set this channel's."""

    choice: str | None


Subcommand = Help | Status | ChooseIntegration | ChooseModel

_INTEGRATION_WORDS = frozenset({"integration", "integrations", "database", "db"})
_MODEL_WORDS = frozenset({"model", "models"})
_QUOTES = "`'\"\u2018\u2019\u201c\u201d \t\n"


def parse(text: str) -> Subcommand:
    """What ``/trellis <text>`` asks for; anything unrecognised is a request for help."""
    readable = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    parts = readable.split(maxsplit=1)
    word = parts[0].lower() if parts else ""
    # Ids pasted from the list may keep the code formatting or quotes they were shown in.
    argument = (parts[1] if len(parts) > 1 else "").strip(_QUOTES).strip() or None
    if word in ("", "help", "?"):
        return Help()
    if word == "status":
        return Status()
    if word in _INTEGRATION_WORDS:
        return ChooseIntegration(argument)
    if word in _MODEL_WORDS:
        return ChooseModel(argument)
    return Help(unknown=word)


def usage_lines(bot_user_id: str, follow_ups: FollowUps) -> list[str]:
    """How to ask the bot, one mrkdwn bullet per line (shared by ``help`` and the Home tab)."""
    follow = (
        "reply in the thread, no mention needed: I keep the conversation's context"
        if follow_ups == "all"
        else f"reply in the thread and mention <@{bot_user_id}>: I keep the conversation's context"
    )
    return [
        f"• *In a channel*: mention <@{bot_user_id}> with your question; I answer in a thread.",
        "• *In a direct message*: just write your question.",
        f"• *Follow-ups*: {follow}.",
        "• *Stop* ends an answer in progress; *Retry* asks again when an answer failed.",
        "• *Edit* your question and I answer it afresh; *delete* it and I remove my answer.",
    ]


def command_lines() -> list[str]:
    """The subcommands, one mrkdwn bullet per line."""
    return [
        f"• `{COMMAND} status`: this channel's database and model, and whether Trellis is reachable.",
        f"• `{COMMAND} integration`: the databases you can ask about; "
        f"`{COMMAND} integration <id>` sets this channel's (admins).",
        f"• `{COMMAND} model`: the models on offer; `{COMMAND} model <id>` sets this channel's (admins).",
        f"• `{COMMAND} integration default` / `{COMMAND} model default`: back to the bot's default.",
        f"• `{COMMAND} help`: this message.",
    ]


def help_reply(bot_user_id: str, follow_ups: FollowUps, unknown: str | None = None) -> Rendered:
    """The answer to ``help`` (and to anything the bot does not understand)."""
    lines: list[str] = []
    if unknown is not None:
        lines += [f"I don't know `{COMMAND} {_echo(unknown)}`. Here is what I can do.", ""]
    lines += ["*How to ask Trellis*", *usage_lines(bot_user_id, follow_ups), ""]
    lines += ["*Commands*", *command_lines()]
    return _reply(lines, fallback="How to use Trellis in Slack")


def _echo(text: str) -> str:
    """The user's own words, shortened and made safe to put back into mrkdwn."""
    short = text if len(text) <= _MAX_ECHO else text[: _MAX_ECHO - 1] + "…"
    return escape_mrkdwn(short.replace("`", "'"))


def _reply(lines: Sequence[str], *, fallback: str) -> Rendered:
    """Lines of mrkdwn as section blocks of at most 3,000 characters each."""
    sections: list[str] = []
    current = ""
    for line in lines:
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > _SECTION_LIMIT and current:
            sections.append(current)
            current = line[:_SECTION_LIMIT]
        else:
            current = candidate[:_SECTION_LIMIT]
    if current.strip():
        sections.append(current)
    blocks: tuple[Block, ...] = tuple(
        {"type": "section", "text": {"type": "mrkdwn", "text": text}} for text in sections[:50]
    )
    return Rendered(text=fallback, blocks=blocks)


def _listed(items: Sequence[T], line: Callable[[T], str]) -> list[str]:
    shown = [line(item) for item in items[:_MAX_LISTED]]
    if len(items) > _MAX_LISTED:
        shown.append(f"…and {len(items) - _MAX_LISTED} more.")
    return shown


def integration_lines(integrations: Sequence[Integration]) -> list[str]:
    """The integrations as bullets: name, type and the id to use."""
    if not integrations:
        return ["_Trellis lists no databases you can query._"]

    def line(found: Integration) -> str:
        kind = f" ({escape_mrkdwn(found.type)})" if found.type else ""
        return f"• *{escape_mrkdwn(found.display_name)}*{kind}: `{_code(found.id)}`"

    return _listed(integrations, line)


def model_lines(models: ModelList) -> list[str]:
    """The models as bullets: id, name, description, and which one Trellis uses by default."""
    if not models.models:
        return ["_Trellis lists no models._"]

    def line(model: Model) -> str:
        name = escape_mrkdwn(model.display_name)
        text = f"• `{_code(model.model_id)}`" + (
            f": {name}" if model.display_name != model.model_id else ""
        )
        if model.description:
            text += f" — {escape_mrkdwn(model.description)}"
        if model.model_id == models.default:
            text += " _(Trellis's default)_"
        return text

    return _listed(models.models, line)


def _code(text: str) -> str:
    """Text for inside a `code span`: no backticks, mrkdwn escaped."""
    return escape_mrkdwn(text.replace("`", "'"))


# --- who is asking --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Asker:
    """The person who ran the command, from a fresh ``users.info``."""

    user_id: str
    team_id: str | None
    email: str | None
    #: A workspace admin or owner (of the workspace the account belongs to).
    is_admin: bool


class ReachabilityCheck(Protocol):
    """Something that can prove Trellis answers: ``TrellisClient``."""

    async def check(self, *, identity: str | None = None) -> None:
        """Open (or reuse) an authenticated socket and ping it; raise when Trellis is unusable."""


# --- running a command (the shell) ---------------------------------------------------------------


class Commands:
    """Runs ``/trellis`` subcommands and answers through the command's ``response_url``.

    Choices made here (Slack's and Trellis's docs leave them open):

    * ``help`` needs no I/O, so it is the ack itself; everything else is acked at once and answered
      through ``response_url`` (ephemeral), so a slow Trellis never breaks Slack's 3-second limit.
    * Who may change a channel's integration or model is looked up afresh with ``users.info`` on
      every change (never cached): someone who stopped being an admin loses the right at once. A
      workspace admin or owner of *another* workspace (Slack Connect) is not an admin here; people
      in ``TRELLIS_ADMIN_USERS`` always are. When the lookup fails, the change is refused.
    * Everything but ``help`` follows the rules for questions: Slack Connect users (unless allowed),
      people outside ``ALLOWED_USERS`` and channels outside ``ALLOWED_CHANNELS`` are refused, so
      the command cannot reveal what those people could not ask about. People in
      ``TRELLIS_ADMIN_USERS`` pass ``ALLOWED_USERS`` and ``ALLOWED_CHANNELS``.
    * An id is accepted only when Trellis lists it; when the list cannot be fetched the change is
      refused and nothing is saved. A new setting applies to new threads; threads already started
      keep the chat (and so the database and model) they began with.
    """

    def __init__(
        self,
        *,
        client: AsyncWebClient,
        store: Store,
        rest: TrellisRest,
        tokens: TokenProvider,
        trellis: ReachabilityCheck,
        settings: Settings,
        bot: BotIdentity,
        status_timeout: float = STATUS_TIMEOUT,
    ) -> None:
        self._client = client
        self._store = store
        self._rest = rest
        self._tokens = tokens
        self._trellis = trellis
        self._settings = settings
        self._bot = bot
        self._status_timeout = status_timeout

    def immediate(self, payload: Mapping[str, Any]) -> Rendered | None:
        """The answer to put in the ack itself when it needs no I/O (help); else None."""
        command = parse(str(payload.get("text") or ""))
        if isinstance(command, Help):
            return help_reply(self._bot.user_id, self._settings.follow_ups, command.unknown)
        return None

    async def run(self, payload: Mapping[str, Any]) -> None:
        """Answer the command through its ``response_url``; never raises."""
        channel = str(payload.get("channel_id") or "")
        with log_context(channel=channel):
            reply = await self.answer(payload)
            await self._respond(payload.get("response_url"), reply)

    async def answer(self, payload: Mapping[str, Any]) -> Rendered:
        """What to tell the person who ran the command."""
        command = parse(str(payload.get("text") or ""))
        user_id = str(payload.get("user_id") or "")
        channel = str(payload.get("channel_id") or "")
        if isinstance(command, Help):
            return help_reply(self._bot.user_id, self._settings.follow_ups, command.unknown)
        try:
            asker = await self._asker(user_id)
            if asker is None:
                return _note(
                    "I could not look up your Slack profile just now, so I did nothing. "
                    "Please try again in a minute."
                )
            refusal = self._refusal(asker, channel)
            if refusal is not None:
                log.info("/trellis from %s refused: %s", user_id, refusal)
                return _note(refusal)
            if isinstance(command, Status):
                return await self._status(asker, channel)
            if isinstance(command, ChooseIntegration):
                return await self._integration(asker, channel, command.choice)
            return await self._model(asker, channel, command.choice)
        except TrellisSlackError as exc:
            log.warning("/trellis %s failed: %s", type(command).__name__, exc)
            return _note(f"That did not work: {exc}")
        except Exception:
            log.exception("/trellis %s failed unexpectedly", type(command).__name__)
            return _note("Something went wrong on my side. Please try again.")

    # -- who may do what --

    async def _asker(self, user_id: str) -> Asker | None:
        try:
            response = await self._client.users_info(user=user_id)
        except SlackApiError as exc:
            log.warning("Slack users.info failed: %s", exc.response.get("error", "unknown error"))
            return None
        except (TimeoutError, SlackClientError, OSError) as exc:
            log.warning("Slack users.info failed: %s", type(exc).__name__)
            return None
        user = response.get("user")
        if not isinstance(user, dict):
            return None
        profile = user.get("profile") or {}
        email = profile.get("email") if isinstance(profile, dict) else None
        team = user.get("team_id")
        return Asker(
            user_id=user_id,
            team_id=team if isinstance(team, str) and team else None,
            email=email if isinstance(email, str) and email else None,
            is_admin=bool(
                user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")
            )
            and not user.get("deleted"),
        )

    def _external(self, asker: Asker) -> bool:
        return asker.team_id is not None and asker.team_id != self._bot.team_id

    def _listed_admin(self, asker: Asker) -> bool:
        admins = self._settings.admin_users
        return admins is not None and asker.user_id in admins

    def _refusal(self, asker: Asker, channel: str) -> str | None:
        """Why this person may not use the command here, in words; None when they may."""
        settings = self._settings
        if self._external(asker) and not settings.allow_external_users:
            return "Sorry, I can only help people from this workspace."
        if self._listed_admin(asker):
            return None
        if settings.allowed_users is not None and asker.user_id not in settings.allowed_users:
            return "Sorry, you are not on the list of people who can ask me questions."
        if settings.allowed_channels is not None and channel not in settings.allowed_channels:
            return "Sorry, I am not set up to answer questions in this channel."
        return None

    def _may_change(self, asker: Asker) -> bool:
        return self._listed_admin(asker) or (asker.is_admin and not self._external(asker))

    def _who_may_change(self, what: str, example: str) -> str:
        admins = sorted(self._settings.admin_users or ())
        who = "workspace admins and owners"
        if admins:
            named = ", ".join(f"<@{user}>" for user in admins[:10])
            more = f" and {len(admins) - 10} more" if len(admins) > 10 else ""
            who += f", and {named}{more}"
        return (
            f"Sorry, only {who} can change the {what} for this channel. "
            f"Ask one of them to run `{COMMAND} {example}`."
        )

    def _identity(self, asker: Asker) -> str | None:
        if not self._settings.per_user_identity:
            return None
        if asker.email is None:
            raise _NoEmail
        return asker.email

    async def _authorized(self, asker: Asker, call: Callable[[str], Awaitable[T]]) -> T:
        """Call Trellis's REST API as the asker (or with the shared token); once more if refused."""
        return await with_token(self._tokens, self._identity(asker), call)

    # -- status --

    async def _status(self, asker: Asker, channel: str) -> Rendered:
        chosen = await self._store.channel_settings(self._bot.team_id, channel)
        defaults = self._settings
        try:
            identity = self._identity(asker)
        except _NoEmail:
            return _note(_NO_EMAIL)
        problem = await self._reachability(identity)
        names: dict[str, str] = {}
        if problem is None:
            names = await self._integration_names(asker)
        integration = _source(
            chosen.integration_id if chosen else None,
            defaults.trellis_integration_id,
            "TRELLIS_INTEGRATION_ID",
        )
        model = _source(chosen.model if chosen else None, defaults.trellis_model, "TRELLIS_MODEL")
        lines = ["*Trellis in this channel*"]
        if integration.value is None:
            lines.append(
                "• Database: none chosen — questions may fail with “No datasource connected” "
                f"until an admin runs `{COMMAND} integration <id>`"
            )
        else:
            name = names.get(integration.value)
            shown = f"*{escape_mrkdwn(name)}* (`{_code(integration.value)}`)" if name else None
            lines.append(
                f"• Database: {shown or f'`{_code(integration.value)}`'}, {integration.where}"
            )
        if model.value is None:
            lines.append("• Model: Trellis default (none chosen)")
        else:
            lines.append(f"• Model: `{_code(model.value)}`, {model.where}")
        if problem is None:
            lines.append(
                "• :white_check_mark: Trellis is reachable: "
                "I connected, signed in and it answered a ping."
            )
        else:
            lines.append(f"• :x: Trellis is not usable right now. {problem}")
        lines.append(
            "_New questions here use these settings; threads already started keep theirs._"
        )
        return _reply(lines, fallback="Trellis in this channel")

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

    async def _integration_names(self, asker: Asker) -> dict[str, str]:
        """Integration names by id, for a friendlier status; empty when they cannot be had."""
        try:
            async with asyncio.timeout(self._status_timeout):
                found = await self._authorized(asker, self._rest.list_integrations)
        except (TimeoutError, TrellisError) as exc:
            log.info("status: no integration names: %s", exc)
            return {}
        return {item.id: item.display_name for item in found}

    # -- integration and model --

    async def _integration(self, asker: Asker, channel: str, choice: str | None) -> Rendered:
        if choice is not None and not self._may_change(asker):
            return _note(self._who_may_change("database", "integration <id>"))
        if choice is not None and choice.lower() in RESET_WORDS:
            await self._save(channel, integration_id=None)
            default = self._settings.trellis_integration_id
            what = f"`{_code(default)}`" if default else "Trellis's default"
            log.info("%s reset the integration of %s", asker.user_id, channel)
            return _note(
                f"New questions in this channel will use the bot's default database ({what})."
            )
        try:
            integrations = await self._authorized(asker, self._rest.list_integrations)
        except _NoEmail:
            return _note(_NO_EMAIL)
        except TrellisError as exc:
            return _note(
                f"I could not get the list of databases from Trellis. {explain_error(exc)}"
            )
        if choice is None:
            lines = ["*Databases you can ask about*", *integration_lines(integrations)]
            lines.append(f"Set this channel's with `{COMMAND} integration <id>`.")
            return _reply(lines, fallback="Databases you can ask about")
        found = next((item for item in integrations if item.id == choice), None)
        if found is None:
            lines = [
                f":warning: Trellis has no database `{_code(choice[:_MAX_ECHO])}` that you can "
                "query, so nothing was changed. These are the ones it lists:",
                *integration_lines(integrations),
            ]
            return _reply(lines, fallback="Unknown database")
        await self._save(channel, integration_id=found.id)
        log.info("%s set the integration of %s to %s", asker.user_id, channel, found.id)
        return _note(
            f"New questions in this channel will use *{escape_mrkdwn(found.display_name)}* "
            f"(`{_code(found.id)}`). Threads already started keep their database.",
            emoji=":white_check_mark:",
        )

    async def _model(self, asker: Asker, channel: str, choice: str | None) -> Rendered:
        if choice is not None and not self._may_change(asker):
            return _note(self._who_may_change("model", "model <id>"))
        if choice is not None and choice.lower() in RESET_WORDS:
            await self._save(channel, model=None)
            default = self._settings.trellis_model
            what = f"`{_code(default)}`" if default else "Trellis's default"
            log.info("%s reset the model of %s", asker.user_id, channel)
            return _note(
                f"New questions in this channel will use the bot's default model ({what})."
            )
        try:
            models = await self._authorized(asker, self._rest.list_models)
        except _NoEmail:
            return _note(_NO_EMAIL)
        except TrellisError as exc:
            return _note(f"I could not get the list of models from Trellis. {explain_error(exc)}")
        if choice is None:
            lines = ["*Models on offer*", *model_lines(models)]
            lines.append(f"Set this channel's with `{COMMAND} model <id>`.")
            return _reply(lines, fallback="Models on offer")
        found = next((model for model in models.models if model.model_id == choice), None)
        if found is None:
            lines = [
                f":warning: Trellis offers no model `{_code(choice[:_MAX_ECHO])}`, so nothing "
                "was changed. These are the ones it lists:",
                *model_lines(models),
            ]
            return _reply(lines, fallback="Unknown model")
        await self._save(channel, model=found.model_id)
        log.info("%s set the model of %s to %s", asker.user_id, channel, found.model_id)
        return _note(
            f"New questions in this channel will use `{_code(found.model_id)}`. "
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

    # -- answering --

    async def _respond(self, response_url: object, reply: Rendered) -> None:
        if not isinstance(response_url, str) or not response_url:
            log.warning("a /trellis command without a response_url could not be answered")
            return
        webhook = AsyncWebhookClient(response_url, session=self._client.session, timeout=10)
        try:
            response = await webhook.send(
                text=reply.text, blocks=list(reply.blocks), response_type="ephemeral"
            )
        except (TimeoutError, aiohttp.ClientError, SlackClientError, OSError) as exc:
            log.warning("answering /trellis failed: %s", type(exc).__name__)
            return
        if response.status_code != 200:
            log.warning("answering /trellis failed: HTTP %d", response.status_code)


class _NoEmail(Exception):
    """Per-user mode, and Slack shows no e-mail address for the asker."""


_NO_EMAIL = (
    "Sorry, I need your e-mail address from your Slack profile to ask Trellis as you, "
    "and I cannot see one."
)


@dataclass(frozen=True, slots=True)
class _Chosen:
    value: str | None
    where: str


def _source(channel_value: str | None, default: str | None, variable: str) -> _Chosen:
    """Which value applies and where it comes from, in words."""
    if channel_value is not None:
        return _Chosen(channel_value, "set for this channel")
    if default is not None:
        return _Chosen(default, f"the bot's default (`{variable}`)")
    return _Chosen(None, "Trellis default")


def _note(text: str, *, emoji: str = ":information_source:") -> Rendered:
    return _reply([f"{emoji} {text}"], fallback=text[:300])
