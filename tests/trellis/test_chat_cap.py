"""Chats under Trellis's limits: deleting chats, pacing their creation, the open-chat cap."""

from __future__ import annotations

import asyncio

import pytest

from tests.trellis.test_client import LIMIT, Sleeps, client_for
from trellis_slack.errors import TrellisAPIError
from trellis_slack.fakes.trellis_server import FakeTrellis, answer
from trellis_slack.trellis.client import SendMessage, Turn
from trellis_slack.trellis.rest import OPEN_CHAT_CAP, TrellisRest


async def test_delete_chat_frees_a_place_under_the_cap() -> None:
    """DELETE /v1/chats/{id} removes the chat, so creation past the cap works again."""
    async with FakeTrellis(max_open_chats=1) as trellis:
        rest = TrellisRest(trellis.api_url)
        token = trellis.make_token("member-a")
        try:
            chat_id = await rest.create_chat(token, title="one")
            assert chat_id is not None
            with pytest.raises(TrellisAPIError) as refused:
                await rest.create_chat(token, title="two")
            assert (refused.value.code, refused.value.status) == (OPEN_CHAT_CAP, 409)
            assert await rest.delete_chat(token, chat_id) is True
            assert await rest.delete_chat(token, chat_id) is False  # already gone
            assert trellis.deleted_chats == [("member-a", chat_id)]
            assert await rest.create_chat(token, title="two") is not None
        finally:
            await rest.aclose()


async def test_another_members_chat_cannot_be_deleted() -> None:
    """A chat of another member is not found, and stays."""
    async with FakeTrellis() as trellis:
        rest = TrellisRest(trellis.api_url)
        try:
            chat_id = await rest.create_chat(trellis.make_token("a"))
            assert chat_id is not None
            assert await rest.delete_chat(trellis.make_token("b"), chat_id) is False
            assert chat_id in trellis.chats
        finally:
            await rest.aclose()


async def test_chat_creation_is_paced_and_the_wait_is_announced() -> None:
    """Past the creation limit a new chat waits (injected sleep) and on_queued says 'chat'."""
    async with FakeTrellis(responder=lambda q: answer("ok")) as trellis:
        sleeps = Sleeps()
        async with client_for(
            trellis, pace=True, sleep=sleeps, chat_create_limits=((2, 60.0),)
        ) as client:
            announced: list[str] = []
            for n in range(3):
                turns: list[Turn] = []

                async def on_queued(turns: list[Turn] = turns) -> None:
                    announced.append(turns[0].waiting_for)

                turn = client.turn(SendMessage(f"q{n}", title=f"t{n}"), on_queued=on_queued)
                turns.append(turn)
                async with asyncio.timeout(LIMIT), turn:
                    async for _ in turn:
                        pass
            assert announced == ["chat"]  # only the third waited for its chat
            assert any(55.0 < d <= 60.0 for d in sleeps.delays)
            assert len(trellis.chats) == 3


async def test_a_creation_refused_with_429_is_tried_again_after_retry_after() -> None:
    """Trellis's 429 on chat creation is waited out (Retry-After) and creation retried."""
    async with FakeTrellis(
        responder=lambda q: answer("ok"), enforce_rate_limits=True, chat_create_limit=(1, 60.0)
    ) as trellis:
        delays: list[float] = []

        async def sleep(seconds: float) -> None:
            delays.append(seconds)
            trellis.token_creations.clear()  # the fake counts in real time: the wait is over

        async with client_for(trellis, sleep=sleep) as client:
            for n in range(2):
                turn = client.turn(SendMessage(f"q{n}"))
                async with asyncio.timeout(LIMIT), turn:
                    async for _ in turn:
                        pass
            assert len(delays) == 1
            assert 1.0 <= delays[0] <= 60.0
            assert len(trellis.chats) == 2


async def test_the_cap_refusal_reaches_the_caller_with_its_code() -> None:
    """Entering a turn past the cap raises TrellisAPIError with code OPEN_CHAT_CAP."""
    trellis = FakeTrellis(max_open_chats=1, responder=lambda q: answer("ok"))
    async with trellis, client_for(trellis) as client:
        first = client.turn(SendMessage("one"))
        async with asyncio.timeout(LIMIT), first:
            async for _ in first:
                pass
        with pytest.raises(TrellisAPIError) as refused:
            async with asyncio.timeout(LIMIT), client.turn(SendMessage("two")):
                pass
        assert refused.value.code == OPEN_CHAT_CAP


async def test_delete_chat_through_the_client() -> None:
    """TrellisClient.delete_chat deletes with the identity's token; False without REST."""
    async with FakeTrellis() as trellis:
        async with client_for(trellis) as client:
            rest = TrellisRest(trellis.api_url)
            try:
                chat_id = await rest.create_chat(trellis.make_token())
            finally:
                await rest.aclose()
            assert chat_id is not None
            assert await client.delete_chat(chat_id) is True
            assert chat_id not in trellis.chats
        async with client_for(trellis, rest=False) as bare:
            assert await bare.delete_chat("chat_x") is False
