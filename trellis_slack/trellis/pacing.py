"""How long to wait: exponential backoff with jitter, and client-side pacing of send_message."""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["CHAT_CREATE_LIMITS", "SOCKET_SEND_LIMITS", "Backoff", "SendPacer"]

#: Trellis's per-socket send_message limits, (most sends, window in s): 3 per 10 s, 10 a minute.
SOCKET_SEND_LIMITS: tuple[tuple[int, float], ...] = ((3, 10.0), (10, 60.0))

#: Trellis's chat-creation limit per token, (most chats, window in s): 20 a minute.
CHAT_CREATE_LIMITS: tuple[tuple[int, float], ...] = ((20, 60.0),)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: ``base * factor**n`` capped at ``cap``, spread by ``±jitter``.

    ``max_attempts`` counts connection attempts (the first included) before giving up.
    """

    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.5
    max_attempts: int = 6

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after ``failures`` failed attempts in a row (1 for the first)."""
        exponent = max(0, failures - 1)
        try:
            raw = min(self.cap, self.base * self.factor**exponent)
        except OverflowError:
            raw = self.cap
        spread = raw * self.jitter
        return max(0.0, min(self.cap, raw - spread + 2 * spread * rand()))


class SendPacer:
    """Schedules requests (send_message on a socket, chat creation for a token) within limits.

    :meth:`reserve` books the earliest allowed slot and returns how long to wait for it. The slot
    is recorded at its booked time, so a caller whose sleep returns early (a test) still moves on.
    """

    def __init__(
        self,
        limits: Sequence[tuple[int, float]] = SOCKET_SEND_LIMITS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = tuple(limits)
        self._clock = clock
        # Only the last ``count`` sends matter for a limit, so the largest count is all we keep.
        self._sent: deque[float] = deque(maxlen=max((c for c, _ in self._limits), default=1))

    def reserve(self) -> float:
        """Book the next send; return the seconds to wait before making it (0 when free now)."""
        now = self._clock()
        at = max(now, self._sent[-1]) if self._sent else now
        for count, window in self._limits:
            if count > 0 and len(self._sent) >= count:
                at = max(at, self._sent[-count] + window)
        self._sent.append(at)
        return at - now
