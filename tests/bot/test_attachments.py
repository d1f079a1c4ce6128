"""Files attached to a question: which go to Trellis, which are refused and why, and downloads."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.helpers import ALICE, BOT_USER, CHANNEL, answered, body, buttons, questions, replies
from trellis_slack.bot import attachments
from trellis_slack.bot.app import Bot
from trellis_slack.errors import SlackRefused
from trellis_slack.fakes.slack_humans import HumanFile
from trellis_slack.fakes.slack_server import FakeSlack
from trellis_slack.fakes.trellis_server import FakeTrellis, Question, Step, answer
from trellis_slack.slack.blocks import RETRY_ACTION
from trellis_slack.slack.events import SlackFile
from trellis_slack.slack.web import SlackIO, web_client
from trellis_slack.trellis.uploads import MAX_UPLOAD_BYTES

MENTION = f"<@{BOT_USER}>"
CSV = b"region,total\nnorth,3\nsouth,4\n"


def slack_file(name: str, mimetype: str | None, size: int | None = 10) -> SlackFile:
    return SlackFile(f"F_{name}", name, mimetype, size, f"https://files.slack.com/{name}")


def test_plan_sends_what_trellis_takes_and_says_why_for_the_rest() -> None:
    """Unsupported type, too large, past five: each refused with its reason; the rest are sent."""
    files = [
        slack_file("a.csv", "text/csv"),
        slack_file("notes.txt", "text/plain"),
        slack_file("huge.xlsx", None, size=MAX_UPLOAD_BYTES + 1),
        *(slack_file(f"p{i}.png", "image/png") for i in range(5)),
    ]
    chosen = attachments.plan(files)
    assert [f.name for f, _ in chosen.send] == ["a.csv", "p0.png", "p1.png", "p2.png", "p3.png"]
    assert [(r.name, r.reason) for r in chosen.refused] == [
        ("notes.txt", attachments.UNSUPPORTED),
        ("huge.xlsx", attachments.TOO_LARGE),
        ("p4.png", attachments.TOO_MANY),
    ]


@pytest.mark.parametrize(
    ("name", "mimetype", "expected"),
    [
        ("data.csv", "text/plain", "text/csv"),
        ("book.xlsx", "application/octet-stream", attachments._XLSX),
        ("photo.JPG", None, "image/jpeg"),
        ("scan.pdf", "application/pdf", "application/pdf"),
        ("trick.csv", "image/gif", None),
        ("old.xls", "application/vnd.ms-excel", None),
    ],
)
def test_the_type_trellis_gets(name: str, mimetype: str | None, expected: str | None) -> None:
    """Slack's type when Trellis takes it; else the extension, for generic types only."""
    assert attachments.mime_type(slack_file(name, mimetype)) == expected


def test_the_refusal_line_names_each_file_and_why() -> None:
    """One line names each refused file (escaped) with its reason; nothing refused, no line."""
    refused = [
        attachments.Refused("<b>*x*.txt", attachments.UNSUPPORTED),
        attachments.Refused("big.csv", attachments.TOO_LARGE),
    ]
    line = attachments.refusal_line(refused, sent_any=True)
    assert line is not None
    assert "*&lt;b&gt;x.txt*" in line
    assert attachments.UNSUPPORTED in line
    assert "*big.csv*" in line
    assert "with the other files" in line
    assert attachments.refusal_line([], sent_any=False) is None


@pytest.fixture
async def slack_io(slack: FakeSlack) -> AsyncIterator[SlackIO]:
    async with aiohttp.ClientSession() as session:
        yield SlackIO(web_client(slack.bot_token, slack.api_url, session))


async def test_a_download_carries_the_bot_token_and_keeps_to_the_limit(
    slack: FakeSlack, slack_io: SlackIO
) -> None:
    """url_private is fetched with the bot token; past the limit it is refused, not kept."""
    await slack.post_with_files(CHANNEL, ALICE, "see", [HumanFile("sales.csv", CSV)])
    [message] = [m for m in slack.messages(CHANNEL) if m.get("files")]
    url = message["files"][0]["url_private"]
    assert await slack_io.download(url, limit=1024) == CSV
    with pytest.raises(SlackRefused) as info:
        await slack_io.download(url, limit=len(CSV) - 1)
    assert info.value.error == "file_too_large"


async def test_a_download_never_sends_the_token_elsewhere(slack_io: SlackIO) -> None:
    """A url_private on another host is refused before any request (the token stays home)."""
    with pytest.raises(SlackRefused) as info:
        await slack_io.download("https://evil.example.com/f.csv", limit=1024)
    assert info.value.error == "not_slack_url"


async def test_the_fake_serves_files_only_with_the_bot_token(slack: FakeSlack) -> None:
    """As Slack does, url_private answers 403 without the bot token."""
    await slack.post_with_files(CHANNEL, ALICE, "see", [HumanFile("sales.csv", CSV)])
    [message] = [m for m in slack.messages(CHANNEL) if m.get("files")]
    url = message["files"][0]["url_private"]
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 403


async def test_an_unsupported_file_is_named_and_the_question_still_goes(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A .txt with the question: one line says which and why, Trellis answers, both go with it."""
    trellis.responder = lambda q: answer("Totals: 7.")
    ts = await slack.post_with_files(
        CHANNEL,
        ALICE,
        f"{MENTION} totals?",
        [HumanFile("notes.txt", b"hello"), HumanFile("sales.csv", CSV)],
    )
    await answered(slack, CHANNEL, ts, "Totals: 7.")
    lines = [body(m) for m in replies(slack, CHANNEL, ts)]
    [line] = [text for text in lines if "notes.txt" in text]
    assert attachments.UNSUPPORTED in line
    assert "sales.csv" not in line
    assert [q.get("message") for q in questions(trellis)] == ["totals?"]
    # The line is one of the answer's posts: deleting the question removes it with the answer.
    await slack.delete(CHANNEL, ts)
    await slack.wait_for(lambda: replies(slack, CHANNEL, ts) == [])


async def test_a_csv_with_the_question_reaches_trellis_with_it(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A CSV attached to the mention is uploaded into the chat and named in the question."""
    trellis.responder = lambda q: answer("Totals: 7.")
    ts = await slack.post_with_files(
        CHANNEL, ALICE, f"{MENTION} totals?", [HumanFile("sales.csv", CSV)]
    )
    await answered(slack, CHANNEL, ts, "Totals: 7.")
    [frame] = questions(trellis)
    assert len(frame["upload_ids"]) == 1
    assert len(trellis.uploads) == 1
    assert not any("did not take" in body(m) for m in replies(slack, CHANNEL, ts))


async def test_retry_asked_anew_sends_the_questions_file_again(
    slack: FakeSlack, trellis: FakeTrellis, bot: Bot
) -> None:
    """A failed question with a CSV, Retried after a follow-up: the CSV goes with it again."""
    asked: list[str] = []

    def respond(q: Question) -> list[Step]:
        asked.append(q.text)
        if asked.count("totals?") == 1 and q.text == "totals?":
            return [Step.error("The query timed out.", retryable=True)]
        return answer(f"Read {len(q.files)} file(s) for {q.text}")

    trellis.responder = respond
    ts = await slack.post_with_files(
        CHANNEL, ALICE, f"{MENTION} totals?", [HumanFile("sales.csv", CSV)]
    )
    [failed] = await slack.wait_for(
        lambda: [m for m in replies(slack, CHANNEL, ts) if RETRY_ACTION in buttons(m)] or None
    )
    await slack.post(CHANNEL, ALICE, "and by region?", thread_ts=ts)
    await answered(slack, CHANNEL, ts, "Read 0 file(s) for and by region?")
    # With a later question in the chat, Retry asks anew (an edit would drop the follow-up).
    await slack.click(CHANNEL, failed["ts"], RETRY_ACTION, user=ALICE)
    await answered(slack, CHANNEL, ts, "Read 1 file(s) for totals?")
    sent = [q for q in questions(trellis) if q.get("message") == "totals?"]
    assert len(sent) == 2
    assert all(len(q["upload_ids"]) == 1 for q in sent)
    assert len(trellis.uploads) == 2
