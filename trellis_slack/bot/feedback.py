"""Votes on answers: one per person per answer, sent to Trellis as the chat's owner, acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from trellis_slack.errors import (
    TrellisAPIError,
    TrellisAuthError,
    TrellisError,
    TrellisRateLimited,
    TrellisSlackError,
    TrellisUnavailable,
)
from trellis_slack.slack.blocks import POSITIVE, feedback_vote, question_at
from trellis_slack.store.base import Store
from trellis_slack.trellis.rest import Rating
from trellis_slack.trellis.tokens import TokenProvider, with_token

__all__ = [
    "ALREADY",
    "BROKEN",
    "CHANGED",
    "NO_ANSWER",
    "THANKS",
    "UNREADABLE",
    "Feedback",
    "FeedbackSender",
    "OwnerIdentities",
    "refusal",
]

log = logging.getLogger(__name__)

_HELPED = {"positive": "helped", "negative": "didn't help"}

#: What the clicker is told, only to them (keyed by the rating).
THANKS = {r: f"Thanks — I told Trellis this answer {w}." for r, w in _HELPED.items()}
CHANGED = {
    r: f"Thanks — I changed your vote: I told Trellis this answer {w}." for r, w in _HELPED.items()
}
ALREADY = {
    r: f"You already told me this answer {w}; Trellis has your vote." for r, w in _HELPED.items()
}
NO_ANSWER = (
    "I could not pass your vote on: I no longer know which Trellis answer this is "
    "(the question may have been edited or deleted)."
)
UNREADABLE = "I could not read that vote, so I did not pass it on."
BROKEN = "Something went wrong while passing your vote on, so it was not counted. Try again."


class Ephemerals(Protocol):
    """Something that shows one person a message only they see (`SlackIO`)."""

    async def ephemeral(
        self, channel: str, user: str, text: str, thread_ts: str | None
    ) -> bool: ...


class FeedbackSender(Protocol):
    """Something that rates a Trellis assistant message (`TrellisRest`)."""

    async def feedback(
        self, token: str, message_id: str, rating: Rating, *, note: str | None = None
    ) -> None: ...


class OwnerIdentities(Protocol):
    """Who a conversation's owner is in Trellis (`AnswerQueue.identity_of`)."""

    async def identity_of(self, owner_id: str) -> str | None: ...


def refusal(exc: TrellisError) -> str:
    """Plain words for a vote Trellis did not take; the vote is then not counted."""
    if isinstance(exc, TrellisAuthError):
        return (
            "Trellis did not accept the bot's credentials, so your vote was not counted. "
            "An admin needs to check `TRELLIS_TOKEN` / `TRELLIS_API_KEY`."
        )
    if isinstance(exc, TrellisRateLimited):
        after = f" in {exc.retry_after:.0f} s" if exc.retry_after else " in a moment"
        return f"Trellis is busy right now, so your vote was not counted. Try again{after}."
    if isinstance(exc, TrellisUnavailable):
        return "I could not reach Trellis, so your vote was not counted. Try again in a moment."
    if isinstance(exc, TrellisAPIError) and exc.status == 404:
        return (
            "Trellis could not take your vote: it does not know this answer (it may have been "
            "deleted there, or this Trellis does not take feedback)."
        )
    if isinstance(exc, TrellisAPIError) and exc.status is not None:
        return f"Trellis refused your vote (HTTP {exc.status}), so it was not counted."
    return f"Trellis could not take your vote, so it was not counted: {exc}"


@dataclass(slots=True)
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Feedback:
    """Handles clicks on an answer's feedback buttons (`blocks.feedback`).

    Each person has one vote per answer, kept in the store and changeable. A new or changed vote
    is sent to Trellis (``PATCH /v1/chats/messages/{id}/feedback``) under the identity that owns
    the chat, not the clicker's: the answer is a message of the owner's chat. The same vote again
    is acknowledged without asking Trellis twice. When Trellis refuses, the person is told why
    and their earlier vote (or none) is put back, so the store holds what Trellis accepted.
    Trellis keeps one rating per message, so with several voters it holds the latest vote.
    """

    def __init__(
        self,
        *,
        slack: Ephemerals,
        store: Store,
        rest: FeedbackSender,
        tokens: TokenProvider,
        identities: OwnerIdentities,
    ) -> None:
        self.slack = slack
        self.store = store
        self.rest = rest
        self.tokens = tokens
        self.identities = identities
        self._turns: dict[tuple[str, str, str], _Turn] = {}

    async def on_click(
        self,
        *,
        channel_id: str,
        message_ts: str | None,
        user_id: str,
        value: str,
        thread_ts: str | None,
    ) -> None:
        """A click on a feedback button; ``value`` is the chosen button's (`blocks.feedback`)."""
        vote = feedback_vote(value)
        if vote is None:
            log.warning("a feedback click on %s/%s had no vote in it", channel_id, message_ts)
            await self.slack.ephemeral(channel_id, user_id, UNREADABLE, thread_ts)
            return
        rating: Rating = "positive" if vote[0] == POSITIVE else "negative"
        # An answer in the asker's DM names its question's channel (`blocks.question_ref`).
        asked_in, question_ts = question_at(vote[1], channel_id)
        try:
            async with self._one_at_a_time(asked_in, question_ts, user_id):
                reply = await self._vote(asked_in, question_ts, user_id, rating)
        except TrellisSlackError as exc:
            log.warning("a vote on %s/%s failed: %s", asked_in, question_ts, exc)
            reply = BROKEN
        except Exception:
            log.exception("a vote on %s/%s failed", asked_in, question_ts)
            reply = BROKEN
        await self.slack.ephemeral(channel_id, user_id, reply, thread_ts)

    async def _vote(self, channel_id: str, question_ts: str, user_id: str, rating: Rating) -> str:
        """Record the vote and send it to Trellis; what to tell the clicker."""
        store = self.store
        question = await store.question(channel_id, question_ts)
        message_id = await store.answer_message(channel_id, question_ts)
        if question is None or message_id is None:
            return NO_ANSWER
        previous = await store.record_vote(channel_id, question_ts, user_id, rating)
        if previous == rating:
            return ALREADY[rating]
        try:
            identity = await self.identities.identity_of(question.owner_id)

            async def send(token: str) -> None:
                await self.rest.feedback(token, message_id, rating)

            await with_token(self.tokens, identity, send)
        except BaseException as exc:
            # Trellis did not take it (or we were cut short): keep what Trellis last accepted.
            await store.record_vote(channel_id, question_ts, user_id, previous)
            if isinstance(exc, TrellisError):
                log.info("Trellis refused a vote on %s/%s: %s", channel_id, question_ts, exc)
                return refusal(exc)
            raise
        log.info("vote %s on %s/%s sent to Trellis", rating, channel_id, question_ts)
        return THANKS[rating] if previous is None else CHANGED[rating]

    @contextlib.asynccontextmanager
    async def _one_at_a_time(
        self, channel_id: str, question_ts: str, user_id: str
    ) -> AsyncIterator[None]:
        """One vote at a time per person and answer (two quick clicks are handled in order)."""
        key = (channel_id, question_ts, user_id)
        turn = self._turns.setdefault(key, _Turn())
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if turn.users == 0:
                del self._turns[key]
