"""Tests for trellis_slack.viz.pool: charts drawn in worker processes that start on demand and exit when idle."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.viz.samples import ORDERS, PNG_SIGNATURE, SALES_TABLE, cells, chart, image, only, table
from trellis_slack.viz import pool, render
from trellis_slack.viz.renderer import ChartImage, Renderer, TableMessage

LINE = chart("line", [{"label": f"Day {i}", "value": i * 3} for i in range(100)])
#: Big enough to be prepared in a thread before its chart is drawn.
BIG_LINE = chart("line", [{"label": f"Day {i}", "value": i % 7} for i in range(3_000)])


def gone(pid: int) -> bool:
    """The process has exited and been reaped."""
    return not Path(f"/proc/{pid}").exists()


@pytest.fixture(scope="module")
def renderer() -> Iterator[Renderer]:
    pool = Renderer(charts="png", max_workers=2)
    yield pool
    pool.close()


@pytest.fixture
def idle() -> Iterator[Renderer]:
    """A renderer whose workers exit 0.3 s after the last chart (long enough to look at them)."""
    pool = Renderer(charts="png", max_workers=2, idle_exit=0.3)
    yield pool
    pool.close()


async def test_renderer_draws_charts_in_worker_processes(renderer: Renderer) -> None:
    """Charts come back from the pool as PNGs; tables come back too."""
    async with asyncio.timeout(30):
        await renderer.warm_up()
        assert len(renderer.worker_pids) == 2
        assert os.getpid() not in renderer.worker_pids
        drawn = image(await renderer.render("rp00000000", "chart", ORDERS))
        shown = table(await renderer.render("rp00000001", "table", SALES_TABLE))
    assert drawn.png.startswith(PNG_SIGNATURE)
    assert shown.csv is None


async def test_event_loop_keeps_ticking_while_charts_render(renderer: Renderer) -> None:
    """While eight charts render in worker processes, the event loop keeps running other work."""
    ticks = 0
    done = asyncio.Event()

    async def tick() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0)  # yield to the loop; count how often it comes back
            ticks += 1

    async with asyncio.timeout(30):
        await renderer.warm_up()
        ticker = asyncio.create_task(tick())
        results = await asyncio.gather(
            *(renderer.render(f"lag{i:07d}", "chart", LINE) for i in range(8))
        )
        done.set()
        await ticker
    assert all(isinstance(only(r), ChartImage) for r in results)
    # The drawing happens in the pool's processes, not this one, and the loop kept ticking
    # while they worked (the lag itself is measured by bench/bench_charts.py, not asserted).
    assert renderer.worker_pids
    assert os.getpid() not in renderer.worker_pids
    assert ticks >= 2


async def test_same_id_is_rendered_once(renderer: Renderer) -> None:
    """The same visualization id twice (at once, or later) is drawn once and shared."""
    async with asyncio.timeout(30):
        first, second = await asyncio.gather(
            renderer.render("dup0000000", "chart", ORDERS),
            renderer.render("dup0000000", "chart", ORDERS),
        )
        third = await renderer.render("dup0000000", "chart", ORDERS)
    assert image(first) is image(second) is image(third)


async def test_no_worker_starts_before_the_first_chart() -> None:
    """A new renderer runs no worker, nor does a table; the first chart starts them."""
    renderer = Renderer(charts="png", max_workers=2)
    try:
        assert renderer.worker_pids == ()
        async with asyncio.timeout(30):
            table(await renderer.render("nw00000000", "table", SALES_TABLE))
            assert renderer.worker_pids == ()
            image(await renderer.render("nw00000001", "chart", ORDERS))
        assert renderer.worker_pids
        assert os.getpid() not in renderer.worker_pids
    finally:
        renderer.close()


async def test_idle_workers_exit_and_the_next_chart_starts_them_again(idle: Renderer) -> None:
    """After the idle delay the worker processes are gone; a later chart is still drawn."""
    async with asyncio.timeout(30):
        await idle.warm_up()
        first = idle.worker_pids
        assert len(first) == 2
        await idle.wait_stopped()
        assert idle.worker_pids == ()
        assert all(gone(pid) for pid in first), first
        drawn = image(await idle.render("ie00000000", "chart", ORDERS))
        second = idle.worker_pids
        assert second
        assert not set(second) & set(first)
        await idle.wait_stopped()
    assert drawn.png.startswith(PNG_SIGNATURE)
    assert all(gone(pid) for pid in second), second


async def test_a_chart_in_flight_when_the_idle_timer_fires_is_not_lost(
    idle: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chart still being prepared when the workers exit for idleness is drawn by new workers."""
    gate = threading.Event()

    def held_prepare(*args: Any) -> Any:
        assert gate.wait(30), "the test never opened the gate"
        return render.prepare(*args)

    async with asyncio.timeout(30):
        image(await idle.render("if00000000", "chart", ORDERS))
        first = idle.worker_pids
        assert first
        monkeypatch.setattr(pool, "prepare", held_prepare)
        in_flight = asyncio.create_task(idle.render("if00000001", "chart", BIG_LINE))
        await idle.wait_stopped()  # the idle timer fires while that chart is being prepared
        assert all(gone(pid) for pid in first), first
        gate.set()
        drawn = await in_flight
    assert isinstance(drawn[0], ChartImage), drawn
    assert drawn[0].png.startswith(PNG_SIGNATURE)


async def test_charts_asked_for_around_each_idle_exit_are_all_drawn(idle: Renderer) -> None:
    """With the workers exiting after every chart, charts started turn after turn all arrive."""
    idle.idle_exit = 0.0  # the timer fires on the loop's next turn after every chart
    async with asyncio.timeout(60):
        staggered = []
        for i in range(6):
            staggered.append(asyncio.create_task(idle.render(f"if1{i:07d}", "chart", LINE)))
            await asyncio.sleep(0)  # yield only, so each one starts on a different turn
        results = await asyncio.gather(*staggered)
        again = await idle.render("if20000000", "chart", ORDERS)
        await idle.wait_stopped()
    assert all(isinstance(only(r), ChartImage) for r in [*results, again]), results
    assert idle.worker_pids == ()


async def test_the_loop_keeps_ticking_while_workers_start_and_exit(idle: Renderer) -> None:
    """Starting the workers for a chart and stopping them when idle never holds up the event loop."""
    ticks = 0
    done = asyncio.Event()

    async def tick() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0)
            ticks += 1

    ticker = asyncio.create_task(tick())
    seen = []
    async with asyncio.timeout(30):
        for i in range(2):
            before = ticks
            image(await idle.render(f"lt{i:08d}", "chart", ORDERS))  # starts the workers
            seen.append(ticks - before)
            before = ticks
            await idle.wait_stopped()  # they exit
            seen.append(ticks - before)
        done.set()
        await ticker
    assert all(count >= 2 for count in seen), seen


async def test_close_ends_every_worker() -> None:
    """close() leaves no worker process behind, and later charts get their data as a table."""
    renderer = Renderer(charts="png", max_workers=2)
    async with asyncio.timeout(30):
        await renderer.warm_up()
        pids = renderer.worker_pids
        assert len(pids) == 2
        await asyncio.to_thread(renderer.close)
        result = await renderer.render("ce00000000", "chart", ORDERS)
    assert all(gone(pid) for pid in pids), pids
    assert isinstance(only(result), TableMessage)


async def test_a_killed_worker_is_replaced_and_the_chart_still_arrives() -> None:
    """When the worker process dies, a fresh pool draws the chart."""
    renderer = Renderer(charts="png", max_workers=1)
    try:
        async with asyncio.timeout(30):
            await renderer.warm_up()
            (victim,) = renderer.worker_pids
            os.kill(victim, signal.SIGKILL)
            result = image(await renderer.render("kw00000000", "chart", ORDERS))
            assert victim not in renderer.worker_pids
    finally:
        renderer.close()
    assert result.png.startswith(PNG_SIGNATURE)


async def test_a_render_that_takes_too_long_gives_the_data_as_a_table() -> None:
    """A chart the workers do not finish in time is shown as its data with a note."""
    renderer = Renderer(charts="png", max_workers=1, timeout=0.001)
    try:
        async with asyncio.timeout(30):
            result = table(await renderer.render("to00000000", "chart", ORDERS))
    finally:
        renderer.close()
    assert result.note is not None
    assert "took too long" in result.note
    assert cells(result)[1] == ["North", "412"]


async def test_closed_renderer_answers_with_a_note() -> None:
    """After close(), rendering a chart gives its data as a table instead of raising."""
    renderer = Renderer(charts="png", max_workers=1)
    renderer.close()
    async with asyncio.timeout(5):
        result = await renderer.render("cl00000000", "chart", ORDERS)
    assert isinstance(only(result), TableMessage)


def test_the_bot_process_does_not_load_matplotlib() -> None:
    """Importing the bot (and its renderer) loads no matplotlib or Pillow: only the chart workers draw."""
    code = (
        "import sys, trellis_slack.cli, trellis_slack.bot.app, trellis_slack.viz.renderer\n"
        "print(sorted(m for m in ('matplotlib', 'PIL') if m in sys.modules))"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
