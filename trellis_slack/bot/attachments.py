"""Files attached to a question: which go to Trellis, which are refused and why, and fetching them.

Trellis takes at most `MAX_UPLOAD_FILES` files with a question, each at most `MAX_UPLOAD_BYTES`,
of the `UPLOAD_TYPES` (PDF, CSV, XLSX, PNG, JPEG). `plan` sorts a message's files by those
rules (pure), `fetch` downloads the ones to send from Slack into memory (never to disk), and
`refusal_line` says in one line which files were left out and why. The question itself always
goes on, with the files that could be sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Final, Protocol

from trellis_slack.errors import SlackError, SlackRefused, StateError
from trellis_slack.slack.events import SlackFile
from trellis_slack.store.base import Store
from trellis_slack.trellis.uploads import (
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_FILES,
    UPLOAD_TYPES,
    FileToUpload,
)

__all__ = [
    "Attachments",
    "Downloader",
    "Plan",
    "Refused",
    "fetch",
    "plan",
    "refusal_line",
]

log = logging.getLogger(__name__)

_XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: A file's type by its extension, when Slack's ``mimetype`` is missing or generic.
_BY_EXTENSION: Final = {
    "pdf": "application/pdf",
    "csv": "text/csv",
    "xlsx": _XLSX,
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
}
_MEGABYTES: Final = MAX_UPLOAD_BYTES // (1024 * 1024)

UNSUPPORTED: Final = "Trellis takes only PDF, CSV, XLSX, PNG and JPEG files"
TOO_LARGE: Final = f"it is larger than {_MEGABYTES} MB, Trellis's limit for a file"
TOO_MANY: Final = f"Trellis takes at most {MAX_UPLOAD_FILES} files with a question"
NO_LINK: Final = "Slack did not give me a way to download it"
NOT_DOWNLOADED: Final = "I could not download it from Slack"


@dataclass(frozen=True, slots=True)
class Refused:
    """A file left out of the question, and why (in words for the thread)."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    """A message's files sorted: those to send (with the type Trellis gets) and those refused."""

    send: tuple[tuple[SlackFile, str], ...]
    refused: tuple[Refused, ...]


def mime_type(file: SlackFile) -> str | None:
    """The type Trellis will get for ``file``: Slack's when Trellis takes it, else by extension."""
    given = (file.mimetype or "").split(";")[0].strip().lower()
    if given in UPLOAD_TYPES:
        return given
    extension = file.name.rsplit(".", 1)[-1].lower() if "." in file.name else ""
    guessed = _BY_EXTENSION.get(extension)
    # Slack reports some CSVs as text/plain or the old Excel type; an image is never a CSV.
    if guessed is not None and (not given or given.startswith(("text/", "application/"))):
        return guessed
    return None


def plan(files: Sequence[SlackFile]) -> Plan:
    """Which files go to Trellis and which are refused, in the order they were attached."""
    send: list[tuple[SlackFile, str]] = []
    refused: list[Refused] = []
    for file in files:
        kind = mime_type(file)
        if kind is None:
            refused.append(Refused(file.name, UNSUPPORTED))
        elif file.size is not None and file.size > MAX_UPLOAD_BYTES:
            refused.append(Refused(file.name, TOO_LARGE))
        elif file.url_private is None:
            refused.append(Refused(file.name, NO_LINK))
        elif len(send) >= MAX_UPLOAD_FILES:
            refused.append(Refused(file.name, TOO_MANY))
        else:
            send.append((file, kind))
    return Plan(tuple(send), tuple(refused))


class Downloader(Protocol):
    """Something that downloads a Slack file into memory within a limit (`SlackIO`)."""

    async def download(self, url: str, *, limit: int) -> bytes:
        """The file's bytes; raises ``SlackRefused``/``SlackUnavailable`` as `SlackIO` does."""
        ...


async def fetch(
    slack: Downloader, chosen: Plan, *, limit: int = MAX_UPLOAD_BYTES
) -> tuple[tuple[FileToUpload, ...], tuple[Refused, ...]]:
    """Download the files to send, one at a time, into memory; a failed one is refused instead."""
    files: list[FileToUpload] = []
    refused: list[Refused] = list(chosen.refused)
    for file, kind in chosen.send:
        assert file.url_private is not None  # plan() refused the others
        try:
            content = await slack.download(file.url_private, limit=limit)
        except SlackRefused as exc:
            log.warning("file %s not downloaded: %s", file.id, exc.error)
            too_large = exc.error == "file_too_large"
            refused.append(Refused(file.name, TOO_LARGE if too_large else NOT_DOWNLOADED))
            continue
        except SlackError as exc:
            log.warning("file %s not downloaded: %s", file.id, type(exc).__name__)
            refused.append(Refused(file.name, NOT_DOWNLOADED))
            continue
        files.append(FileToUpload(file.name, kind, content))
    return tuple(files), tuple(refused)


def refusal_line(refused: Sequence[Refused], *, sent_any: bool) -> str | None:
    """One line for the thread naming each file left out and why; None when none was."""
    if not refused:
        return None
    parts = "; ".join(f"*{_escape(r.name)}*: {r.reason}" for r in refused)
    going = "with the other files" if sent_any else "without them"
    noun = "this file" if len(refused) == 1 else "these files"
    return f"I could not pass {noun} on to Trellis ({parts}), so I asked {going}."


def _escape(name: str) -> str:
    """A file name safe inside mrkdwn (no mentions, links or stray emphasis)."""
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
        name = name.replace(char, entity)
    return name.replace("*", "").strip() or "a file"


#: Questions whose files are remembered in memory until their turn (beyond it, the store).
_FRESH_MAX = 10_000


class Attachments:
    """The files of questions, from intake to their turn and to any later Retry.

    Their links (Slack's ``url_private``, name, type, size; never their content) are kept in
    the store with the question, so a Retry asked anew, a restart, or another replica taking the
    question over fetches the same files again. A store that cannot be reached loses only the
    files: the question goes on without them.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        #: The files of questions this process took in and has not asked yet (none: ``()``), so
        #: the usual turn reads nothing from the store; the others (a Retry, a takeover) do.
        self._fresh: dict[tuple[str, str], tuple[SlackFile, ...]] = {}

    async def hold(self, channel_id: str, ts: str, files: Sequence[SlackFile]) -> None:
        """Keep a question's files (their links) for its turn, and for any later one."""
        self._fresh[channel_id, ts] = tuple(files)
        if len(self._fresh) > _FRESH_MAX:  # never asked (deleted while it waited): the store has it
            del self._fresh[next(iter(self._fresh))]
        if not files:
            return
        links = json.dumps([asdict(f) for f in files])
        try:
            await self.store.save_files(channel_id, ts, links)
        except StateError as exc:
            log.warning("the files of %s could not be kept: %s", ts, exc)

    async def of(self, channel_id: str, ts: str) -> tuple[SlackFile, ...]:
        """The question's files; empty when it had none (or they cannot be read)."""
        fresh = self._fresh.pop((channel_id, ts), None)
        if fresh is not None:
            return fresh
        try:
            links = await self.store.files_of(channel_id, ts)
        except StateError as exc:
            log.warning("the files of %s could not be read: %s", ts, exc)
            return ()
        if links is None:
            return ()
        try:
            return tuple(SlackFile(**item) for item in json.loads(links))
        except (TypeError, ValueError):
            log.warning("the files kept for %s could not be read", ts)
            return ()
