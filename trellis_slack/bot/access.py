"""Who may ask the bot where, and who may change a channel's settings: one pure rule for every surface.

The rule (questions, the ``/trellis`` command and the App Home all use it):

* **Asking** is governed only by ``ALLOW_EXTERNAL_USERS``, ``ALLOWED_USERS`` and
  ``ALLOWED_CHANNELS``, checked in that order:

  1. someone from another workspace (Slack Connect) is refused unless ``ALLOW_EXTERNAL_USERS``;
  2. someone ``ALLOWED_USERS`` leaves out is refused, wherever they come from;
  3. a channel (or DM) ``ALLOWED_CHANNELS`` leaves out is refused.

  Being an admin changes none of this: a workspace admin or someone in ``TRELLIS_ADMIN_USERS``
  who is not in ``ALLOWED_USERS`` may not ask.
* **Changing a channel's settings** (``/trellis integration <id>``, ``/trellis model <id>``) is for
  people in ``TRELLIS_ADMIN_USERS`` and for admins and owners of this workspace (an admin of
  another workspace is not an admin here). Every ``/trellis`` subcommand but ``help`` first
  follows the rule for asking in that channel, so the command never shows what its user could not
  ask about: an admin must also be allowed to ask there to change anything.

The refusals are worded once, here (:class:`Refusal`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trellis_slack.settings import Settings

__all__ = ["Access", "Refusal", "may_change_settings", "person_refusal", "refusal"]


@dataclass(frozen=True, slots=True)
class Access:
    """Who may ask, and where (plus two settings the bridge reads alongside)."""

    allowed_channels: frozenset[str] | None = None
    allowed_users: frozenset[str] | None = None
    allow_external_users: bool = False
    follow_ups: str = "all"
    per_user_identity: bool = False
    #: ``TRELLIS_ADMIN_USERS``: may change channel settings (not a licence to ask).
    admin_users: frozenset[str] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        """The access rules a running bot reads from its settings."""
        return cls(
            allowed_channels=settings.allowed_channels,
            allowed_users=settings.allowed_users,
            allow_external_users=settings.allow_external_users,
            follow_ups=settings.follow_ups,
            per_user_identity=settings.per_user_identity,
            admin_users=settings.admin_users,
        )


class Refusal(StrEnum):
    """Why someone may not ask; the value is what the author of a refused question is told."""

    EXTERNAL = "Sorry, I can only answer people from this workspace. Your question was not sent to Trellis."
    NOT_LISTED = "Sorry, you are not on the list of people who can ask me questions."
    CHANNEL = "Sorry, I am not set up to answer questions in this channel."
    DM = (
        "Sorry, I am not set up to answer direct messages here: mention me in one of the "
        "channels I answer in."
    )

    @property
    def reason(self) -> str:
        """The first sentence: what is wrong, for surfaces other than a question (``/trellis``)."""
        first = self.value.split(". ", 1)[0]
        return first if first.endswith(".") else f"{first}."


def _external(user_team_id: str | None, bot_team_id: str) -> bool:
    """From another workspace; an unknown team counts as ours (Slack leaves it out for our own)."""
    return bool(user_team_id) and user_team_id != bot_team_id


def _listed(user_id: str, users: Collection[str] | None) -> bool:
    return users is not None and user_id in users


def person_refusal(
    access: Access, *, user_id: str, user_team_id: str | None, bot_team_id: str
) -> Refusal | None:
    """Why this person may not ask anywhere (workspace, ``ALLOWED_USERS``); None when they may."""
    if _external(user_team_id, bot_team_id) and not access.allow_external_users:
        return Refusal.EXTERNAL
    if access.allowed_users is not None and user_id not in access.allowed_users:
        return Refusal.NOT_LISTED
    return None


def refusal(
    access: Access,
    *,
    user_id: str,
    user_team_id: str | None,
    bot_team_id: str,
    channel_id: str,
    is_dm: bool,
) -> Refusal | None:
    """Why this person may not ask in this channel or DM, in words; None when they may."""
    found = person_refusal(
        access, user_id=user_id, user_team_id=user_team_id, bot_team_id=bot_team_id
    )
    if found is not None:
        return found
    if access.allowed_channels is not None and channel_id not in access.allowed_channels:
        return Refusal.DM if is_dm else Refusal.CHANNEL
    return None


def may_change_settings(
    access: Access,
    *,
    user_id: str,
    user_team_id: str | None,
    bot_team_id: str,
    is_workspace_admin: bool,
) -> bool:
    """Whether this person may change a channel's database or model (given they may ask there).

    ``is_workspace_admin`` comes from a fresh ``users.info``; an admin of another workspace is
    not one here.
    """
    if _listed(user_id, access.admin_users):
        return True
    return is_workspace_admin and not _external(user_team_id, bot_team_id)
