"""Replicas sharing one store: claims, heartbeats, orphans, commands, slots, rates and health."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from tests.helpers import Clock
from tests.store.conftest import AnyStore, Opener
from trellis_slack.bot.lifecycle_status import Status
from trellis_slack.store.open import open_store
from trellis_slack.store.records import Command, QuestionRecord, Receipt

THREAD = "1700000000.000100"


def ask(ts: str, *, handler: str = "", status: Status = Status.QUEUED) -> QuestionRecord:
    return QuestionRecord("C1", ts, THREAD, "U1", "how many orders?", None, status, handler=handler)


async def two(open_replica: Opener) -> tuple[AnyStore, AnyStore]:
    return await open_replica(), await open_replica()


# --- the same guarantees from two store objects (two replicas) -----------------------------------


async def test_a_duplicate_delivery_is_claimed_once_across_replicas(open_replica: Opener) -> None:
    """Slack's deliveries of one message, spread over two replicas, make one NEW question."""
    a, b = await two(open_replica)
    q = ask("1700000000.000200")
    async with asyncio.timeout(10):
        receipts = await asyncio.gather(
            *(s.receive_question(q, claim=q.ts, follow_up=False) for s in (a, b, a, b, a, b))
        )
    assert receipts.count(Receipt.NEW) == 1
    assert receipts.count(Receipt.DUPLICATE) == 5


async def test_a_thread_claim_is_seen_by_the_other_replica(open_replica: Opener) -> None:
    """While one replica answers in a thread, the other cannot claim it; released, it can."""
    a, b = await two(open_replica)
    await a.heartbeat("A", ttl=30)
    await b.heartbeat("B", ttl=30)
    await a.add_question(ask("1700000000.000200"))
    assert await a.claim_turn("C1", THREAD, "1700000000.000200", "h1", replica="A")
    assert not await b.claim_turn("C1", THREAD, "1700000000.000200", "h2", replica="B")
    assert await b.turn_replica("C1", THREAD) == "A"
    await a.release_turn("C1", THREAD, "h1")
    assert await b.turn_replica("C1", THREAD) is None
    assert await b.claim_turn("C1", THREAD, "1700000000.000200", "h2", replica="B")


async def test_watch_thread_wakes_on_another_replicas_change(postgres_url: str) -> None:
    """A change made through one PostgreSQL store wakes a waiter of another (LISTEN/NOTIFY)."""
    async with await open_store(postgres_url) as a, await open_store(postgres_url) as b:
        await a.add_question(ask("1700000000.000200"))
        for change in (
            lambda: a.update_question("C1", "1700000000.000200", status=Status.ANSWERING),
            lambda: a.release_turn("C1", THREAD, "nobody"),
        ):
            woken = b.watch_thread("C1", THREAD)
            assert not woken.is_set()
            await change()
            async with asyncio.timeout(5):
                await woken.wait()


async def test_two_replicas_migrating_at_once_both_open(postgres_url: str) -> None:
    """Replicas starting together on an empty database migrate it once, under the lock."""
    async with asyncio.timeout(20):
        stores = await asyncio.gather(*(open_store(postgres_url) for _ in range(3)))
    try:
        assert await stores[0].claim_event("C1", "1.000001")
        assert not await stores[2].claim_event("C1", "1.000001")
    finally:
        for store in stores:
            await store.close()


async def test_a_lost_listening_connection_wakes_waiters_and_comes_back(postgres_url: str) -> None:
    """When its notification connection dies, every waiter is woken and listening resumes."""
    async with await open_store(postgres_url) as a, await open_store(postgres_url) as b:
        assert hasattr(b, "listening")
        seen = b.watch_thread("C1", THREAD)
        await a.add_question(ask("1700000000.000200"))
        async with asyncio.timeout(5):
            await seen.wait()
        woken = b.watch_thread("C1", THREAD)
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'trellis-slack-listen' AND datname = current_database()"
            )
        async with asyncio.timeout(5):
            await woken.wait()
        async with asyncio.timeout(10):
            while True:  # listening again: a change is seen again
                again = b.watch_thread("C1", THREAD)
                await a.update_question("C1", "1700000000.000200", text="again?")
                try:
                    async with asyncio.timeout(0.5):
                        await again.wait()
                except TimeoutError:
                    continue
                if b.listening:  # not the wake-up of the connection being lost
                    break
        assert (await b.health()).error == ""


# --- heartbeats and claims -----------------------------------------------------------------------


async def test_a_dead_replicas_claim_is_taken_over(store: AnyStore, clock: Clock) -> None:
    """A claim lasts while its replica's heartbeat does; once it expires another replica takes it."""
    await store.heartbeat("A", ttl=10)
    await store.heartbeat("B", ttl=100)
    assert await store.claim_turn("C1", THREAD, "1.1", "a", replica="A")
    assert not await store.claim_turn("C1", THREAD, "1.1", "b", replica="B")
    clock.now += 9
    assert not await store.claim_turn("C1", THREAD, "1.1", "b", replica="B")
    clock.now += 2
    assert await store.turn_replica("C1", THREAD) is None
    assert await store.claim_turn("C1", THREAD, "1.1", "b", replica="B")
    assert await store.turn_replica("C1", THREAD) == "B"


async def test_a_claim_of_a_replica_without_heartbeat_is_void(store: AnyStore) -> None:
    """A replica that never sent a heartbeat holds nothing."""
    assert await store.claim_turn("C1", THREAD, "1.1", "a", replica="ghost")
    assert await store.turn_replica("C1", THREAD) is None
    assert await store.claim_turn("C1", THREAD, "1.1", "b", replica="B")


async def test_a_claim_naming_no_replica_never_expires(store: AnyStore, clock: Clock) -> None:
    """A caller that names no replica keeps the thread until it releases it (as before)."""
    assert await store.claim_turn("C1", THREAD, "1.1", "a")
    clock.now += 3600
    await store.heartbeat("B", ttl=10)
    assert not await store.claim_turn("C1", THREAD, "1.1", "b", replica="B")
    assert await store.turn_replica("C1", THREAD) is None
    await store.release_turn("C1", THREAD, "a")
    assert await store.claim_turn("C1", THREAD, "1.1", "b", replica="B")


async def test_retiring_a_replica_frees_its_claims_and_slots(store: AnyStore) -> None:
    """A clean shutdown gives back the replica's threads and Trellis slots at once."""
    await store.heartbeat("A", ttl=60)
    await store.heartbeat("B", ttl=60)
    assert await store.claim_turn("C1", THREAD, "1.1", "a", replica="A")
    assert await store.claim_slot("token", 1, "A") == 0
    woken = store.watch_thread("C1", THREAD)
    await store.retire_replica("A")
    async with asyncio.timeout(5):
        await woken.wait()
    assert await store.claim_turn("C1", THREAD, "1.1", "b", replica="B")
    assert await store.claim_slot("token", 1, "B") == 0
    assert (await store.health()).replicas_live == 1


# --- orphans -------------------------------------------------------------------------------------


async def test_orphans_of_a_dead_replica_are_adopted_once(store: AnyStore, clock: Clock) -> None:
    """A dead replica's unfinished questions go to the first replica that adopts them, only."""
    await store.heartbeat("A", ttl=10)
    await store.add_question(ask("1.1", handler="A", status=Status.ANSWERING))
    await store.add_question(ask("1.2", handler="A", status=Status.QUEUED))
    await store.add_question(ask("1.3", handler="A", status=Status.ANSWERED))
    assert await store.claim_turn("C1", THREAD, "1.1", "a", replica="A")
    await store.heartbeat("B", ttl=100)
    await store.heartbeat("C", ttl=100)
    assert await store.adopt_orphans("B") == []  # A is still alive
    clock.now += 11
    adopted = await store.adopt_orphans("B")
    assert [(q.ts, q.handler) for q in adopted] == [("1.1", "B"), ("1.2", "B")]
    assert await store.adopt_orphans("C") == []
    assert (await store.question("C1", "1.1")) == adopted[0]
    assert await store.claim_turn("C1", THREAD, "1.1", "c", replica="C")  # A's claim is gone


async def test_a_previous_runs_questions_without_heartbeat_are_adopted(store: AnyStore) -> None:
    """Questions left by a process that never heartbeated ("" or a name) are orphans too."""
    await store.add_question(ask("1.2", handler="old-run", status=Status.ANSWERING))
    assert await store.claim_turn("C1", THREAD, "1.2", "old")
    await store.add_question(ask("1.1", handler="", status=Status.RECEIVED))
    await store.heartbeat("B", ttl=60)
    await store.add_question(
        QuestionRecord("C2", "2.1", "2.1", "U1", "x", None, Status.QUEUED, handler="B")
    )
    adopted = await store.adopt_orphans("B")
    assert [q.ts for q in adopted] == ["1.1", "1.2"]
    assert {q.handler for q in adopted} == {"B"}
    assert await store.claim_turn("C1", THREAD, "1.1", "new", replica="B")  # "" claim dropped


async def test_replicas_adopting_at_once_split_the_orphans(open_replica: Opener) -> None:
    """Two replicas adopting together never both get a question."""
    a, b = await two(open_replica)
    for n in range(20):
        await a.add_question(ask(f"1.{n:03d}", handler="dead", status=Status.QUEUED))
    await a.heartbeat("A", ttl=60)
    await b.heartbeat("B", ttl=60)
    async with asyncio.timeout(20):
        got_a, got_b = await asyncio.gather(a.adopt_orphans("A"), b.adopt_orphans("B"))
    assert len(got_a) + len(got_b) == 20
    assert not {q.ts for q in got_a} & {q.ts for q in got_b}


# --- commands ------------------------------------------------------------------------------------


async def test_commands_are_taken_in_order_once(open_replica: Opener) -> None:
    """Commands left for a replica come out in the order sent, once, and only for it."""
    a, b = await two(open_replica)
    stop = Command("stop", "C1", "1.1", "U2")
    edit = Command("edit", "C1", "1.2", "U1", '{"text": "new"}')
    await b.send_command("A", stop)
    await b.send_command("A", edit)
    await b.send_command("Z", stop)
    assert await a.take_commands("A") == [stop, edit]
    assert await a.take_commands("A") == []
    assert await a.take_commands("Z") == [stop]


async def test_watch_commands_wakes_on_a_command(store: AnyStore) -> None:
    """A replica's command event is set when a command for it arrives."""
    mine = store.watch_commands("A")
    other = store.watch_commands("B")
    await store.send_command("A", Command("stop", "C1", "1.1"))
    async with asyncio.timeout(5):
        await mine.wait()
    assert not other.is_set()


async def test_watch_commands_wakes_across_replicas(postgres_url: str) -> None:
    """A command sent through one PostgreSQL store wakes the addressee's watcher in another."""
    async with await open_store(postgres_url) as a, await open_store(postgres_url) as b:
        woken = a.watch_commands("A")
        await b.send_command("A", Command("stop", "C1", "1.1", "U2"))
        async with asyncio.timeout(5):
            await woken.wait()
        assert await a.take_commands("A") == [Command("stop", "C1", "1.1", "U2")]


# --- Trellis slots -------------------------------------------------------------------------------


async def test_slots_are_shared_within_the_limit(open_replica: Opener) -> None:
    """The fleet holds at most ``limit`` slots of a key at once; released ones are reused."""
    a, b = await two(open_replica)
    await a.heartbeat("A", ttl=60)
    await b.heartbeat("B", ttl=60)
    async with asyncio.timeout(10):
        got = await asyncio.gather(
            *(s.claim_slot("token-1", 3, r) for s, r in ((a, "A"), (b, "B")) * 3)
        )
    held = [slot for slot in got if slot is not None]
    assert sorted(held) == [0, 1, 2]
    assert got.count(None) == 3
    assert await a.claim_slot("token-2", 3, "A") == 0  # another key has its own slots
    owner = "A" if got[0] is not None else "B"
    await a.release_slot("token-1", got[0] if got[0] is not None else held[0], "nobody")
    assert await b.claim_slot("token-1", 3, "B") is None  # only the holder releases
    slot = next(s for s, r in zip(got, ("A", "B") * 3, strict=True) if s is not None and r == owner)
    await a.release_slot("token-1", slot, owner)
    assert await b.claim_slot("token-1", 3, "B") == slot


async def test_a_dead_replicas_slots_are_free(store: AnyStore, clock: Clock) -> None:
    """Slots held by a replica whose heartbeat expired count for nothing."""
    await store.heartbeat("A", ttl=10)
    assert [await store.claim_slot("t", 2, "A") for _ in range(3)] == [0, 1, None]
    clock.now += 11
    await store.heartbeat("B", ttl=10)
    assert await store.claim_slot("t", 2, "B") == 0
    assert (await store.health()).slots_held == 1


# --- rates ---------------------------------------------------------------------------------------


async def test_take_rate_spaces_uses_within_a_rolling_minute(store: AnyStore, clock: Clock) -> None:
    """Two uses a minute: the third waits until the first is a minute old; old uses are forgotten."""
    assert await store.take_rate("chats", per_minute=2) == 0.0
    clock.now += 10
    assert await store.take_rate("chats", per_minute=2) == 0.0
    clock.now += 5
    assert await store.take_rate("chats", per_minute=2) == pytest.approx(45.0)
    assert await store.take_rate("chats", per_minute=2) == pytest.approx(55.0)
    assert await store.take_rate("other", per_minute=2) == 0.0
    clock.now += 200
    assert await store.take_rate("chats", per_minute=2) == 0.0


async def test_take_rate_is_shared_by_replicas(open_replica: Opener) -> None:
    """Uses reserved at once by two replicas never exceed the rate together."""
    a, b = await two(open_replica)
    async with asyncio.timeout(10):
        waits = await asyncio.gather(*(s.take_rate("k", per_minute=3) for s in (a, b) * 3))
    assert sorted(waits)[:3] == [0.0, 0.0, 0.0]
    assert all(w > 59 for w in sorted(waits)[3:])


# --- health --------------------------------------------------------------------------------------


async def test_health_reports_the_backend_and_the_leases(store: AnyStore, backend: str) -> None:
    """health() says which backend answers, how fast, and what live replicas hold."""
    await store.heartbeat("A", ttl=60)
    assert await store.claim_turn("C1", THREAD, "1.1", "a", replica="A")
    assert await store.claim_slot("t", 3, "A") == 0
    health = await store.health()
    assert health.backend == backend
    assert health.reachable
    assert health.latency_ms is not None
    assert health.latency_ms >= 0
    assert (health.turns_held, health.slots_held, health.replicas_live) == (1, 1, 1)
    assert (health.pool_size is None) is (backend == "sqlite")


async def test_health_of_a_closed_store_is_unreachable_not_an_error(store: AnyStore) -> None:
    """A store that cannot answer says so in health() instead of raising."""
    await store.close()
    health = await store.health()
    assert not health.reachable
    assert "closed" in health.error
