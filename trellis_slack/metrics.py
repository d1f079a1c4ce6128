"""In-process counts and latencies of what the bot did, summarised in the log at shutdown."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``samples`` by nearest rank; 0 for no samples."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Metrics:
    """Counters and a bounded window of latency samples (seconds)."""

    outcomes: Counter[str] = field(default_factory=Counter)
    #: Trellis frame received → the Slack call that shows it issued, for frames shown at once
    #: (final answers, errors, stops). Throttled progress updates are left out on purpose.
    overhead: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] += 1

    def observe_overhead(self, seconds: float) -> None:
        self.overhead.append(max(0.0, seconds))

    def summary(self) -> str:
        """One log line: answers by outcome, and the bridge overhead percentiles."""
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())) or "none"
        samples = list(self.overhead)
        return (
            f"turns: {outcomes}; bridge overhead p50 {percentile(samples, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(samples, 0.99) * 1000:.1f} ms over {len(samples)} events"
        )
