"""`bot.chats` with an in-memory store and a ten-line chat deleter; the chat-creation wait shown."""

from __future__ import annotations

import asyncio

import pytest

from tests.bot.fakes import FakeRenderer, FakeTurnSource, memory_store, slack_io
from tests.bot.test_turn_unit import asked, shows
from tests.helpers import Clock
from trellis_slack.bot.asks import Defaults
from trellis_slack.bot.chats import CHAT_QUEUED, Chats, keep_retiring
from trellis_slack.bot.turn import TurnRunner
from trellis_slack.errors import TrellisUnavailable
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.store.records import Conversation
from trellis_slack.store.sqlite import SqliteStore
from trellis_slack.trellis.protocol import Message

DAY = 86_400.0


class Deleter:
    """A `ChatDeleter` recording (chat, identity); the chats in ``refuse`` fail to delete."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.deleted: list[tuple[str, str | None]] = []
        self.refuse = refuse

    async def delete_chat(self, chat_id: str, *, identity: str | None = None) -> bool:
        if chat_id in self.refuse:
            raise TrellisUnavailable("Trellis is down")
        self.deleted.append((chat_id, identity))
        return True


@pytest.fixture
def store(clocked_store: SqliteStore) -> SqliteStore:
    return clocked_store


async def used(store: SqliteStore, clock: Clock, thread: str, owner: str = "") -> Conversation:
    clock.now += 1
    conversation = Conversation("T1", "C1", thread, owner, f"chat-{thread}", None, None)
    await store.save_conversation(conversation)
    await store.touch_conversation(conversation)
    return conversation


async def identity_of(owner_id: str) -> str | None:
    return f"{owner_id.lower()}@example.com"


async def test_make_room_retires_the_least_recently_used_of_that_owner(
    store: SqliteStore, clock: Clock
) -> None:
    """The oldest chats of the owner go first, as that identity; busy and other owners' stay."""
    for thread in ("1", "2", "3"):
        await used(store, clock, thread, owner="U1")
    await used(store, clock, "4", owner="U2")
    deleter = Deleter()
    chats = Chats(store, deleter, batch=2)
    assert await chats.make_room("U1", "u1@example.com", busy={"chat-1"}) == 2
    assert deleter.deleted == [("chat-2", "u1@example.com"), ("chat-3", "u1@example.com")]
    assert await store.conversation_retired("T1", "C1", "2", "U1")
    assert not await store.conversation_retired("T1", "C1", "1", "U1")


async def test_a_chat_trellis_would_not_delete_is_not_marked_retired(
    store: SqliteStore, clock: Clock
) -> None:
    """A failed deletion leaves the thread live (its chat still exists in Trellis)."""
    await used(store, clock, "1")
    await used(store, clock, "2")
    chats = Chats(store, Deleter(refuse=frozenset({"chat-1"})), batch=2)
    assert await chats.make_room("", None) == 1
    assert not await store.conversation_retired("T1", "C1", "1")
    assert await store.conversation_retired("T1", "C1", "2")


async def test_without_a_deleter_nothing_is_retired(store: SqliteStore, clock: Clock) -> None:
    """A Trellis source that cannot delete chats retires nothing: the refusal stands."""
    await used(store, clock, "1")
    assert await Chats(store, None).make_room("", None) == 0


async def test_retention_retires_idle_chats_with_each_owners_identity(
    store: SqliteStore, clock: Clock
) -> None:
    """Chats unused for longer than the retention go, each deleted as its owner's identity."""
    await used(store, clock, "old-shared")
    await used(store, clock, "old-alice", owner="UALICE")
    clock.now += 8 * DAY
    await used(store, clock, "recent")
    deleter = Deleter()
    assert await Chats(store, deleter).retire_idle(7, identity_of) == 2
    assert deleter.deleted == [("chat-old-shared", None), ("chat-old-alice", "ualice@example.com")]
    assert not await store.conversation_retired("T1", "C1", "recent")


async def test_keep_retiring_runs_at_once_and_then_every_period(
    store: SqliteStore, clock: Clock
) -> None:
    """The retention runs at start-up, then after each wait, until cancelled."""
    await used(store, clock, "1")
    clock.now += 2 * DAY
    deleter = Deleter()
    waits: list[float] = []
    second_pass = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            second_pass.set()
            await asyncio.Event().wait()  # stays here until cancelled

    task = asyncio.create_task(keep_retiring(Chats(store, deleter), 1, identity_of, sleep=sleep))
    async with asyncio.timeout(2):
        await second_pass.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert waits == [DAY, DAY]
    assert deleter.deleted == [("chat-1", None)]


async def test_a_question_waiting_to_create_its_chat_says_it_is_queued(slack: FakeSlack) -> None:
    """While the chat-creation limit holds the question back, the thread says it is queued."""
    source = FakeTurnSource()
    gate = asyncio.Event()
    pending = source.will_answer(Message("Done.", "m1"), gate=gate)
    # What `Turn.waiting_for` says while the client holds a new chat back for the limit.
    setattr(pending, "waiting_for", "chat")  # noqa: B010 - FakePending does not declare it
    async with slack_io(slack) as io, memory_store() as store:
        runner = TurnRunner(
            slack=io,
            trellis=source,
            store=store,
            renderer=FakeRenderer(),
            defaults=Defaults(),
            update_interval=0.0,
        )
        ask = await asked(slack, store)
        run = asyncio.create_task(runner.run(ask))
        await shows(slack, ask, CHAT_QUEUED)
        gate.set()
        async with asyncio.timeout(2):
            await run
