"""Trellis's limits shared with other replicas: one member's sockets, new chats and uploads.

Trellis allows 3 sockets per token and 20 new chats a minute; several replicas of the bridge
with one token must stay within them together. The pool and the client ask a `FleetLimits`
(implemented over the store by the glue, `bot.fleet.StoreLimits`) before they open a socket or
create a chat. Keys name a Trellis member, never a token: `member_key` hashes the token's
subject (the member), so a token minted afresh for the same person counts as the same.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from trellis_slack.trellis.tokens import inspect_jwt

__all__ = ["FleetLimits", "member_key"]


def member_key(token: str) -> str:
    """A key for the member ``token`` belongs to: a hash (the token itself is a secret)."""
    try:
        subject = inspect_jwt(token).subject
    except ValueError:
        subject = None
    return hashlib.sha256((f"sub:{subject}" if subject else token).encode()).hexdigest()[:24]


class FleetLimits(Protocol):
    """Trellis's limits over every replica."""

    #: Seconds between looks for a free socket slot while every slot is taken.
    poll: float

    async def take_socket(self, member: str, limit: int, *, held: int) -> int | None:
        """One of the member's ``limit`` socket slots; None when other replicas hold them all.

        ``held``: sockets of the member this replica has open already. With none, the others
        are asked to give up an idle one (every replica may answer); with some, it waits for its
        own, so replicas do not take sockets from each other in turn.
        """

    async def give_socket(self, member: str, slot: int) -> None:
        """Give a socket slot back (its socket closed)."""

    async def rate(self, what: str, member: str, per_minute: int) -> float:
        """Reserve one ``what`` call ("chats", "uploads") within ``per_minute`` for ``member``;
        the seconds to wait before making it."""
