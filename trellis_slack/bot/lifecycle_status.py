"""A question's statuses and the changes between them (the store enforces these)."""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Status(enum.StrEnum):
    """Where a question is in its life; the store keeps exactly one of these per question."""

    #: Recorded on arrival, before any Slack call, so a reply right behind it finds its thread.
    RECEIVED = "received"
    #: Accepted for Trellis; waits for the answers above it in its thread.
    QUEUED = "queued"
    ANSWERING = "answering"
    ANSWERED = "answered"
    FAILED = "failed"
    STOPPED = "stopped"
    #: Trellis forgot it because an earlier question of its conversation was edited or deleted.
    DROPPED = "dropped"
    DELETED = "deleted"
    #: Never sent to Trellis: refused by the access policy, empty, or its asker has no e-mail.
    DECLINED = "declined"


S = Status

#: Every change of status the bot makes; the store refuses any other.
TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    S.RECEIVED: frozenset({S.QUEUED, S.DECLINED, S.DELETED, S.DROPPED, S.FAILED}),
    S.QUEUED: frozenset({S.QUEUED, S.ANSWERING, S.DELETED, S.DROPPED, S.FAILED}),
    S.ANSWERING: frozenset({S.ANSWERED, S.FAILED, S.STOPPED}),
    S.ANSWERED: frozenset({S.QUEUED, S.DELETED, S.DROPPED}),
    S.FAILED: frozenset({S.QUEUED, S.DELETED, S.DROPPED}),
    S.STOPPED: frozenset({S.QUEUED, S.DELETED, S.DROPPED}),
    # Asked again from scratch: an edit that mentions the bot, or of a dropped question.
    S.DROPPED: frozenset({S.RECEIVED, S.DELETED}),
    S.DECLINED: frozenset({S.RECEIVED}),
    S.DELETED: frozenset({S.RECEIVED}),
}

#: For each status, the statuses it may be reached from (what the store checks on update).
PREDECESSORS: Mapping[Status, frozenset[Status]] = {
    target: frozenset(source for source, targets in TRANSITIONS.items() if target in targets)
    for target in Status
}

#: A previous process ended before answering these (a crash, a kill): they get Retry at start-up.
UNFINISHED = frozenset({S.RECEIVED, S.QUEUED, S.ANSWERING})
#: Trellis no longer has these (or never had): they are left out of a conversation's later turns.
GONE = frozenset({S.DELETED, S.DROPPED, S.DECLINED})
#: An answer ended: Retry, edits and deletions work on these.
ENDED = frozenset({S.ANSWERED, S.FAILED, S.STOPPED})


def may_change(old: Status, new: Status) -> bool:
    """Whether a question may go from ``old`` to ``new``."""
    return new in TRANSITIONS[old]
