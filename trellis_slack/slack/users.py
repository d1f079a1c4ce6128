"""Who someone is in Slack, parsed once from ``users.info`` and ``auth.test`` answers (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trellis_slack.slack.events import BotIdentity

__all__ = ["UserInfo", "bot_identity", "parse_user"]


@dataclass(frozen=True, slots=True)
class UserInfo:
    """What the bot needs to know about a Slack user."""

    user_id: str
    name: str
    email: str | None
    #: The workspace the account belongs to (another one for Slack Connect users).
    team_id: str | None
    is_bot: bool
    #: An admin or owner of the account's own workspace, and not deactivated. Whether that is
    #: *this* workspace is for the access rules to say (``bot/access.py``).
    is_admin: bool


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_user(user_id: str, user: object) -> UserInfo | None:
    """The ``user`` object of a ``users.info`` answer; None when it is not one."""
    if not isinstance(user, Mapping):
        return None
    profile = user.get("profile")
    profile = profile if isinstance(profile, Mapping) else {}
    name = (
        _text(profile.get("display_name"))
        or _text(profile.get("real_name"))
        or _text(user.get("real_name"))
        or _text(user.get("name"))
        or user_id
    )
    admin = user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")
    return UserInfo(
        user_id=user_id,
        name=name,
        email=_text(profile.get("email")),
        team_id=_text(user.get("team_id")),
        is_bot=bool(user.get("is_bot")),
        is_admin=bool(admin) and not user.get("deleted"),
    )


def bot_identity(auth: Mapping[str, Any]) -> BotIdentity:
    """Who the app is, from an ``auth.test`` answer."""
    return BotIdentity(
        user_id=str(auth.get("user_id") or ""),
        bot_id=str(auth.get("bot_id") or ""),
        team_id=str(auth.get("team_id") or ""),
    )
