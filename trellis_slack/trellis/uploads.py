"""What Trellis takes as uploads: its limits, a file to send, and what it answers for each."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

from trellis_slack.errors import TrellisAPIError, TrellisAuthError, TrellisError, TrellisRateLimited

__all__ = [
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_FILES",
    "UPLOADS_PER_MINUTE",
    "UPLOAD_TYPES",
    "FileToUpload",
    "Uploaded",
    "attach",
    "parse_upload",
]

logger = logging.getLogger(__name__)

#: Why a question's files went without it on a Trellis that takes none (v-seed).
NOT_TAKEN: Final = "this Trellis does not take files"

#: Trellis's uploads limits: files a request, bytes a file, and the MIME types it takes.
MAX_UPLOAD_FILES: Final = 5
MAX_UPLOAD_BYTES: Final = 30 * 1024 * 1024
UPLOAD_TYPES: Final[frozenset[str]] = frozenset(
    {
        "application/pdf",
        "text/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "image/png",
        "image/jpeg",
    }
)

#: Upload requests Trellis takes a minute per token (then ``429`` with ``Retry-After``).
UPLOADS_PER_MINUTE: Final = 30


@dataclass(frozen=True, slots=True)
class FileToUpload:
    """A file held in memory, to upload; ``repr`` leaves its content out."""

    filename: str
    mime_type: str
    content: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Uploaded:
    """A file Trellis took: the id to name in ``send_message``'s ``upload_ids``."""

    id: str
    filename: str | None
    mime_type: str | None
    file_size: int | None


def parse_upload(item: object) -> Uploaded | None:
    """One entry of the answer's ``uploads``; None when it names no id."""
    if not isinstance(item, dict):
        return None
    upload_id = item.get("id")
    if isinstance(upload_id, int) and not isinstance(upload_id, bool):
        upload_id = str(upload_id)
    if not isinstance(upload_id, str) or not upload_id:
        return None
    name, mime, size = item.get("filename"), item.get("mime_type"), item.get("file_size")
    return Uploaded(
        upload_id,
        name if isinstance(name, str) else None,
        mime if isinstance(mime, str) else None,
        size if isinstance(size, int) and not isinstance(size, bool) else None,
    )


async def attach(
    upload: Callable[[], Awaitable[tuple[Uploaded, ...]]],
    sleep: Callable[[float], Awaitable[None]],
) -> tuple[tuple[Uploaded, ...], str | None]:
    """Run ``upload``: the files Trellis took, or none and why (the question goes on without them).

    Past Trellis's uploads limit (``429``) it waits ``Retry-After`` once and tries again. A
    refused token still raises (the question would be refused too); any other Trellis failure
    is the reason.
    """
    for attempt in (1, 2):
        try:
            return await upload(), None
        except TrellisAuthError:
            raise
        except TrellisRateLimited as exc:
            if attempt == 2:
                return (), str(exc)
            delay = exc.retry_after if exc.retry_after is not None else 1.0
            logger.info("uploads rate limited; trying again in %.2f s", delay)
            await sleep(delay)
        except TrellisAPIError as exc:
            return (), NOT_TAKEN if exc.status == 404 else str(exc)
        except TrellisError as exc:
            return (), str(exc)
    raise AssertionError("unreachable")
