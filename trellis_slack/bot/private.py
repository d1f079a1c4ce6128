"""Answers only their asker sees (``PRIVATE_ANSWERS``): ephemeral in the thread, or in their DM.

With ``TRELLIS_API_KEY`` an answer is built on the asker's own Trellis permissions; in a channel,
``off`` would show it to everyone there. Who sees what (the README's "Private answers" says the
same):

* ``ephemeral``: the asker sees "Working on it…" (with Stop), then the answer — charts and tables
  inline — in the thread, as messages only they can see, with a **Share in thread** button that
  posts it for everyone there, saying who shared it. Slack cannot edit an ephemeral message, so
  nothing streams; a table's full CSV is not attached (a file would be seen by the channel).
  Slack forgets ephemeral messages when the asker's Slack reloads: the answer is kept in the store
  so Share still works, but to read it again they ask again (or choose ``dm``).
* ``dm``: the answer goes to the asker's DM with the bot — a first line naming the question's
  channel with a link to it, the answer streamed below it — and feedback, "Show steps", Stop and
  Retry work there as in the thread. When Slack will not open that DM, the answer is ephemeral
  instead: it is never shown to the channel.
* Everyone else in the channel sees one short line under the question: that the bot is answering the
  asker privately (with a link to the DM answer, which only the asker can open). Edits, deletions
  and Retry act on the question as usual; deleting the question removes that line, not the
  asker's private copy.

DMs are private already: the setting changes nothing there.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from trellis_slack.bot.posting import ThreadPoster, VisualPoster
from trellis_slack.bot.storing import best_effort
from trellis_slack.bot.views import WORKING, AnswerView, open_view
from trellis_slack.settings import PrivateAnswers
from trellis_slack.slack import blocks
from trellis_slack.slack.answer import compose
from trellis_slack.slack.markdown import MAX_BLOCKS, escape_mrkdwn
from trellis_slack.slack.web import SlackIO
from trellis_slack.store.base import Store
from trellis_slack.store.records import PostKind

if TYPE_CHECKING:
    from trellis_slack.bot.asks import Ask
    from trellis_slack.bot.turn import TurnRunner

log = logging.getLogger(__name__)

Block = dict[str, Any]

#: The ``action_id`` of the Share button on an ephemeral answer.
SHARE_ACTION = "trellis_share"
PRIVATE_WORKING = f"{WORKING} Only you can see this answer."
#: What a Share click on an answer no longer kept (or never kept) says.
NOT_KEPT = "I no longer have that answer to share. Ask the question again to get it anew."
ALREADY_SHARED = "That answer is already shared in the thread."
NOT_YOURS = "Only the person who asked can share this answer."
SHARE_FAILED = "Slack did not let me share the answer in the thread. Please try again."


def private_mode(setting: PrivateAnswers, channel_id: str) -> PrivateAnswers:
    """Where an answer in ``channel_id`` goes: a DM (``D…``) is private already."""
    return "off" if channel_id.startswith("D") else setting


def share_button(question_ts: str) -> Block:
    """The Share button under an ephemeral answer; its ``value`` is the question's ts."""
    return {
        "type": "actions",
        "block_id": "trellis_share",
        "elements": [
            {
                "type": "button",
                "action_id": SHARE_ACTION,
                "text": {"type": "plain_text", "text": "Share in thread"},
                "value": question_ts,
                "accessibility_label": "Post this answer in the thread for everyone",
            }
        ],
    }


class WhisperView:
    """An answer in progress shown only to its asker: Slack cannot edit an ephemeral message,
    so it says it is working once, and each outcome is a new ephemeral message."""

    def __init__(self, slack: SlackIO, ask: Ask, ts: str) -> None:
        self.slack = slack
        self.ask = ask
        self.ts = ts

    def progress(self, status_line: str | None, streamed: str) -> None:
        return None

    def waiting(self, text: str) -> None:
        return None

    def visual(self, blocks: list[Block]) -> None:
        return None  # inline: the answer carries its charts and tables

    async def finish(self, body: blocks.Rendered | None, *, failed: bool = False) -> bool:
        if body is None:
            return True
        ask = self.ask
        shown = await self.slack.whisper(ask.channel_id, ask.question.user_id, body, ask.thread_ts)
        return shown is not None

    async def close(self) -> None:
        return None


class WhisperPoster(ThreadPoster):
    """Posts a turn's messages as ephemeral messages for the asker; nothing is recorded (Slack
    cannot delete an ephemeral message) but the answer itself, kept for Share."""

    attaches_files = False

    def __init__(self, slack: SlackIO, store: Store, ask: Ask) -> None:
        super().__init__(slack, store, ask.channel_id, ask.thread_ts, ask.question_ts)
        self.user_id = ask.question.user_id

    async def record(
        self, kind: PostKind, *, ts: str | None = None, file_id: str | None = None
    ) -> None:
        return None

    async def forget(self, ts: str) -> None:
        return None

    async def post(self, body: blocks.Rendered, kind: PostKind) -> str | None:
        return await self.slack.whisper(self.channel_id, self.user_id, body, self.thread_ts)

    async def answer(self, live: AnswerView, content: str, *, visuals: VisualPoster) -> int:
        """The answer as ephemeral messages, Share under the last; kept so Share can post it."""
        pieces = compose(visuals.blocks, await self.final_text(content))
        last = pieces[-1]
        pieces[-1] = blocks.Rendered(
            last.text, (*last.blocks, share_button(self.question_ts))[-MAX_BLOCKS:]
        )
        kept = json.dumps([{"text": p.text, "blocks": list(p.blocks)} for p in pieces])
        keep = self.store.keep_private_answer(self.channel_id, self.question_ts, kept)
        await best_effort(keep, "the private answer, for Share", None)
        lost = await self.post_pieces(pieces)
        await visuals.share_files()
        return lost


async def open_private(
    runner: TurnRunner, ask: Ask, status_ts: str | None
) -> tuple[ThreadPoster, AnswerView] | None:
    """Where the private answer to ``ask`` shows, and the one public line under the question.

    ``status_ts``: the question's public waiting note, which becomes that line.
    """
    slack, store = runner.slack, runner.store
    if ask.private == "dm":
        opened = await _open_dm(runner, ask)
        if opened is not None:
            poster, view, link = opened
            said = f"<@{ask.question.user_id}>, I'm answering you in a direct message."
            if link:
                said += f" <{link}|Open it>"
            await _say_in_thread(runner, ask, status_ts, blocks.note(said, emoji=":lock:"))
            return poster, view
        log.warning("Slack would not open a DM with the asker: answering ephemerally instead")
    whisper = WhisperPoster(slack, store, ask)
    first = blocks.working(PRIVATE_WORKING, question_ts=ask.question_ts)
    ts = await slack.whisper(ask.channel_id, ask.question.user_id, first, ask.thread_ts)
    if ts is None:
        return None
    said = f"I'm answering <@{ask.question.user_id}> privately: only they see the answer."
    await _say_in_thread(runner, ask, status_ts, blocks.note(said, emoji=":lock:"))
    return whisper, WhisperView(slack, ask, ts)


async def _say_in_thread(
    runner: TurnRunner, ask: Ask, status_ts: str | None, body: blocks.Rendered
) -> None:
    """The public line under the question (the waiting note becomes it), recorded as a note."""
    poster = ThreadPoster(
        runner.slack, runner.store, ask.channel_id, ask.thread_ts, ask.question_ts
    )
    if status_ts is not None and await runner.slack.update(ask.channel_id, status_ts, body):
        await poster.record(PostKind.NOTE, ts=status_ts)
        return
    if status_ts is not None:
        await poster.forget(status_ts)
    await poster.post(body, PostKind.NOTE)


async def _open_dm(
    runner: TurnRunner, ask: Ask
) -> tuple[ThreadPoster, AnswerView, str | None] | None:
    """The answer's place in the asker's DM: a first line naming the question, the answer below."""
    slack, store = runner.slack, runner.store
    dm = await slack.open_dm(ask.question.user_id)
    if dm is None:
        return None
    asked_at = await slack.permalink(ask.channel_id, ask.question_ts)
    quoted = escape_mrkdwn(" ".join(ask.question.text.split())[:300])
    line = f"You asked in <#{ask.channel_id}>: _{quoted}_"
    if asked_at:
        line += f" (<{asked_at}|see the thread>)"
    header = await slack.post(dm, None, blocks.note(line, emoji=":speech_balloon:"))
    if header is None:
        return None
    poster = ThreadPoster(
        slack,
        store,
        dm,
        header,
        ask.question_ts,
        question_channel=ask.channel_id,
        button_value=ask.button_value,
    )
    view = await open_view(
        slack,
        channel=dm,
        thread_ts=header,
        question_ts=ask.button_value,
        recipient=None,
        native=runner.native and dm not in runner.no_streams,
        interval=runner.update_interval,
        refused=runner.no_streams,
        status_refresh=runner.status_refresh,
        status_after=runner.status_after,
    )
    if view is None:
        return None
    return poster, view, await slack.permalink(dm, header)


class Sharing:
    """The Share button: the asker posts their private answer in the thread, once."""

    def __init__(self, *, slack: SlackIO, store: Store) -> None:
        self.slack = slack
        self.store = store

    async def on_click(
        self, *, channel_id: str, user_id: str, question_ts: str, thread_ts: str | None
    ) -> None:
        """Post the kept answer for everyone in the thread; the clicker is told if it cannot."""
        question = await self.store.question(channel_id, question_ts)
        where = question.thread_ts if question else thread_ts
        kept = await self.store.private_answer(channel_id, question_ts)
        if question is None or kept is None:
            await self.slack.ephemeral(channel_id, user_id, NOT_KEPT, where)
            return
        if question.user_id != user_id:
            await self.slack.ephemeral(channel_id, user_id, NOT_YOURS, where)
            return
        if not await self.store.claim_share(channel_id, question_ts, user_id):
            await self.slack.ephemeral(channel_id, user_id, ALREADY_SHARED, where)
            return
        poster = ThreadPoster(self.slack, self.store, channel_id, question.thread_ts, question_ts)
        pieces = _shared(kept, user_id)
        if await poster.post_pieces(pieces) == len(pieces):  # not one part could be posted
            await self.store.release_share(channel_id, question_ts)
            await self.slack.ephemeral(channel_id, user_id, SHARE_FAILED, where)


def _private_only(block: Block) -> bool:
    """Share and Show steps stay with the asker: the steps (SQL, tables) come from their own
    Trellis permissions, which sharing the answer does not share."""
    if block.get("block_id") == "trellis_share":
        return True
    elements = block.get("elements")
    return isinstance(elements, list) and any(
        isinstance(e, dict) and e.get("action_id") == blocks.SHOW_STEPS_ACTION for e in elements
    )


def _shared(kept: str, user_id: str) -> list[blocks.Rendered]:
    """The kept answer as it is shared: who shared it first, and no Share button."""
    pieces = [
        blocks.Rendered(
            str(p.get("text", "")),
            tuple(b for b in p.get("blocks", ()) if not _private_only(b)),
        )
        for p in json.loads(kept)
        if isinstance(p, dict)
    ]
    if pieces:
        first = pieces[0]
        credit = {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f":lock: Shared by <@{user_id}>"}],
        }
        pieces[0] = blocks.Rendered(first.text, (credit, *first.blocks)[:MAX_BLOCKS])
    return pieces
