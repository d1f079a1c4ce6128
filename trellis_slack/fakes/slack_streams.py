"""A streamed message in the fake Slack: its chunks checked as Slack checks them, and what it shows."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from trellis_slack.fakes.slack_content import MAX_MARKDOWN, block_problems, with_block_ids
from trellis_slack.fakes.slack_model import FakeFile, JsonDict

__all__ = [
    "CHUNK_TYPES",
    "DEFAULT_STREAM_LIFETIME",
    "DISPLAY_MODES",
    "MAX_STREAM_BLOCKS",
    "TASK_STATUSES",
    "Stream",
    "StreamState",
    "chunk_problems",
]

#: The chunk types ``chat.*Stream`` accept (Slack's docs and slack-sdk's ``Chunk`` models).
CHUNK_TYPES: Final = frozenset({"markdown_text", "task_update", "plan_update", "blocks"})
#: A ``task_update`` chunk's ``status``.
TASK_STATUSES: Final = frozenset({"pending", "in_progress", "complete", "error"})
#: ``task_display_mode`` of ``chat.startStream`` (``timeline`` is the default).
DISPLAY_MODES: Final = frozenset({"timeline", "plan"})
#: Blocks sent in ``blocks`` chunks over a stream, and separately in ``stopStream``'s ``blocks``.
MAX_STREAM_BLOCKS: Final = 50
#: Seconds a stream lives before Slack ends it (reported: about five minutes).
DEFAULT_STREAM_LIFETIME: Final = 300.0

StreamState = Literal["streaming", "stopped", "expired"]


def _problem(message: str, pointer: str) -> str:
    return f"[ERROR] {message} [json-pointer:{pointer}]"


def _task_problems(chunk: JsonDict, pointer: str) -> list[str]:
    problems: list[str] = []
    for key in ("id", "title"):
        if not isinstance(chunk.get(key), str) or not chunk[key]:
            problems.append(_problem(f"missing required field: {key}", pointer))
    if chunk.get("status") not in TASK_STATUSES:
        allowed = ", ".join(sorted(TASK_STATUSES))
        problems.append(_problem(f"status must be one of: {allowed}", f"{pointer}/status"))
    for key in ("details", "output"):
        if key in chunk and not isinstance(chunk[key], str):
            problems.append(_problem("must be a string", f"{pointer}/{key}"))
    sources = chunk.get("sources", [])
    if not isinstance(sources, list):
        return [*problems, _problem("must be an array", f"{pointer}/sources")]
    for i, source in enumerate(sources):
        if not isinstance(source, dict) or source.get("type") != "url" or not source.get("url"):
            problems.append(_problem("must be a url source", f"{pointer}/sources/{i}"))
    return problems


def chunk_problems(
    args: JsonDict, files: Mapping[str, FakeFile] | None = None
) -> tuple[str, list[str]] | None:
    """Why Slack would refuse one call's ``markdown_text`` and ``chunks``: ``(error, reasons)``.

    ``msg_too_long`` when the call carries more than 12,000 characters of Markdown,
    ``invalid_blocks`` for a ``blocks`` chunk Slack would refuse, ``invalid_arguments`` else.
    """
    chunks = args.get("chunks")
    if chunks is None:
        chunks = []
    if not isinstance(chunks, list):
        return "invalid_arguments", [_problem("must be an array", "/chunks")]
    problems: list[str] = []
    markdown = args.get("markdown_text")
    if markdown is not None and not isinstance(markdown, str):
        problems.append(_problem("must be a string", "/markdown_text"))
    length = len(markdown) if isinstance(markdown, str) else 0
    for i, chunk in enumerate(chunks):
        pointer = f"/chunks/{i}"
        kind = chunk.get("type") if isinstance(chunk, dict) else None
        if not isinstance(chunk, dict) or kind not in CHUNK_TYPES:
            problems.append(_problem(f"unsupported chunk type: {kind}", f"{pointer}/type"))
        elif kind == "markdown_text":
            if not isinstance(chunk.get("text"), str):
                problems.append(_problem("missing required field: text", pointer))
            else:
                length += len(chunk["text"])
        elif kind == "task_update":
            problems += _task_problems(chunk, pointer)
        elif kind == "plan_update" and not isinstance(chunk.get("title"), str):
            problems.append(_problem("missing required field: title", pointer))
        elif kind == "blocks":
            blocks = chunk.get("blocks")
            if reasons := block_problems(blocks, max_blocks=MAX_STREAM_BLOCKS, files=files):
                return "invalid_blocks", reasons
    if problems:
        return "invalid_arguments", problems
    if length > MAX_MARKDOWN:
        return "msg_too_long", [_problem(f"must be less than {MAX_MARKDOWN + 1} characters", "")]
    return None


@dataclass(slots=True)
class Stream:
    """One streamed message: what it shows so far, and whether it still streams.

    Tests read it through ``FakeSlack.stream_of(ts)`` (a copy): ``markdown`` so far, ``tasks``
    by id with their latest fields (``status`` …) in the order they first came, the plan's
    title, the blocks sent as chunks and the final ``stopStream`` blocks, every chunk as it
    came, and ``state``.
    """

    channel: str
    ts: str
    thread_ts: str
    started: float
    task_display_mode: str = "timeline"
    recipient_user_id: str | None = None
    recipient_team_id: str | None = None
    state: StreamState = "streaming"
    markdown: str = ""
    tasks: dict[str, JsonDict] = field(default_factory=dict)
    plan_title: str | None = None
    chunk_blocks: list[JsonDict] = field(default_factory=list)
    final_blocks: list[JsonDict] = field(default_factory=list)
    chunks: list[JsonDict] = field(default_factory=list)

    @property
    def streaming(self) -> bool:
        """Whether appends are still accepted."""
        return self.state == "streaming"

    def task_statuses(self) -> dict[str, str]:
        """Each task's latest status, by id."""
        return {task_id: str(task["status"]) for task_id, task in self.tasks.items()}

    def blocks_after(self, args: JsonDict) -> int:
        """How many ``blocks`` chunks the stream would hold after this call."""
        extra = sum(
            len(c.get("blocks") or [])
            for c in args.get("chunks") or []
            if isinstance(c, dict) and c.get("type") == "blocks"
        )
        return len(self.chunk_blocks) + extra

    def message_blocks_after(self, args: JsonDict, final: object = None) -> list[Any]:
        """The blocks the message would hold after this call (``final``: ``stopStream``'s)."""
        added = [
            block
            for chunk in args.get("chunks") or []
            if isinstance(chunk, dict) and chunk.get("type") == "blocks"
            for block in chunk.get("blocks") or []
        ]
        ending = final if isinstance(final, list) else self.final_blocks
        return [*self.chunk_blocks, *added, *ending]

    def apply(self, args: JsonDict) -> None:
        """Add one call's ``markdown_text`` and ``chunks`` (already checked)."""
        if isinstance(args.get("markdown_text"), str):
            self.markdown += args["markdown_text"]
            self.chunks.append({"type": "markdown_text", "text": args["markdown_text"]})
        for chunk in args.get("chunks") or []:
            self.chunks.append(copy.deepcopy(chunk))
            kind = chunk["type"]
            if kind == "markdown_text":
                self.markdown += chunk["text"]
            elif kind == "task_update":
                known = self.tasks.setdefault(chunk["id"], {})
                known.update({k: copy.deepcopy(v) for k, v in chunk.items() if k != "type"})
            elif kind == "plan_update":
                self.plan_title = chunk["title"]
            elif kind == "blocks":
                self.chunk_blocks += with_block_ids(list(chunk["blocks"]))

    def message_fields(self) -> JsonDict:
        """What the message in the thread shows now.

        ``text`` is the Markdown so far, ``blocks`` the ``blocks`` chunks then ``stopStream``'s
        blocks, ``chunks`` every chunk in order (task cards included), ``streaming_state``
        ``in_progress`` or ``completed`` (the fake's names: Slack documents the field only).
        """
        blocks: list[Any] = copy.deepcopy(self.chunk_blocks) + copy.deepcopy(self.final_blocks)
        return {
            "text": self.markdown,
            "blocks": blocks,
            "chunks": copy.deepcopy(self.chunks),
            "streaming_state": "in_progress" if self.streaming else "completed",
            "task_display_mode": self.task_display_mode,
        }
