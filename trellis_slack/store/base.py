"""The store's interface: the one record of every question, thread, post and channel choice.

Everything that must survive a restart, or that another process must see, lives behind this
Protocol; whatever the glue keeps in memory is only a cache of it. `SqliteStore` (one process) and
`PostgresStore` (several replicas sharing one database) implement it; `store.open.open_store`
picks one from ``TRELLIS_SLACK_DB``.

Replicas: each process running the bot names itself (a ``replica`` unique to that process run: a
restarted process takes a new name) and renews a heartbeat well within its ``ttl``. A thread claim
or Trellis slot is void once its replica's heartbeat has expired, or when it never had one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from trellis_slack.bot.lifecycle_status import Status
from trellis_slack.store.records import (
    BotPost,
    ChannelSettings,
    Command,
    Conversation,
    QuestionRecord,
    Receipt,
    StoreHealth,
)

if TYPE_CHECKING:
    import asyncio  # noqa: TID251 (a type only: the interface names the event it hands out)


@dataclass(frozen=True, slots=True)
class AnswerStep:
    """One step Trellis took for an answer: a query it ran (``kind`` "query") or a note."""

    kind: str
    title: str | None = None
    sql: str | None = None
    tables: tuple[str, ...] = ()
    row_count: int | None = None
    text: str | None = None


class Store(Protocol):
    """Durable bot state. Every method may raise `StateError` when the database fails."""

    async def close(self) -> None: ...

    # Event dedupe: each (channel, key) is claimed once, ever (claims survive restarts).
    async def claim_event(self, channel_id: str, ts: str) -> bool: ...
    async def prune(self, older_than_days: float = 14.0) -> int: ...

    # Conversations: thread (and owner) ↔ Trellis chat.
    async def conversation(
        self, team_id: str, channel_id: str, thread_ts: str, owner_id: str = ""
    ) -> Conversation | None: ...
    async def save_conversation(self, conversation: Conversation) -> None: ...
    async def conversations_in_thread(
        self, team_id: str, channel_id: str, thread_ts: str
    ) -> list[Conversation]: ...

    # Questions.
    async def receive_question(
        self, question: QuestionRecord, *, claim: str, follow_up: bool
    ) -> Receipt:
        """Claim the delivery and record the question as ``received``, in one step.

        ``follow_up``: a plain reply, only the bot's when its thread already has a question.
        """

    async def add_question(self, question: QuestionRecord) -> None: ...
    async def question(self, channel_id: str, ts: str) -> QuestionRecord | None: ...
    async def update_question(
        self,
        channel_id: str,
        ts: str,
        *,
        trellis_message_id: str | None = None,
        status: Status | None = None,
        text: str | None = None,
        handler: str | None = None,
    ) -> bool:
        """Change the given fields; a status only along `lifecycle.TRANSITIONS` (False if not).

        ``handler``: the replica that takes the question on (a Retry or an edit asks it again
        there), so `adopt_orphans` does not take it from a live replica.
        """

    async def questions_in_thread(
        self, channel_id: str, thread_ts: str
    ) -> list[QuestionRecord]: ...
    async def thread_has_questions(self, channel_id: str, thread_ts: str) -> bool: ...
    async def unfinished_questions(self) -> list[QuestionRecord]:
        """Every unfinished question, whoever handles it (superseded by `adopt_orphans`)."""

    # One answer at a time per thread, in the order the questions were asked.
    async def claim_turn(
        self, channel_id: str, thread_ts: str, question_ts: str, holder: str, *, replica: str = ""
    ) -> bool:
        """Take the thread for answering ``question_ts``, on behalf of ``replica``.

        Only when no live claim holds it and no earlier question of the thread still waits
        (``received`` or ``queued``), so answers come in the order asked whatever the order of
        deliveries. A claim whose replica is dead (heartbeat expired, or never had one) is
        taken over. ``replica`` "" (callers that name none) makes a claim that never expires:
        only `release_turn`, `release_turns` or `adopt_orphans` ends it.
        """

    async def turn_replica(self, channel_id: str, thread_ts: str) -> str | None:
        """The live replica holding the thread's claim; None when none does (or it names none)."""

    async def earlier_questions_shown(
        self, channel_id: str, thread_ts: str, question_ts: str
    ) -> bool:
        """Whether every unfinished earlier question of the thread shows its working message."""

    async def release_turn(self, channel_id: str, thread_ts: str, holder: str) -> None: ...
    async def release_turns(self) -> int:
        """Forget the claims of processes that are gone (at start-up; see `adopt_orphans`).

        SQLite forgets every claim; PostgreSQL those no live replica holds.
        """

    def watch_thread(self, channel_id: str, thread_ts: str) -> asyncio.Event:
        """An event set at the next change in the thread (a question's status, or its claim).

        Changes by other processes set it too (PostgreSQL: LISTEN/NOTIFY). It may be set with
        nothing changed (a lost notification connection wakes everyone): callers recheck, and
        also poll, since a notification is never replayed.
        """

    # Replicas sharing the store.
    async def heartbeat(self, replica: str, *, ttl: float) -> None:
        """Say that ``replica`` is alive until ``ttl`` seconds from now (insert or renew)."""

    async def end_other_replicas(self, replica: str) -> None:
        """Take every other replica for dead now: for a store only one process uses (a SQLite
        file), whose other heartbeats are a previous run's, so a restart recovers at once."""

    async def retire_replica(self, replica: str) -> None:
        """A clean shutdown: drop the replica's heartbeat, thread claims, slots and commands."""

    async def adopt_orphans(self, replica: str) -> list[QuestionRecord]:
        """Take over what dead replicas left, atomically; return the questions adopted.

        A dead replica: its heartbeat expired, or it never had one but is named as the handler
        of unfinished questions (e.g. "" from a process before replicas were named, or the
        previous run of a single process). Their unfinished questions (`lifecycle.UNFINISHED`)
        get ``handler=replica`` and are returned, oldest first; each is adopted by exactly one
        caller, even when replicas call at once. Their thread claims (and every claim naming no
        replica), slots, commands and heartbeats are dropped. The caller's own questions are
        never adopted: call it after ``heartbeat(replica)``, or another replica may adopt them
        in turn. Replaces `release_turns` + `unfinished_questions` at start-up.
        """

    # Commands for the replica that owns a turn (Stop, edits, deletions landing elsewhere).
    async def send_command(self, replica: str, command: Command) -> None:
        """Leave ``command`` for ``replica``; `watch_commands` wakes it."""

    async def take_commands(self, replica: str) -> list[Command]:
        """Remove and return the commands left for ``replica``, in the order sent."""

    def watch_commands(self, replica: str) -> asyncio.Event:
        """An event set when a command for ``replica`` arrives (from any process; may be set
        spuriously; callers also poll, as for `watch_thread`)."""

    # Trellis sockets shared by the fleet.
    async def claim_slot(self, key: str, limit: int, replica: str) -> int | None:
        """A free slot index in ``range(limit)`` of ``key`` for ``replica``; None when full.

        Only live replicas' slots count (a dead replica's are free again).
        """

    async def slot_holders(self, key: str) -> list[str]:
        """The live replicas holding slots of ``key`` (to ask one to free an idle socket)."""

    async def release_slot(self, key: str, slot: int, replica: str) -> None:
        """Give the slot back (nothing happens unless ``replica`` holds it)."""

    # Rates shared by the fleet.
    async def take_rate(self, key: str, *, per_minute: int) -> float:
        """Reserve one use of ``key`` within ``per_minute`` uses per rolling 60 s, fleet-wide.

        Returns the seconds the caller must wait before using its reservation (0.0: now); the
        reservation is kept either way, so a caller that waits must then use it.
        """

    async def health(self) -> StoreHealth:
        """The store's health for ``/healthz`` and ``/metrics``; never raises."""

    # The bot's own posts.
    async def add_bot_post(self, post: BotPost) -> None: ...
    async def bot_posts(self, channel_id: str, question_ts: str) -> list[BotPost]: ...
    async def remove_bot_post(
        self, channel_id: str, *, ts: str | None = None, file_id: str | None = None
    ) -> None: ...
    async def is_bot_post(self, channel_id: str, ts: str) -> bool: ...

    # Channel settings and the Messages-tab greeting.
    async def channel_settings(self, team_id: str, channel_id: str) -> ChannelSettings | None: ...
    async def set_channel_settings(self, settings: ChannelSettings) -> None: ...
    async def claim_greeting(self, team_id: str, user_id: str) -> bool: ...
    async def release_greeting(self, team_id: str, user_id: str) -> None: ...

    async def stats(self) -> dict[str, int]: ...

    # Feedback: each answer's Trellis assistant message, and one vote per person per answer.
    async def save_answer_message(self, channel_id: str, question_ts: str, message_id: str) -> None:
        """Remember the Trellis message that answers the question; a new one forgets old votes."""

    async def answer_message(self, channel_id: str, question_ts: str) -> str | None:
        """The Trellis assistant message id of the question's answer, or None."""

    async def record_vote(
        self, channel_id: str, question_ts: str, user_id: str, rating: str | None
    ) -> str | None:
        """Set the person's vote on the answer (None removes it); return their previous vote."""

    # Chat upkeep: when each thread's chat was last used, and retiring chats (open-chat cap).
    async def touch_conversation(self, conversation: Conversation) -> None:
        """Note that the conversation's chat is used now (it is live again if it was retired)."""

    async def conversation_retired(
        self, team_id: str, channel_id: str, thread_ts: str, owner_id: str = ""
    ) -> bool:
        """Whether the thread's chat (for that owner) was retired: Trellis no longer has it."""

    async def question_chat_retired(self, channel_id: str, ts: str) -> bool:
        """Whether the chat the question was asked in was retired."""

    async def least_recently_used(
        self, owner_id: str, limit: int, *, exclude: Collection[str] = ()
    ) -> list[Conversation]:
        """Up to ``limit`` live conversations of ``owner_id``, least recently used first."""

    async def idle_conversations(self, older_than_days: float) -> list[Conversation]:
        """Every live conversation not used for ``older_than_days``, least recently used first."""

    async def retire_conversation(self, conversation: Conversation) -> bool:
        """Mark the conversation (if it still has that chat) and its questions retired."""

    # The steps of each answer ("Show steps"): per question, in the order Trellis took them.
    async def save_steps(
        self, channel_id: str, question_ts: str, steps: Sequence[AnswerStep]
    ) -> None:
        """Replace the question's steps with ``steps`` (none forgets them)."""

    async def answer_steps(self, channel_id: str, question_ts: str) -> list[AnswerStep]:
        """The steps of the question's latest answer, in order; empty when none were kept."""

    # Answers shown only to their asker (``PRIVATE_ANSWERS=ephemeral``), kept for Share.
    async def keep_private_answer(self, channel_id: str, question_ts: str, body: str) -> None:
        """Keep the answer's message bodies (JSON); a new answer replaces it, unshared."""

    async def private_answer(self, channel_id: str, question_ts: str) -> str | None:
        """The kept private answer of the question, or None."""

    async def claim_share(self, channel_id: str, question_ts: str, user_id: str) -> bool:
        """Mark the kept answer shared by ``user_id``; False if shared already (or none kept)."""

    # The files attached to each question: Slack's links (never their content), so a Retry, a
    # restart or another replica can fetch them again.
    async def save_files(self, channel_id: str, ts: str, files: str) -> None:
        """Keep the links of the files attached to the question (JSON)."""

    async def files_of(self, channel_id: str, ts: str) -> str | None:
        """The links kept for the question's files (JSON), or None."""

    async def release_share(self, channel_id: str, question_ts: str) -> None:
        """Undo `claim_share` (Slack refused to post the shared answer)."""
