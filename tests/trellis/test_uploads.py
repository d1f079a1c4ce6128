"""Tests for TrellisRest.upload against the local Trellis server and its uploads rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from trellis_slack.errors import TrellisAPIError, TrellisRateLimited
from trellis_slack.fakes.trellis_server import FakeChat, FakeTrellis
from trellis_slack.trellis.rest import TrellisRest
from trellis_slack.trellis.uploads import FileToUpload

CSV = FileToUpload("sales.csv", "text/csv", b"region,total\nnorth,3\n")
PNG = FileToUpload("chart.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"0" * 32)


@dataclass
class Setup:
    trellis: FakeTrellis
    rest: TrellisRest
    token: str
    chat: FakeChat


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    async with FakeTrellis() as trellis:
        trellis.chats["chat_1"] = chat = FakeChat("chat_1", "T", None, owner="member-1")
        rest = TrellisRest(trellis.api_url)
        try:
            yield Setup(trellis, rest, trellis.make_token("member-1"), chat)
        finally:
            await rest.aclose()


async def test_upload_returns_an_id_per_file_kept_in_the_chat(setup: Setup) -> None:
    """Each file uploaded gets an id; the fake keeps its bytes, name and type in that chat."""
    uploaded = await setup.rest.upload(setup.token, "chat_1", [CSV, PNG])
    assert [u.filename for u in uploaded] == ["sales.csv", "chart.png"]
    assert [u.file_size for u in uploaded] == [len(CSV.content), len(PNG.content)]
    kept = [setup.trellis.uploads[u.id] for u in uploaded]
    assert [(k.chat_id, k.mime_type, k.content) for k in kept] == [
        ("chat_1", "text/csv", CSV.content),
        ("chat_1", "image/png", PNG.content),
    ]


async def test_upload_of_nothing_makes_no_request(setup: Setup) -> None:
    """No files: no request at all."""
    assert await setup.rest.upload(setup.token, "chat_1", []) == ()
    assert setup.trellis.uploads == {}
    assert setup.trellis.upload_refusals == []


@pytest.mark.parametrize(
    ("change", "files", "status", "code"),
    [
        ("none", [CSV] * 6, 400, "TOO_MANY_FILES"),
        ("small", [CSV], 413, "FILE_TOO_LARGE"),
        ("none", [FileToUpload("a.txt", "text/plain", b"x")], 415, "UNSUPPORTED_FILE_TYPE"),
        ("other-chat", [CSV], 404, "CHAT_NOT_FOUND"),
    ],
)
async def test_upload_refusals_carry_trellis_code(
    setup: Setup, change: str, files: list[FileToUpload], status: int, code: str
) -> None:
    """Too many, too large, a type Trellis does not take, or another chat: refused, none kept."""
    if change == "small":
        setup.trellis.max_upload_bytes = 10
    chat_id = "chat_nope" if change == "other-chat" else "chat_1"
    with pytest.raises(TrellisAPIError) as info:
        await setup.rest.upload(setup.token, chat_id, files)
    assert (info.value.status, info.value.code) == (status, code)
    assert setup.trellis.uploads == {}


async def test_upload_past_the_rate_limit_is_rate_limited(setup: Setup) -> None:
    """Past the uploads a minute per token, a 429 with its Retry-After."""
    setup.trellis.enforce_rate_limits = True
    setup.trellis.upload_limit = (2, 60.0)
    await setup.rest.upload(setup.token, "chat_1", [CSV])
    await setup.rest.upload(setup.token, "chat_1", [CSV])
    with pytest.raises(TrellisRateLimited) as info:
        await setup.rest.upload(setup.token, "chat_1", [CSV])
    assert info.value.retry_after is not None
    assert info.value.retry_after >= 1


async def test_send_message_upload_ids_must_be_uploads_of_that_chat(setup: Setup) -> None:
    """The fake's rule for send_message: every upload id names an upload of that same chat."""
    (uploaded,) = await setup.rest.upload(setup.token, "chat_1", [CSV])
    other = FakeChat("chat_2", "T", None, owner="member-1")
    assert setup.trellis.upload_problem(setup.chat, [uploaded.id]) is None
    assert setup.trellis.upload_problem(setup.chat, None) is None
    problem = setup.trellis.upload_problem(other, [uploaded.id])
    assert problem is not None
    assert problem.code == "UPLOAD_NOT_FOUND"
    bad = setup.trellis.upload_problem(setup.chat, "upl_x")
    assert bad is not None
    assert bad.code == "INVALID_REQUEST"


async def test_seed_trellis_has_no_uploads_endpoint() -> None:
    """The seed version has no uploads: a 404 the caller can fall back on."""
    async with FakeTrellis(version="seed") as trellis:
        rest = TrellisRest(trellis.api_url)
        try:
            with pytest.raises(TrellisAPIError) as info:
                await rest.upload(trellis.make_token("m"), "chat_1", [CSV])
            assert info.value.status == 404
        finally:
            await rest.aclose()
