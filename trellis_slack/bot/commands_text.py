"""What ``/trellis`` understands and says: its subcommands parsed, and its replies worded (pure)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TypeVar

from trellis_slack.settings import FollowUps
from trellis_slack.slack.blocks import Block, Rendered
from trellis_slack.slack.markdown import escape_mrkdwn
from trellis_slack.trellis.rest import Integration, Model, ModelList

T = TypeVar("T")

#: The slash command the app registers (``manifest.yml`` declares the same name).
COMMAND = "/trellis"
#: Words that put a channel back on the bot's default integration or model.
RESET_WORDS = frozenset({"default", "reset"})
#: Longest list shown in one answer (a workspace with more integrations sees the first ones).
_MAX_LISTED = 40
#: Longest piece of the user's own text quoted back.
MAX_ECHO = 80
_SECTION_LIMIT = 3000

#: Per-user mode, and Slack shows no e-mail address for the person.
NO_EMAIL = (
    "Sorry, I need your e-mail address from your Slack profile to ask Trellis as you, "
    "and I cannot see one."
)
#: ``users.info`` failed, so the command did nothing.
NO_PROFILE = (
    "I could not look up your Slack profile just now, so I did nothing. "
    "Please try again in a minute."
)


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
    return reply(lines, fallback="How to use Trellis in Slack")


def _echo(text: str) -> str:
    """The user's own words, shortened and made safe to put back into mrkdwn."""
    short = text if len(text) <= MAX_ECHO else text[: MAX_ECHO - 1] + "…"
    return escape_mrkdwn(short.replace("`", "'"))


def reply(lines: Sequence[str], *, fallback: str) -> Rendered:
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
        return f"• *{escape_mrkdwn(found.display_name)}*{kind}: `{code(found.id)}`"

    return _listed(integrations, line)


def model_lines(models: ModelList) -> list[str]:
    """The models as bullets: id, name, description, and which one Trellis uses by default."""
    if not models.models:
        return ["_Trellis lists no models._"]

    def line(model: Model) -> str:
        name = escape_mrkdwn(model.display_name)
        text = f"• `{code(model.model_id)}`" + (
            f": {name}" if model.display_name != model.model_id else ""
        )
        if model.description:
            text += f" — {escape_mrkdwn(model.description)}"
        if model.model_id == models.default:
            text += " _(Trellis's default)_"
        return text

    return _listed(models.models, line)


def code(text: str) -> str:
    """Text for inside a `code span`: no backticks, mrkdwn escaped."""
    return escape_mrkdwn(text.replace("`", "'"))


def note(text: str, *, emoji: str = ":information_source:") -> Rendered:
    """One line of mrkdwn, with an emoji in front."""
    return reply([f"{emoji} {text}"], fallback=text[:300])


def who_may_change(admin_users: Collection[str] | None, what: str, example: str) -> str:
    """The refusal for someone who may not change a channel's ``what``: who may, and how."""
    admins = sorted(admin_users or ())
    who = "workspace admins and owners"
    if admins:
        named = ", ".join(f"<@{user}>" for user in admins[:10])
        more = f" and {len(admins) - 10} more" if len(admins) > 10 else ""
        who += f", and {named}{more}"
    return (
        f"Sorry, only {who} can change the {what} for this channel. "
        f"Ask one of them to run `{COMMAND} {example}`."
    )


@dataclass(frozen=True, slots=True)
class Chosen:
    """A setting that applies, and where it comes from, in words."""

    value: str | None
    where: str


def source(channel_value: str | None, default: str | None, variable: str) -> Chosen:
    """Which value applies and where it comes from, in words."""
    if channel_value is not None:
        return Chosen(channel_value, "set for this channel")
    if default is not None:
        return Chosen(default, f"the bot's default (`{variable}`)")
    return Chosen(None, "Trellis default")


def status_reply(
    integration: Chosen, model: Chosen, names: dict[str, str], problem: str | None
) -> Rendered:
    """The answer to ``status``: the channel's database and model, and whether Trellis answers."""
    lines = ["*Trellis in this channel*"]
    if integration.value is None:
        lines.append(
            "• Database: none chosen — questions may fail with “No datasource connected” "
            f"until an admin runs `{COMMAND} integration <id>`"
        )
    else:
        name = names.get(integration.value)
        shown = f"*{escape_mrkdwn(name)}* (`{code(integration.value)}`)" if name else None
        lines.append(f"• Database: {shown or f'`{code(integration.value)}`'}, {integration.where}")
    if model.value is None:
        lines.append("• Model: Trellis default (none chosen)")
    else:
        lines.append(f"• Model: `{code(model.value)}`, {model.where}")
    if problem is None:
        lines.append(
            "• :white_check_mark: Trellis is reachable: "
            "I connected, signed in and it answered a ping."
        )
    else:
        lines.append(f"• :x: Trellis is not usable right now. {problem}")
    lines.append("_New questions here use these settings; threads already started keep theirs._")
    return reply(lines, fallback="Trellis in this channel")
