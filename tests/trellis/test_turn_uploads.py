"""A question's files: uploaded into its chat and named in send_message, or left out with why."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from trellis_slack.fakes.trellis_server import FakeTrellis
from trellis_slack.trellis import protocol
from trellis_slack.trellis.client import TrellisClient
from trellis_slack.trellis.connection import Connection, Sink
from trellis_slack.trellis.pacing import Backoff
from trellis_slack.trellis.rest import TrellisRest
from trellis_slack.trellis.tokens import StaticToken
from trellis_slack.trellis.turn import SendMessage, Turn, TurnHost
from trellis_slack.trellis.uploads import FileToUpload, Uploaded

CSV = FileToUpload("sales.csv", "text/csv", b"region,total\nnorth,3\n")


class Host:
    """The client's own turn host, plus uploads over the real REST client (as client.py would)."""

    def __init__(self, inner: TurnHost, rest: TrellisRest, token: str) -> None:
        self.inner, self.rest, self.token = inner, rest, token
        self.turn_timeout = inner.turn_timeout
        self.backoff = inner.backoff

    def check_open(self) -> None:
        self.inner.check_open()

    async def create_chat(
        self,
        identity: str | None,
        request: SendMessage,
        *,
        on_wait: Callable[[], Awaitable[None]] | None = None,
    ) -> str | None:
        return await self.inner.create_chat(identity, request, on_wait=on_wait)

    async def send(
        self,
        identity: str | None,
        frame: str,
        sink: Sink,
        *,
        pace: bool,
        on_queued: Callable[[], Awaitable[None]] | None,
    ) -> Connection:
        return await self.inner.send(identity, frame, sink, pace=pace, on_queued=on_queued)

    async def pace(self, conn: Connection) -> None:
        await self.inner.pace(conn)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)

    async def upload(
        self, identity: str | None, chat_id: str, files: tuple[FileToUpload, ...]
    ) -> tuple[Uploaded, ...]:
        return await self.rest.upload(self.token, chat_id, files)


async def run(
    trellis: FakeTrellis,
    request: SendMessage,
    *,
    uploads: bool = True,
    slept: list[float] | None = None,
) -> Turn:
    """Run one turn to its end against the fake; the turn is returned for its fields."""

    async def sleep(seconds: float) -> None:
        if slept is not None:
            slept.append(seconds)

    token = trellis.make_token("member-1")
    rest = TrellisRest(trellis.api_url)
    client = TrellisClient(
        ws_url=trellis.ws_url,
        tokens=StaticToken(token),
        rest=rest if trellis.version == "current" else None,
        backoff=Backoff(base=0.0, cap=0.0, jitter=0.0),
        pace=False,
        sleep=sleep,
    )
    inner: TurnHost = client._host
    host: TurnHost = Host(inner, rest, token) if uploads else inner
    try:
        async with asyncio.timeout(10):
            async with Turn(host, request, identity=None, on_queued=None) as turn:
                events = [event async for event in turn]
        assert isinstance(events[-1], protocol.Message)
        return turn
    finally:
        await client.aclose()
        await rest.aclose()


async def test_files_are_uploaded_into_the_new_chat_and_named_in_send_message() -> None:
    """The files go into the chat created for the question; send_message names their ids."""
    async with FakeTrellis() as trellis:
        turn = await run(trellis, SendMessage("sum it", title="T", files=(CSV,)))
        (frame,) = [r.frame for r in trellis.actions("send_message")]
        assert isinstance(frame, dict)
        assert frame["upload_ids"] == [u.id for u in turn.uploaded]
        (upload,) = [trellis.uploads[u.id] for u in turn.uploaded]
        assert (upload.chat_id, upload.content) == (turn.chat_id, CSV.content)
        assert turn.files_refused is None


async def test_a_refused_upload_sends_the_question_without_files() -> None:
    """Trellis refusing the files (too large here) leaves the reason; the question still goes."""
    async with FakeTrellis() as trellis:
        trellis.max_upload_bytes = 4
        turn = await run(trellis, SendMessage("sum it", title="T", files=(CSV,)))
        (frame,) = [r.frame for r in trellis.actions("send_message")]
        assert isinstance(frame, dict)
        assert "upload_ids" not in frame
        assert turn.files_refused is not None
        assert "413" in turn.files_refused


async def test_past_the_uploads_limit_it_waits_once_then_asks_without_files() -> None:
    """A 429 on the upload is waited out once (Retry-After); still limited, the question goes."""
    async with FakeTrellis(enforce_rate_limits=True) as trellis:
        trellis.upload_limit = (0, 60.0)
        slept: list[float] = []
        turn = await run(trellis, SendMessage("sum it", title="T", files=(CSV,)), slept=slept)
        assert len([s for s in slept if s >= 1]) == 1
        (frame,) = [r.frame for r in trellis.actions("send_message")]
        assert isinstance(frame, dict)
        assert "upload_ids" not in frame
        assert turn.files_refused is not None
        assert "slow down" in turn.files_refused


async def test_a_seed_trellis_gets_the_question_alone() -> None:
    """A seed Trellis (no chat first, no uploads): no upload_ids, and the reason is kept."""
    async with FakeTrellis(version="seed") as trellis:
        turn = await run(trellis, SendMessage("sum it", files=(CSV,)), uploads=True)
        (frame,) = [r.frame for r in trellis.actions("send_message")]
        assert isinstance(frame, dict)
        assert "upload_ids" not in frame
        assert turn.files_refused == "this Trellis does not take files"
        assert trellis.uploads == {}


async def test_the_clients_own_host_uploads_the_files() -> None:
    """TrellisClient itself uploads a question's files into its chat and names them."""
    async with FakeTrellis(version="current") as trellis:
        turn = await run(trellis, SendMessage("sum it", files=(CSV,)), uploads=False)
        (frame,) = [r.frame for r in trellis.actions("send_message")]
        assert isinstance(frame, dict)
        assert len(frame["upload_ids"]) == 1
        assert turn.files_refused is None
        assert len(trellis.uploads) == 1


def test_send_message_names_upload_ids_only_with_a_chat() -> None:
    """upload_ids go in the frame with a chat id, and never without one (v-seed)."""
    with_chat = protocol.send_message("q", chat_id="c", upload_ids=("u1", "u2"))
    assert '"upload_ids": ["u1", "u2"]' in with_chat
    assert "upload_ids" not in protocol.send_message("q", upload_ids=("u1",))
    assert "upload_ids" not in protocol.send_message("q", chat_id="c")


async def test_uploads_are_paced_within_trellis_limit_per_token() -> None:
    """Thirty uploads a minute go at once; the thirty-first waits out the minute, not a 429."""
    async with FakeTrellis() as trellis:
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        token = trellis.make_token("member-1")
        rest = TrellisRest(trellis.api_url)
        client = TrellisClient(
            ws_url=trellis.ws_url, tokens=StaticToken(token), rest=rest, pace=True, sleep=sleep
        )
        try:
            chat_id = await rest.create_chat(token, title="T", integration_id=None)
            assert chat_id is not None
            for _ in range(31):
                await client._host.upload(None, chat_id, (CSV,))
        finally:
            await client.aclose()
            await rest.aclose()
    assert len(trellis.uploads) == 31
    [wait] = slept
    assert 55 < wait <= 60
