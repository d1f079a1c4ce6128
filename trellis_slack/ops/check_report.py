"""What ``trellis-slack check`` reports: one line per check, a mark, and the fix to try."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from trellis_slack import logs

__all__ = ["Check", "Report", "Status", "guarded", "unexpected"]

log = logging.getLogger(__name__)

Status = Literal["ok", "warning", "skipped", "failed"]

_MARKS: dict[Status, str] = {"ok": "✓", "warning": "!", "skipped": "-", "failed": "✗"}


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one check: what was tried, what came of it, and what to do about a failure."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """Every check, in the order they ran."""

    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        """True when nothing failed (warnings and skipped checks do not count as failures)."""
        return all(check.status != "failed" for check in self.checks)

    def render(self, secrets: tuple[str, ...] = ()) -> str:
        """The report as lines of text: a mark, the check, the detail, and the fix to try."""
        lines: list[str] = []
        for check in self.checks:
            first, *more = check.detail.split("\n")
            lines.append(f"{_MARKS[check.status]} {check.name}: {first}")
            lines += [f"    {line}" for line in more]
            if check.fix:
                lines.append(f"    fix: {check.fix}")
        failed = sum(check.status == "failed" for check in self.checks)
        lines.append("")
        warned = sum(check.status == "warning" for check in self.checks)
        also = f" ({warned} warning{'s' if warned != 1 else ''})" if warned else ""
        if failed:
            lines.append(f"{failed} of {len(self.checks)} checks failed{also}.")
        else:
            lines.append(f"All {len(self.checks)} checks passed{also}.")
        return logs.scrub("\n".join(lines), secrets)


async def guarded(name: str, check: Callable[[], Awaitable[Check]]) -> Check:
    """Run ``check``; a bug in it becomes a failed line (with the traceback in the log)."""
    try:
        return await check()
    except Exception as exc:
        return unexpected(name, exc)


def unexpected(name: str, exc: Exception) -> Check:
    """A bug in a check as a failed line; its traceback goes to the log, shown at DEBUG only."""
    log.error("the check %r failed unexpectedly", name, exc_info=exc)
    return Check(
        name,
        "failed",
        f"unexpected error ({type(exc).__name__})",
        "run `LOG_LEVEL=DEBUG trellis-slack check` to see the traceback, and report it",
    )
