"""Benchmark: chart render time per type and size, and event-loop lag while charts render."""

# Run: ``python bench/bench_charts.py`` (``--repeat 30`` for steadier numbers).
#
# "render" is what a pool worker does per chart (draw and PNG-encode); "prepare" is the
# validation that runs on the event loop. Bar charts draw at most 30 bars (the rest goes to a
# table), so 100 and 1,000 points cost the same. Lag: a coroutine ticking every 10 ms while
# 20 charts render concurrently through ``Renderer`` (2 workers), against ``render_sync`` on the
# loop for comparison.
#
# Recorded 2026-12-02 on the development machine (2 cores shared with other engineers' test
# runs, load average about 3, Python 3.11.7, matplotlib 3.11.2, --repeat 15); PNGs of 1000 px
# wide (Slack's 500 px display width, twice over), transparent, drawn in the ``png`` mode (a chart
# Slack can draw itself costs no render at all in ``auto``):
#
# | chart type | points | prepare p50 ms | render p50 ms | render p99 ms | PNG KB |
# |---|---:|---:|---:|---:|---:|
# | bar | 10 | 0.0 | 55 | 91 | 62 |
# | bar | 100 | 0.4 | 72 | 120 | 99 |
# | bar | 1,000 | 3.5 | 69 | 100 | 99 |
# | bar_horizontal | 10 | 0.0 | 48 | 86 | 63 |
# | bar_horizontal | 100 | 0.3 | 70 | 97 | 99 |
# | bar_horizontal | 1,000 | 3.3 | 76 | 109 | 99 |
# | stacked_bar | 10 | 0.1 | 47 | 85 | 50 |
# | stacked_bar | 100 | 0.5 | 89 | 139 | 111 |
# | stacked_bar | 1,000 | 4.3 | 87 | 144 | 111 |
# | line | 10 | 0.0 | 43 | 50 | 68 |
# | line | 100 | 0.3 | 37 | 45 | 135 |
# | line | 1,000 | 3.2 | 50 | 73 | 162 |
# | area | 10 | 0.0 | 50 | 90 | 71 |
# | area | 100 | 0.4 | 40 | 42 | 142 |
# | area | 1,000 | 3.3 | 64 | 100 | 158 |
# | pie | 10 | 0.0 | 44 | 75 | 74 |
# | pie | 100 | 0.4 | 41 | 43 | 67 |
# | pie | 1,000 | 3.4 | 42 | 46 | 66 |
# | donut | 10 | 0.0 | 45 | 73 | 75 |
# | donut | 100 | 0.3 | 44 | 47 | 67 |
# | donut | 1,000 | 3.4 | 43 | 45 | 69 |
#
# Pool: 2 worker processes, warm-up 347 ms; the first chart of a pool whose workers are not running (they start with it): 376 ms.
#
# | 20 charts of 100 points | loop lag p50 ms | loop lag p99 ms | loop lag max ms | burst s |
# |---|---:|---:|---:|---:|
# | Renderer (process pool) | 0.2 | 5.1 | 5.1 | 0.68 |
# | render_sync on the loop (for comparison) | 0.1 | 1180.5 | 1180.5 | 1.19 |
#
# Target p50 < 80 ms for <= 100 points: met by bar (72 ms) and bar_horizontal (70 ms) at 100
# points, which missed it before (about 80-95 ms under the same load, interleaved runs of the
# old and new code), by line, area, pie and donut (37-44 ms) and by every type at 10 points;
# still missed by stacked_bar at 100 points (89 ms, was 111-121): 30 bars of three series are
# 90 patches that matplotlib adds one by one. The PNG encoder (rows unfiltered, zlib level 3)
# takes about 8 ms of a 1000 by 1300 px chart where Pillow took about 20.

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from trellis_slack.viz import charts
from trellis_slack.viz.renderer import ChartImage, ChartJob, Renderer, prepare, render_sync

SIZES = (10, 100, 1000)
TICK = 0.010
BURST = 20


def payload(chart_type: str, points: int, seed: int = 7) -> dict[str, Any]:
    """A Trellis chart payload of ``points`` items (three series for stacked bars)."""
    rng = random.Random(seed)
    if chart_type == "stacked_bar":
        per = max(1, points // 3)
        values = [
            {"label": f"Week {i}", "series": s, "value": rng.randint(0, 50_000)}
            for i in range(per)
            for s in ("Online", "Retail", "Partner")
        ]
    else:
        key = "text" if chart_type in charts.SEGMENT_TYPES else "label"
        values = [{key: f"Item {i}", "value": rng.randint(-500, 90_000)} for i in range(points)]
        if chart_type in charts.SEGMENT_TYPES:
            for item in values:
                item["value"] = abs(int(item["value"]))
    return {
        "id": f"bench{points:05d}",
        "type": "chart",
        "chart_type": chart_type,
        "title": f"{chart_type} with {points} points",
        "data": {"values": values, "x_axis_label": "Item", "y_axis_label": "Revenue (USD)"},
    }


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q`` percentile (0-100) by nearest rank."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def timed(function: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def bench_render(repeat: int) -> list[str]:
    """Per chart type and size: validation time, render time (what a worker does), PNG size."""
    lines = [
        "| chart type | points | prepare p50 ms | render p50 ms | render p99 ms | PNG KB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for chart_type in charts.CHART_TYPES:
        for points in SIZES:
            body = payload(chart_type, points)
            job = prepare("bench00000", "chart", body, "png")
            assert isinstance(job, ChartJob), job
            prep = timed(lambda body=body: prepare("bench00000", "chart", body, "png"), repeat)  # type: ignore[misc]
            charts.render_png(job.spec)  # first draw loads fonts: not counted
            render = timed(lambda job=job: charts.render_png(job.spec), repeat)  # type: ignore[misc]
            size = len(charts.render_png(job.spec)) / 1024
            lines.append(
                f"| {chart_type} | {points:,} | {statistics.median(prep):.1f} |"
                f" {statistics.median(render):.0f} | {percentile(render, 99):.0f} | {size:.0f} |"
            )
    return lines


async def loop_lag(render: Callable[[int], Any]) -> tuple[list[float], float]:
    """Lag samples (ms) of a 10 ms ticker while ``BURST`` renders run; and the burst's duration."""
    lags: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(TICK)
            now = time.perf_counter()
            lags.append(max(0.0, (now - last - TICK) * 1000))
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(TICK * 3)  # let the ticker settle before the burst
    started = time.perf_counter()
    await asyncio.gather(*(render(i) for i in range(BURST)))
    elapsed = time.perf_counter() - started
    done.set()
    await ticker
    return lags, elapsed


async def bench_lag() -> list[str]:
    """Event-loop lag while 20 charts of 100 points render: through the pool, and inline."""
    types = charts.CHART_TYPES
    bodies = [payload(types[i % len(types)], 100, seed=i) for i in range(BURST)]
    cold = Renderer(charts="png")
    try:
        started = time.perf_counter()
        first = await cold.render("cold000000", "chart", bodies[0])
        assert isinstance(first[0], ChartImage), first
        cold_ms = (time.perf_counter() - started) * 1000
    finally:
        cold.close()
    renderer = Renderer(charts="png")
    try:
        started = time.perf_counter()
        await renderer.warm_up()
        warm = time.perf_counter() - started

        async def pooled(i: int) -> None:
            result = await renderer.render(f"lag{i:07d}", "chart", bodies[i])
            assert isinstance(result[0], ChartImage), result

        pool_lags, pool_time = await loop_lag(pooled)
    finally:
        renderer.close()

    async def inline(i: int) -> None:
        await asyncio.sleep(0)
        render_sync(f"inl{i:07d}", "chart", bodies[i], "png")

    inline_lags, inline_time = await loop_lag(inline)
    lines = [
        f"Pool: {renderer.max_workers} worker processes, warm-up {warm * 1000:.0f} ms; the first"
        f" chart of a pool whose workers are not running (they start with it): {cold_ms:.0f} ms.",
        "",
        "| 20 charts of 100 points | loop lag p50 ms | loop lag p99 ms | loop lag max ms | burst s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, lags, elapsed in (
        ("Renderer (process pool)", pool_lags, pool_time),
        ("render_sync on the loop (for comparison)", inline_lags, inline_time),
    ):
        lines.append(
            f"| {name} | {statistics.median(lags):.1f} | {percentile(lags, 99):.1f} |"
            f" {max(lags):.1f} | {elapsed:.2f} |"
        )
    return lines


def main() -> None:
    """Runs both benchmarks and prints Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15, help="renders per chart type and size")
    args = parser.parse_args()
    print("\n".join(bench_render(args.repeat)))
    print()
    print("\n".join(asyncio.run(bench_lag())))


if __name__ == "__main__":
    main()
