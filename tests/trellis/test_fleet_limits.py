"""The Trellis client under limits shared with other replicas (`trellis.shared.FleetLimits`).

Two real `TrellisClient`s (two replicas) against the fake Trellis share one `Slots` table, the
in-memory stand-in for the store's slots (the store's own are tested in tests/store).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.trellis.test_client import LIMIT, client_for, collect
from trellis_slack.fakes.trellis_server import FakeTrellis, Step
from trellis_slack.trellis.client import SendMessage, TrellisClient
from trellis_slack.trellis.protocol import Message


@pytest.fixture
async def trellis() -> AsyncIterator[FakeTrellis]:
    async with FakeTrellis(version="current") as fake:
        yield fake


class Slots:
    """Socket slots over every replica, and who asked whom to give one up."""

    poll = 0.0

    def __init__(self) -> None:
        self.held: dict[tuple[str, int], str] = {}
        self.asked: list[tuple[str, int]] = []
        self.clients: dict[str, TrellisClient] = {}
        self.changed = asyncio.Event()

    async def until_asked(self, replica: str, held: int) -> None:
        """Wait until ``replica`` found no free slot while holding ``held`` sockets."""
        while (replica, held) not in self.asked:
            self.changed.clear()
            await self.changed.wait()

    def limits(self, replica: str) -> Replica:
        return Replica(self, replica)


class Replica:
    """One replica's view of `Slots` (a `FleetLimits`)."""

    poll = 0.0

    def __init__(self, slots: Slots, name: str) -> None:
        self.slots = slots
        self.name = name

    async def take_socket(self, member: str, limit: int, *, held: int) -> int | None:
        for slot in range(limit):
            if (member, slot) not in self.slots.held:
                self.slots.held[member, slot] = self.name
                return slot
        self.slots.asked.append((self.name, held))
        self.slots.changed.set()
        if held == 0:
            for (key, _), owner in list(self.slots.held.items()):
                if key == member and owner != self.name:
                    self.slots.clients[owner].close_idle(member)
        await asyncio.sleep(0)  # as a store call would, let the others run
        return None

    async def give_socket(self, member: str, slot: int) -> None:
        if self.slots.held.get((member, slot)) == self.name:
            del self.slots.held[member, slot]

    async def rate(self, what: str, member: str, per_minute: int) -> float:
        return 0.0


async def test_two_replicas_share_one_members_sockets(trellis: FakeTrellis) -> None:
    """With one socket slot for the fleet, the second replica waits and the first gives it up."""
    slots = Slots()
    trellis.responder = lambda q: [Step.message(f"re: {q.text}")]
    async with (
        client_for(trellis, max_connections=1, limits=slots.limits("a")) as a,
        client_for(trellis, max_connections=1, limits=slots.limits("b")) as b,
        asyncio.timeout(LIMIT),
    ):
        slots.clients = {"a": a, "b": b}
        first = await collect(a.turn(SendMessage("from a")))
        assert a.open_connections == 1  # idle, holding the fleet's only slot
        second = await collect(b.turn(SendMessage("from b")))
    assert [e.content for e in (*first, *second) if isinstance(e, Message)] == [
        "re: from a",
        "re: from b",
    ]
    assert trellis.peak_connections == 1  # never two sockets for the member at once
    assert ("b", 0) in slots.asked  # b had none, so it asked a to give its idle one up


async def test_a_replica_with_a_busy_socket_waits_for_its_own(trellis: FakeTrellis) -> None:
    """Holding one of the member's sockets, a replica queues for it instead of taking others'."""
    slots = Slots()
    gate = asyncio.Event()
    trellis.responder = lambda q: [Step.pause(gate), Step.message(f"re: {q.text}")]
    async with (
        client_for(trellis, max_connections=2, limits=slots.limits("a")) as a,
        client_for(trellis, max_connections=2, limits=slots.limits("b")) as b,
        asyncio.timeout(LIMIT),
    ):
        slots.clients = {"a": a, "b": b}
        async with asyncio.TaskGroup() as group:
            held_by_b = group.create_task(collect(b.turn(SendMessage("b1"))))
            await trellis.wait_for_action("send_message")
            first = group.create_task(collect(a.turn(SendMessage("a1"))))
            await trellis.wait_for_action("send_message", count=2)
            second = group.create_task(collect(a.turn(SendMessage("a2"))))
            await slots.until_asked("a", 1)
            assert b.open_connections == 1  # a did not ask b to give its socket up
            gate.set()
        texts = [
            e.content
            for t in (held_by_b, first, second)
            for e in t.result()
            if isinstance(e, Message)
        ]
    assert texts == ["re: b1", "re: a1", "re: a2"]
    assert trellis.peak_connections == 2
