"""Store calls the glue can do without for a while: best effort now, or again until taken.

An answer in progress never waits on bookkeeping (`best_effort`); what must be recorded in the
end (a thread given back, a socket slot, how an answer ended) is tried again while the store is
away (`until_stored`), with a timer between tries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from trellis_slack.errors import StateError

__all__ = ["best_effort", "until_stored"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


async def best_effort(call: Awaitable[_T], what: str, default: _T) -> _T:
    """A store call an answer in progress can do without: when the store is unreachable, the
    answer still reaches Slack (never a lost answer); only the bookkeeping is missing, and
    that is logged."""
    try:
        return await call
    except StateError as exc:
        log.warning("could not record %s (the answer goes on): %s", what, exc)
        return default


async def until_stored(
    call: Callable[[], Awaitable[object]], what: str, *, every: float, tries: int | None = None
) -> bool:
    """Make the store call ``call()`` until it succeeds, ``every`` seconds apart, at most
    ``tries`` times (None: until it does); whether it did. The first failure is a warning,
    giving up an error."""
    attempt = 0
    while True:
        try:
            await call()
            return True
        except StateError as exc:
            if attempt == 0:
                log.warning("could not record %s (trying again): %s", what, exc)
        attempt += 1
        if tries is not None and attempt >= tries:
            log.error("%s was never recorded: the state store stayed away", what)
            return False
        await asyncio.sleep(every)  # a timer between tries
