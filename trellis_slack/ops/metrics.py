"""Counts and latencies of what the bot did: a log line at shutdown, Prometheus metrics on demand."""

from __future__ import annotations

import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily, Metric

from trellis_slack.errors import (
    TrellisAPIError,
    TrellisAuthError,
    TrellisConnectionLost,
    TrellisError,
    TrellisProtocolError,
    TrellisRateLimited,
    TrellisTimeout,
    TrellisUnavailable,
)
from trellis_slack.store.records import StoreHealth
from trellis_slack.trellis.protocol import ErrorEvent

#: Seconds from the question to the first thing the user sees (the working message).
FIRST_SIGN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
#: Seconds from the question to the end of the turn (answer shown, error shown or stopped).
ANSWER_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: Seconds from a Trellis frame to the Slack call that shows it.
OVERHEAD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

#: Error kinds for exceptions, most specific class first.
_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (TrellisAuthError, "trellis_auth"),
    (TrellisUnavailable, "trellis_unavailable"),
    (TrellisConnectionLost, "trellis_connection_lost"),
    (TrellisTimeout, "trellis_timeout"),
    (TrellisRateLimited, "trellis_rate_limited"),
    (TrellisProtocolError, "trellis_protocol"),
    (TrellisAPIError, "trellis_api"),
    (TrellisError, "trellis"),
)
#: What an error code from Trellis must look like to become a label (keeps label values bounded).
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,39}")


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``samples`` by nearest rank; 0 for no samples."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def error_kind(error: BaseException | ErrorEvent | str) -> str:
    """A short, bounded label for an error: our exception class, Trellis's code, or a given name.

    An ``error`` event becomes ``trellis_`` + its code in lower case (``trellis_no_datasource``),
    or ``trellis_error_event`` when it has no usable code; an exception we did not expect is
    ``internal``.
    """
    if isinstance(error, str):
        return error
    if isinstance(error, ErrorEvent):
        code = error.code or ""
        return f"trellis_{code.lower()}" if _CODE.fullmatch(code) else "trellis_error_event"
    for kind, name in _KINDS:
        if isinstance(error, kind):
            return name
    return "internal"


class TrellisGauges(Protocol):
    """What the Trellis client tells about its sockets (``TrellisClient``)."""

    @property
    def open_connections(self) -> int: ...

    @property
    def queued_turns(self) -> int: ...


@dataclass
class Metrics:
    """Counters and latencies, kept twice: plainly for the shutdown summary, and in Prometheus form.

    Each instance has its own ``CollectorRegistry`` (never the process-wide one), so several bots
    or tests in one process do not share counts.
    """

    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    questions: int = 0
    #: Trellis frame received → the Slack call that shows it issued, for frames shown at once
    #: (final answers, errors, stops). Throttled progress updates are left out on purpose.
    overhead: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    #: ``time.monotonic()`` when a turn last ended with an answer from Trellis.
    last_answer_at: float | None = None
    #: The state store's health at the last look (``/healthz`` or a scrape), and whether this
    #: replica's heartbeat was renewed then (None: no fleet); exported by `_StoreGauges`.
    store: StoreHealth | None = None
    heartbeat_ok: bool | None = None
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        registry = self.registry
        self._questions = PromCounter(
            "trellis_slack_questions",
            "Questions the bot started answering (retries and edits included).",
            registry=registry,
        )
        self._answers = PromCounter(
            "trellis_slack_answers",
            "Turns that ended, by outcome: answered, stopped or failed.",
            ["outcome"],
            registry=registry,
        )
        self._errors = PromCounter(
            "trellis_slack_errors",
            "Errors shown to users, by kind (trellis_timeout, trellis_no_datasource, slack_post, …).",
            ["kind"],
            registry=registry,
        )
        self._first_sign = Histogram(
            "trellis_slack_first_sign_seconds",
            "From the start of a turn to the first thing the user sees (the working message).",
            buckets=FIRST_SIGN_BUCKETS,
            registry=registry,
        )
        self._answer = Histogram(
            "trellis_slack_answer_seconds",
            "From the start of a turn to its end, by outcome.",
            ["outcome"],
            buckets=ANSWER_BUCKETS,
            registry=registry,
        )
        self._overhead = Histogram(
            "trellis_slack_bridge_overhead_seconds",
            "From a Trellis frame shown at once (answer, error, stop) to the Slack call showing it.",
            buckets=OVERHEAD_BUCKETS,
            registry=registry,
        )
        self._tracked = False
        registry.register(_StoreGauges(self))

    def observe_store(self, health: StoreHealth, heartbeat_ok: bool | None = None) -> None:
        """The store's health just looked at (shown at the next scrape)."""
        self.store = health
        self.heartbeat_ok = heartbeat_ok

    def count_question(self) -> None:
        """A turn started."""
        self.questions += 1
        self._questions.inc()

    def count(self, outcome: str) -> None:
        """A turn ended with ``outcome``."""
        self.outcomes[outcome] += 1
        self._answers.labels(outcome=outcome).inc()
        if outcome == "answered":
            self.last_answer_at = time.monotonic()

    def count_error(self, error: BaseException | ErrorEvent | str) -> None:
        """An error was shown to a user (see :func:`error_kind` for the label)."""
        kind = error_kind(error)
        self.errors[kind] += 1
        self._errors.labels(kind=kind).inc()

    def observe_first_sign(self, seconds: float) -> None:
        self._first_sign.observe(max(0.0, seconds))

    def observe_answer(self, outcome: str, seconds: float) -> None:
        self._answer.labels(outcome=outcome).observe(max(0.0, seconds))

    def observe_overhead(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.overhead.append(seconds)
        self._overhead.observe(seconds)

    def track(self, trellis: TrellisGauges) -> None:
        """Export the Trellis client's open sockets and queued turns, read at each scrape."""
        if self._tracked:
            return
        self._tracked = True
        _gauge(
            self.registry,
            "trellis_slack_trellis_connections",
            "Trellis WebSocket connections open now.",
            lambda: trellis.open_connections,
        )
        _gauge(
            self.registry,
            "trellis_slack_queued_turns",
            "Questions waiting for a free Trellis connection.",
            lambda: trellis.queued_turns,
        )

    def summary(self) -> str:
        """One log line: answers by outcome, errors by kind, and the bridge overhead percentiles."""
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())) or "none"
        errors = ", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) or "none"
        samples = list(self.overhead)
        return (
            f"turns: {outcomes}; errors: {errors}; bridge overhead p50 "
            f"{percentile(samples, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(samples, 0.99) * 1000:.1f} ms over {len(samples)} events"
        )


def _gauge(
    registry: CollectorRegistry, name: str, documentation: str, read: Callable[[], float]
) -> None:
    gauge = Gauge(name, documentation, registry=registry)
    gauge.set_function(read)


class _StoreGauges:
    """The state store's gauges from the last `StoreHealth` (nothing before the first look).

    Pool gauges only for a store with a pool (PostgreSQL), the latency only while reachable,
    the heartbeat only when the bot has a fleet.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        health = self._metrics.store
        if health is None:
            return
        info = GaugeMetricFamily(
            "trellis_slack_store_info",
            "The state store's backend (sqlite or postgresql).",
            labels=["backend"],
        )
        info.add_metric([health.backend], 1)
        yield info
        yield _family(
            "store_reachable",
            "1 when the state store answered the last look, else 0.",
            float(health.reachable),
        )
        if health.latency_ms is not None:
            yield _family(
                "store_latency_seconds",
                "How long the state store took to answer a trivial query.",
                health.latency_ms / 1000,
            )
        if health.pool_size is not None:
            yield _family(
                "store_pool_connections",
                "Connections open in the state store's pool.",
                health.pool_size,
            )
        if health.pool_in_use is not None:
            yield _family(
                "store_pool_in_use",
                "Connections of the state store's pool lent out now.",
                health.pool_in_use,
            )
        if health.reachable:
            yield _family(
                "store_turns_held",
                "Thread claims (answers in progress) held by live replicas.",
                health.turns_held,
            )
            yield _family(
                "store_slots_held",
                "Trellis connection slots held by live replicas.",
                health.slots_held,
            )
            yield _family(
                "replicas_live",
                "Replicas whose heartbeat in the state store is current.",
                health.replicas_live,
            )
        if self._metrics.heartbeat_ok is not None:
            yield _family(
                "heartbeat_ok",
                "1 when this replica last renewed its heartbeat, else 0.",
                float(self._metrics.heartbeat_ok),
            )


def _family(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"trellis_slack_{name}", documentation, value=value)
