"""Several replicas, one store: this replica's heartbeat, what dead ones left, commands between them.

Every replica has a name (`replica_name`) and says it is alive in the store every few seconds
(`Fleet.beat`). Its thread claims and Trellis slots last as long as that heartbeat does: a replica
that dies (``kill -9``, a lost node) stops renewing it, and within ``ttl`` seconds the others
see it dead. One of them then adopts its unfinished questions (`Store.adopt_orphans`, which
hands each to exactly one replica) and the bridge ends them visibly (`Bridge.take_over`).

Stop, Slack's agent stop, and the stops that edits and deletions need go to whichever replica
Slack hands them to; when the answer runs on another replica, this one leaves that replica a
command in the store (`forward`), which it runs within a second: a notification wakes it
(PostgreSQL ``LISTEN/NOTIFY``), and it also looks every ``poll`` seconds, since a notification
sent while its listener was reconnecting is never replayed.

When the store fails, the heartbeat says so (`healthy`): the bridge stops taking new questions
(Slack redelivers them to a replica that can record them) and recovers by itself once a
heartbeat succeeds again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from trellis_slack.bot.storing import until_stored
from trellis_slack.errors import StateError
from trellis_slack.store.base import Store
from trellis_slack.store.records import Command, QuestionRecord

log = logging.getLogger(__name__)

#: Seconds a heartbeat lasts: a replica silent this long is dead (its work is adopted).
HEARTBEAT_TTL = 15.0
#: Seconds between looks for commands when no notification came (the polling fallback).
COMMAND_POLL = 1.0
#: Seconds between looks for a free Trellis socket slot while other replicas hold them all.
SLOT_POLL = 0.25

#: Seconds before a replica waiting for a member's socket asks its holders again.
ASK_AGAIN = 2.0
#: Tries to give a socket slot back while the store is away (a second or so apart).
_RELEASE_TRIES = 30
#: Commands one replica leaves another (`Command.kind`).
STOP, STOP_FOR, AGENT_STOP = "stop", "stop_for", "agent_stop"
#: "Close an idle Trellis socket of this member (``payload``): another replica needs its slot."
FREE_SOCKET = "free_socket"


def replica_name() -> str:
    """A name unique to this process: host, pid and a random part (pids are reused)."""
    host = socket.gethostname().split(".")[0][:40] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Fleet:
    """This replica among the others that share the store."""

    def __init__(
        self,
        store: Store,
        *,
        replica: str | None = None,
        ttl: float = HEARTBEAT_TTL,
        poll: float = COMMAND_POLL,
        sole: bool = False,
    ) -> None:
        self.store = store
        #: The only process using the store (a SQLite file): any other heartbeat found at
        #: start-up is a previous run's, whose work is taken over at once, not after ``ttl``.
        self.sole = sole
        self.replica = replica or replica_name()
        self.ttl = ttl
        self.poll = poll
        #: False while the store cannot be reached: new questions are not taken (nor acked).
        self.healthy = True
        self.adopted = 0
        self.adopted_once = False

    async def beat(self) -> bool:
        """Renew this replica's heartbeat once; whether the store took it."""
        try:
            await self.store.heartbeat(self.replica, ttl=self.ttl)
        except StateError as exc:
            if self.healthy:
                log.error("the state store is unreachable: not taking new questions (%s)", exc)
            self.healthy = False
            return False
        if not self.healthy:
            log.info("the state store is back: taking questions again")
        self.healthy = True
        return True

    async def adopt(self) -> list[QuestionRecord]:
        """What dead replicas (or this process's previous run) left unfinished, now ours."""
        try:
            if self.sole and not self.adopted_once:
                await self.store.end_other_replicas(self.replica)
            self.adopted_once = True
            questions = await self.store.adopt_orphans(self.replica)
        except StateError as exc:
            log.warning("could not look for work left by other replicas: %s", exc)
            return []
        self.adopted += len(questions)
        return questions

    async def run(
        self,
        take_over: Callable[[list[QuestionRecord]], Awaitable[None]],
        perform: Callable[[Command], Awaitable[None]],
    ) -> None:
        """Until cancelled: beat, adopt dead replicas' work, and run commands left for us."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._beating(take_over))
            group.create_task(self._commands(perform))

    async def _beating(self, take_over: Callable[[list[QuestionRecord]], Awaitable[None]]) -> None:
        interval = max(self.ttl / 3, 0.01)
        while True:
            await asyncio.sleep(interval)
            try:
                if await self.beat():
                    orphans = await self.adopt()
                    if orphans:
                        log.info("took over %d question(s) from a replica that died", len(orphans))
                        await take_over(orphans)
            except Exception:
                # Never the end of the heartbeat: a replica that stops beating while it goes
                # on answering would have its work taken over under it.
                log.exception("the heartbeat's round failed; the next one tries again")

    async def _commands(self, perform: Callable[[Command], Awaitable[None]]) -> None:
        while True:
            # Watched before looking, so a command sent in between still wakes us.
            arrived = self.store.watch_commands(self.replica)
            try:
                commands = await self.store.take_commands(self.replica)
            except StateError as exc:
                log.warning("could not read commands from other replicas: %s", exc)
                commands = []
            for command in commands:
                try:
                    await perform(command)
                except Exception:
                    log.exception("a %s command from another replica failed", command.kind)
            if not commands:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll):
                        await arrived.wait()

    async def forward(self, channel_id: str, thread_ts: str, command: Command) -> bool:
        """Leave ``command`` for the live replica answering in the thread, if it is not us.

        False when no other live replica holds the thread (nothing runs there, or we do).
        """
        try:
            owner = await self.store.turn_replica(channel_id, thread_ts)
            if owner is None or owner == self.replica:
                return False
            await self.store.send_command(owner, command)
        except StateError as exc:
            log.warning("could not reach the replica answering in the thread: %s", exc)
            return False
        log.info("%s forwarded to replica %s, which is answering", command.kind, owner)
        return True

    async def leave(self) -> None:
        """A clean shutdown: our heartbeat, claims and slots go at once (nothing to adopt)."""
        with contextlib.suppress(StateError):
            await self.store.retire_replica(self.replica)


class StoreLimits:
    """Trellis's limits over every replica (`trellis.shared.FleetLimits`), kept in the store.

    Socket slots belong to this replica and live as long as its heartbeat: a replica that dies
    frees its slots within ``REPLICA_TTL``. When the store cannot be reached, no new socket is
    opened (its answers wait, and say so) rather than risk a fourth socket Trellis would refuse;
    sockets already open carry on, so answers in progress finish.
    """

    def __init__(self, store: Store, fleet: Fleet, *, poll: float = SLOT_POLL) -> None:
        self.store = store
        self.fleet = fleet
        self.poll = poll
        #: When each member's holders were last asked to give up an idle socket (monotonic).
        self._asked: dict[str, float] = {}

    async def take_socket(self, member: str, limit: int, *, held: int) -> int | None:
        """A slot; when others hold them all and we have none, they are asked to close an idle
        socket for us (with one of our own, we wait for it instead: no tug of war)."""
        key = f"sockets:{member}"
        try:
            slot = await self.store.claim_slot(key, limit, self.fleet.replica)
            if slot is None and held == 0 and self._may_ask(member):
                # An idle socket elsewhere would keep its slot until it times out (minutes):
                # its replica closes one when asked, and a later look finds the slot free.
                for holder in await self.store.slot_holders(key):
                    if holder != self.fleet.replica:
                        await self.store.send_command(
                            holder, Command(FREE_SOCKET, "", "", payload=member)
                        )
            return slot
        except StateError as exc:
            log.warning("cannot take a Trellis socket slot: %s", exc)
            return None

    def _may_ask(self, member: str) -> bool:
        """Ask a member's holders at most once per `ASK_AGAIN` seconds (each asked closes one
        idle socket: asking at every look would close more than the one needed)."""
        now = time.monotonic()
        if now - self._asked.get(member, -ASK_AGAIN) < ASK_AGAIN:
            return False
        self._asked[member] = now
        return True

    async def give_socket(self, member: str, slot: int) -> None:
        """Give the slot back, trying again while the store is away: a slot this live replica
        kept by mistake would count against the member until it stops."""
        await until_stored(
            lambda: self.store.release_slot(f"sockets:{member}", slot, self.fleet.replica),
            "a Trellis socket slot given back",
            every=self.poll * 4 or 1.0,
            tries=_RELEASE_TRIES,
        )

    async def rate(self, what: str, member: str, per_minute: int) -> float:
        try:
            return await self.store.take_rate(f"{what}:{member}", per_minute=per_minute)
        except StateError as exc:
            log.warning("cannot check the fleet's %s rate: %s", what, exc)
            return 0.0  # this replica's own pacing still holds
