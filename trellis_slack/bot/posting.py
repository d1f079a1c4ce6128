"""Posts a turn's pieces into its thread: charts and tables in arrival order, then the answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from trellis_slack.bot.seams import VisualizationRenderer
from trellis_slack.bot.storing import best_effort

if TYPE_CHECKING:
    from trellis_slack.bot.views import AnswerView
from trellis_slack.slack import blocks
from trellis_slack.slack.answer import chart_block, compose
from trellis_slack.slack.markdown import (
    SlackMessage,
    answer_messages,
    escape_mrkdwn,
    mrkdwn_section,
)
from trellis_slack.slack.web import SlackIO
from trellis_slack.store.base import Store
from trellis_slack.store.records import BotPost, PostKind
from trellis_slack.trellis.protocol import Visualization
from trellis_slack.viz.renderer import (
    ChartImage,
    NativeChart,
    Rendered,
    TableMessage,
    VisualizationNote,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T")

Block = dict[str, Any]


class ThreadPoster:
    """Everything one turn posts in its thread, each post recorded against its question."""

    #: Whether files (a table's full CSV) may be shared where this poster posts.
    attaches_files = True

    def __init__(
        self,
        slack: SlackIO,
        store: Store,
        channel_id: str,
        thread_ts: str,
        question_ts: str,
        *,
        question_channel: str | None = None,
        button_value: str | None = None,
    ) -> None:
        self.slack = slack
        self.store = store
        self.channel_id = channel_id
        self.thread_ts = thread_ts
        self.question_ts = question_ts
        #: Where the question was asked (``channel_id`` is where its answer goes).
        self.question_channel = question_channel or channel_id
        #: What the answer's buttons carry to name the question (`blocks.question_ref`).
        self.button_value = button_value or question_ts

    async def record(
        self, kind: PostKind, *, ts: str | None = None, file_id: str | None = None
    ) -> None:
        """Remember a post, so edits, deletions and Retry can remove it later."""
        post = BotPost(self.channel_id, self.question_ts, ts, file_id, kind)
        await best_effort(self.store.add_bot_post(post), "a post of the answer", None)

    async def forget(self, ts: str) -> None:
        """Delete one of the turn's messages, and its record once Slack has deleted it."""
        if await self.slack.delete(self.channel_id, ts):
            await best_effort(
                self.store.remove_bot_post(self.channel_id, ts=ts), "a deleted post", None
            )

    async def post(self, body: blocks.Rendered, kind: PostKind) -> str | None:
        """Post and record a message in the thread; None when Slack refused it."""
        ts = await self.slack.post(self.channel_id, self.thread_ts, body)
        if ts is not None:
            await self.record(kind, ts=ts)
        return ts

    async def final_text(self, content: str) -> list[SlackMessage]:
        """The answer's text as messages, with feedback buttons and, when kept, "Show steps"."""
        text = answer_messages(content, footer=blocks.feedback(self.button_value))
        steps = self.store.answer_steps(self.question_channel, self.question_ts)
        if await best_effort(steps, "the answer's steps", []):
            last = text[-1]
            text[-1] = replace(last, blocks=(*last.blocks, blocks.show_steps(self.button_value)))
        return text

    async def answer(self, live: AnswerView, content: str, *, visuals: VisualPoster) -> int:
        """Show the final answer, with its feedback buttons; returns how many parts Slack refused.

        Inline (native streaming): one message — charts, tables and text together — replacing the
        streamed one, split into consecutive messages only by Slack's limits (`slack.answer`).
        Otherwise a text-only answer replaces the working message (fewest calls, no flicker); when
        charts or tables were posted below it, it is deleted and the answer posted after them, so
        the thread reads top to bottom. A part Slack refuses as Markdown is posted again as plain
        text: never a lost answer.
        """
        text = await self.final_text(content)
        if visuals.inline:
            pieces = compose(visuals.blocks, text)
            posted_below = False
        else:
            pieces = [blocks.Rendered(m.text, m.blocks) for m in text]
            posted_below = visuals.posted
        if posted_below:
            await live.finish(None)
            await self.forget(live.ts)
        else:
            first, pieces = pieces[0], pieces[1:]
            shown = await live.finish(first)
            if not shown and visuals.inline and visuals.has_native:
                # Slack refused its own chart or table blocks: the answer in today's forms.
                log.warning("Slack refused the answer's native charts or tables; sending images")
                await visuals.without_native()
                first, *pieces = compose(visuals.blocks, text)
                shown = await self.slack.update(self.channel_id, live.ts, first)
            if shown or await self.slack.update(self.channel_id, live.ts, without_markdown(first)):
                await self.record(PostKind.ANSWER, ts=live.ts)  # updated in place
            else:
                # The working message cannot become the answer: remove it (its Stop button would
                # linger) and post the answer as new messages instead.
                await self.forget(live.ts)
                pieces.insert(0, first)
        lost = await self.post_pieces(pieces)
        await visuals.share_files()
        return lost

    async def post_pieces(self, pieces: Sequence[blocks.Rendered]) -> int:
        """Post the answer's messages in order; a part Slack refuses as Markdown goes again as
        plain text. How many parts could not be posted at all."""
        lost = 0
        for piece in pieces:
            if await self.post(piece, PostKind.ANSWER) is None and (
                await self.post(without_markdown(piece), PostKind.ANSWER) is None
            ):
                log.error("a part of the answer could not be posted")
                lost += 1
        return lost


class VisualPoster:
    """Renders visualizations concurrently, posts them into the thread in arrival order.

    The same visualization id twice is shown once.
    """

    def __init__(
        self,
        poster: ThreadPoster,
        renderer: VisualizationRenderer,
        *,
        inline: bool = False,
        on_blocks: Callable[[list[Block]], None] | None = None,
    ) -> None:
        self.poster = poster
        self.renderer = renderer
        #: Charts and tables go inside the answer (``blocks``), not in messages of their own.
        self.inline = inline
        self.on_blocks = on_blocks
        self.posted = False
        #: Inline: the answer's chart, table and note blocks, in the order Trellis sent them.
        self.blocks: list[Block] = []
        #: Inline: full tables (CSV) to share in the thread once the answer is shown.
        self._files: list[tuple[bytes, str, str]] = []
        #: Inline: what was kept, to rebuild without native blocks if Slack refuses them.
        self._items: list[Rendered] = []
        self._seen: set[str] = set()
        self._previous: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, viz: Visualization) -> None:
        if viz.viz_id in self._seen:
            log.info("visualization %s arrived twice; shown once", viz.viz_id)
            return
        self._seen.add(viz.viz_id)
        rendering = asyncio.create_task(self.renderer.render(viz.viz_id, viz.kind, viz.payload))
        task = asyncio.create_task(self._post_after(self._previous, rendering))
        self._previous = task
        self._tasks.append(task)

    async def _post_after(
        self, previous: asyncio.Task[None] | None, rendering: asyncio.Task[list[Rendered]]
    ) -> None:
        items = await rendering
        if previous is not None:
            await asyncio.wait([previous])
        for item in items:
            try:
                await self._post(item)
            except Exception:
                log.exception("a visualization could not be posted")

    async def _post(self, item: Rendered) -> None:
        if self.inline:
            await self._keep(item)
            return
        poster, slack = self.poster, self.poster.slack
        if isinstance(item, NativeChart):
            body = blocks.Rendered(item.title, (item.block, *_note_blocks(item.note)))
            if await poster.post(body, PostKind.TABLE):
                self.posted = True
            else:  # Slack would not draw it: the PNG instead
                for alt in await self.renderer.draw_instead(item):
                    await self._post(alt)
            return
        if isinstance(item, TableMessage) and item.native_blocks is not None:
            if await poster.post(blocks.Rendered(item.text, item.native_blocks), PostKind.TABLE):
                self.posted = True
                return
            item = replace(item, native_blocks=None)  # today's table block (and CSV) instead
        if isinstance(item, ChartImage):
            file_id = await slack.upload(
                poster.channel_id,
                poster.thread_ts,
                content=item.png,
                filename=item.filename,
                title=item.title,
                alt_text=item.alt_text,
                comment=item.note,
            )
            if file_id:
                self.posted = True
                await poster.record(PostKind.CHART, file_id=file_id)
        elif isinstance(item, TableMessage):
            if await poster.post(blocks.Rendered(item.text, item.blocks), PostKind.TABLE):
                self.posted = True
            if item.csv is not None and item.csv_filename:
                file_id = await slack.upload(
                    poster.channel_id,
                    poster.thread_ts,
                    content=item.csv,
                    filename=item.csv_filename,
                    title=f"{item.title} (full table)",
                )
                if file_id:
                    await poster.record(PostKind.FILE, file_id=file_id)
        elif isinstance(item, VisualizationNote) and await poster.post(
            blocks.note(item.text), PostKind.NOTE
        ):
            self.posted = True

    async def _keep(self, item: Rendered, *, show: bool = True) -> list[Block]:
        """Inline: upload a chart without sharing it, and keep its blocks for the answer."""
        poster, slack = self.poster, self.poster.slack
        kept: list[Block] = []
        if show:
            self._items.append(item)
        if isinstance(item, NativeChart):
            kept = [item.block, *_note_blocks(item.note)]
        elif isinstance(item, TableMessage) and item.native_blocks is not None:
            kept = list(item.native_blocks)
        elif isinstance(item, ChartImage):
            file_id = await slack.upload(
                None,
                None,
                content=item.png,
                filename=item.filename,
                title=item.title,
                alt_text=item.alt_text,
            )
            if file_id is None:
                kept = list(blocks.note(f"The chart “{item.title}” could not be uploaded.").blocks)
            else:
                await poster.record(PostKind.CHART, file_id=file_id)
                kept = [chart_block(file_id, title=item.title, alt_text=item.alt_text)]
                if item.note:
                    kept += list(blocks.note(item.note).blocks)
        elif isinstance(item, TableMessage):
            kept = list(item.blocks)
            if item.csv is not None and item.csv_filename:
                self._files.append((item.csv, item.csv_filename, f"{item.title} (full table)"))
        elif isinstance(item, VisualizationNote):
            kept = list(blocks.note(item.text).blocks)
        if show:
            self.blocks.extend(kept)
            if kept and self.on_blocks is not None:
                self.on_blocks(kept)
        return kept

    @property
    def has_native(self) -> bool:
        """Whether the answer holds blocks Slack draws itself (a workspace may refuse them)."""
        return any(
            isinstance(i, NativeChart) or (isinstance(i, TableMessage) and i.native_blocks)
            for i in self._items
        )

    async def without_native(self) -> None:
        """Inline: today's forms instead of Slack's native blocks (PNG charts, ``table`` blocks
        and CSVs), for a workspace that refused the answer with them."""
        items, self._items, self.blocks = self._items, [], []
        for item in items:
            alternatives: list[Rendered]
            if isinstance(item, NativeChart):
                alternatives = await self.renderer.draw_instead(item)
            elif isinstance(item, TableMessage):
                alternatives = [replace(item, native_blocks=None)]
            else:
                alternatives = [item]
            for alt in alternatives:
                self._items.append(alt)
                self.blocks.extend(await self._keep(alt, show=False))

    async def share_files(self) -> None:
        """Inline: share the full tables (CSV) in the thread, right after the answer."""
        poster = self.poster
        if not poster.attaches_files:
            self._files.clear()  # a file would be seen by everyone there: the table shows inline
            return
        for content, filename, title in self._files:
            file_id = await poster.slack.upload(
                poster.channel_id, poster.thread_ts, content=content, filename=filename, title=title
            )
            if file_id:
                await poster.record(PostKind.FILE, file_id=file_id)
        self._files.clear()

    async def drain(self) -> None:
        """Wait until everything added so far is posted."""
        if self._tasks:
            await asyncio.wait(self._tasks)

    def cancel(self) -> None:
        """Post nothing more (the answer was stopped or cut short)."""
        for task in self._tasks:
            task.cancel()


#: Blocks a refused answer is sent again without: what Slack may refuse that the text does not need
#: (an image whose file Slack has not finished processing, a chart or table block it will not draw).
_VISUAL_BLOCKS = frozenset({"image", "table", "data_table", "data_visualization"})


def without_markdown(piece: blocks.Rendered) -> blocks.Rendered:
    """The same answer text as plain mrkdwn sections, for when Slack refuses the formatted answer.

    Slack's markdown block is newer than its sections; should a workspace or a piece of Markdown
    make Slack refuse it, the reader gets the raw text rather than nothing: never a lost answer.
    Charts and tables go too (they may be what Slack refused), and a line says they could not
    be shown.
    """
    markdown = "\n\n".join(
        str(block.get("text", "")) for block in piece.blocks if block.get("type") == "markdown"
    )
    kept = [
        block
        for block in piece.blocks
        if block.get("type") != "markdown" and block.get("type") not in _VISUAL_BLOCKS
    ]
    dropped = any(block.get("type") in _VISUAL_BLOCKS for block in piece.blocks)
    note = (
        blocks.note("Slack would not show this answer's charts or tables.").blocks
        if dropped
        else ()
    )
    return blocks.Rendered(piece.text, (*note, *mrkdwn_section(escape_mrkdwn(markdown)), *kept))


def _note_blocks(note: str | None) -> tuple[Block, ...]:
    """A visualization's note for the reader, as blocks (none without a note)."""
    return blocks.note(note).blocks if note else ()
