"""The chart workers: processes that draw charts off the event loop, started on the first chart, stopped when idle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from trellis_slack.viz.native import CHARTS_MODES, ChartsMode
from trellis_slack.viz.render import draw_png, prepare
from trellis_slack.viz.rendered import (
    CANNOT_SHOW,
    ChartJob,
    NativeChart,
    Rendered,
    VisualizationNote,
    safe_failed,
)
from trellis_slack.viz.spec import ChartSpec, Series

log = logging.getLogger(__name__)

#: Seconds without a chart after which the workers exit (the next chart starts them again).
IDLE_EXIT = 300.0
#: Payloads bigger than this many items are prepared in a thread, not on the event loop.
_INLINE_ITEMS = 2_000
#: Seconds an idle worker gets to exit on its own before it is killed (one may be stuck).
_STOP_GRACE = 2.0


class Renderer:
    """Renders visualizations with charts drawn in worker processes, so the event loop stays free.

    The workers start with the first chart (or ``warm_up``) and exit after ``idle_exit`` seconds
    without one; a chart in flight keeps them. Tables are built inline (in a thread when large).
    The same visualization id is rendered once: concurrent and repeated calls share the result.
    ``charts`` (the ``SLACK_CHARTS`` setting, whose default is ``auto``) chooses Slack's native
    charts and tables or PNGs (``viz.native.ChartsMode``); ``png`` here keeps ``Renderer()``
    as it was for callers that cannot post native blocks.
    """

    def __init__(
        self,
        *,
        max_workers: int | None = None,
        timeout: float = 30.0,
        cache_size: int = 64,
        idle_exit: float = IDLE_EXIT,
        charts: ChartsMode = "png",
    ) -> None:
        if charts not in CHARTS_MODES:
            raise ValueError(f"charts must be one of {', '.join(CHARTS_MODES)}")
        self.charts: ChartsMode = charts
        self.max_workers = max_workers if max_workers is not None else _default_workers()
        self.timeout = timeout
        self.idle_exit = idle_exit
        self._cache_size = cache_size
        self._cache: OrderedDict[str, list[Rendered]] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[list[Rendered]]] = {}
        self._pool: ProcessPoolExecutor | None = None
        #: Pools given up on (a worker died or got stuck) whose other charts may still finish.
        self._retired: list[ProcessPoolExecutor] = []
        #: Pools whose workers are exiting after an idle spell.
        self._draining: list[ProcessPoolExecutor] = []
        self._stopping: set[asyncio.Task[None]] = set()
        self._stop_waiters: list[asyncio.Future[None]] = []
        self._busy = 0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closed = False

    async def render(self, viz_id: str, kind: str, payload: Mapping[str, Any]) -> list[Rendered]:
        """What to post for one visualization; never raises (a failed worker gives a table/note)."""
        cached = self._cache.get(viz_id)
        if cached is not None:
            self._cache.move_to_end(viz_id)
            return list(cached)
        task = self._inflight.get(viz_id)
        if task is None:
            task = asyncio.create_task(self._render(viz_id, kind, payload))
            self._inflight[viz_id] = task
            task.add_done_callback(lambda done: self._finished(viz_id, done))
        return list(await asyncio.shield(task))

    async def draw_instead(self, chart: NativeChart) -> list[Rendered]:
        """The PNG of a native chart Slack refused (a table or note if drawing fails); never raises."""
        job = chart.job
        if job is None:
            return [VisualizationNote(chart.viz_id, CANNOT_SHOW)]
        return await self._draw_job(job)

    async def warm_up(self) -> None:
        """Starts every worker and loads matplotlib there, so the first chart is not slow.

        The workers still exit after ``idle_exit`` seconds if no chart comes.
        """
        loop = asyncio.get_running_loop()
        try:
            with self._in_use():
                pool = self._ensure_pool()
                async with asyncio.timeout(self.timeout):
                    await asyncio.gather(
                        *(loop.run_in_executor(pool, _warm) for _ in range(self.max_workers))
                    )
        except Exception:
            log.warning("the chart workers could not be warmed up", exc_info=True)

    @property
    def worker_pids(self) -> tuple[int, ...]:
        """Process ids of the live chart workers (for monitoring, and tests that kill one)."""
        return tuple(_processes(self._pool))

    async def wait_stopped(self) -> None:
        """Returns once no chart worker is left running (at once if none is), e.g. after an idle exit."""
        loop = asyncio.get_running_loop()
        while self._pool is not None or self._retired or self._stopping:
            waiter: asyncio.Future[None] = loop.create_future()
            self._stop_waiters.append(waiter)
            await waiter

    def close(self, grace: float = 2.0) -> None:
        """Stops the workers: a chart being drawn gets ``grace`` seconds, then its worker is killed.

        Charts still waiting for a worker, and later calls to ``render``, get their data as a
        table with a note. Safe to call from another thread than the event loop's.
        """
        self._closed = True
        for pool in [*self._retired, *self._draining]:
            pool.shutdown(wait=False, cancel_futures=True)
            _terminate(pool)
        self._retired.clear()
        current, self._pool = self._pool, None
        if current is not None:
            processes = list(_processes(current).values())
            current.shutdown(wait=False, cancel_futures=True)
            deadline = time.monotonic() + grace
            for process in processes:
                process.join(max(0.0, deadline - time.monotonic()))
            _terminate(current, processes)

    async def _render(self, viz_id: str, kind: str, payload: Mapping[str, Any]) -> list[Rendered]:
        try:
            if _size_hint(payload) > _INLINE_ITEMS:
                prepared = await asyncio.to_thread(prepare, viz_id, kind, payload, self.charts)
            else:
                prepared = prepare(viz_id, kind, payload, self.charts)
            if not isinstance(prepared, ChartJob):
                return prepared
            return await self._draw_job(prepared)
        except Exception:
            log.exception("visualization %s could not be rendered", viz_id)
            return [VisualizationNote(viz_id, CANNOT_SHOW)]

    async def _draw_job(self, prepared: ChartJob) -> list[Rendered]:
        viz_id = prepared.viz_id
        try:
            if self._closed:
                return safe_failed(prepared, "the bot is shutting down")
            try:
                png = await self._draw(prepared.spec)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # we are being cancelled, not the pool's future
                return safe_failed(prepared, "the bot is shutting down")
            except TimeoutError:
                log.warning("visualization %s: drawing took longer than %ss", viz_id, self.timeout)
                return safe_failed(prepared, "it took too long to draw")
            except Exception:
                if self._closed:
                    return safe_failed(prepared, "the bot is shutting down")
                log.exception("visualization %s: the chart worker failed", viz_id)
                return safe_failed(prepared, "drawing it failed")
            return prepared.done(png)
        except Exception:
            log.exception("visualization %s could not be rendered", viz_id)
            return [VisualizationNote(viz_id, CANNOT_SHOW)]

    async def _draw(self, spec: ChartSpec) -> bytes:
        loop = asyncio.get_running_loop()
        with self._in_use():
            for attempt in (1, 2):
                pool = self._ensure_pool()
                try:
                    async with asyncio.timeout(self.timeout):
                        return await loop.run_in_executor(pool, draw_png, spec)
                except BrokenProcessPool:
                    # A worker died (perhaps drawing another chart): a fresh pool, one more try.
                    self._retire(pool)
                    if attempt == 2:
                        raise
                except TimeoutError:
                    self._retire(pool)  # its stuck worker must not hold up the next charts
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def _in_use(self) -> Iterator[None]:
        """Marks the workers busy: no idle exit while a chart is drawn; the idle clock restarts after."""
        self._busy += 1
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0 and not self._closed:
                loop = asyncio.get_running_loop()
                self._idle_timer = loop.call_later(self.idle_exit, self._on_idle)

    def _on_idle(self) -> None:
        """The idle spell is over: the workers exit (in a thread; the next chart starts new ones)."""
        self._idle_timer = None
        if self._closed or self._busy:
            return
        pools = [*self._retired, *([self._pool] if self._pool is not None else [])]
        if not pools:
            return
        self._pool = None
        self._retired = []
        self._draining += pools
        log.info("no chart for %ss: the chart workers exit until the next one", self.idle_exit)
        task = asyncio.create_task(self._drain(pools))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _drain(self, pools: list[ProcessPoolExecutor]) -> None:
        try:
            await asyncio.to_thread(_stop_pools, pools, _STOP_GRACE)
        except Exception:
            log.warning("the idle chart workers did not stop cleanly", exc_info=True)
        finally:
            for pool in pools:
                with contextlib.suppress(ValueError):
                    self._draining.remove(pool)
            this = asyncio.current_task()
            if this is not None:
                self._stopping.discard(this)  # before the waiters look (done callbacks run later)
            waiters, self._stop_waiters = self._stop_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._closed:
            raise RuntimeError("the renderer is closed")
        if self._pool is None:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context(
                "forkserver" if "forkserver" in methods else "spawn"
            )
            self._pool = ProcessPoolExecutor(
                max_workers=self.max_workers, mp_context=context, initializer=_worker_init
            )
        return self._pool

    def _retire(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
            self._retired.append(pool)
            pool.shutdown(wait=False, cancel_futures=False)

    def _finished(self, viz_id: str, task: asyncio.Task[list[Rendered]]) -> None:
        self._inflight.pop(viz_id, None)
        if task.cancelled() or task.exception() is not None or self._cache_size <= 0:
            return
        self._cache[viz_id] = task.result()
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def _size_hint(payload: Mapping[str, Any]) -> int:
    """How many rows or points a payload has, at a glance."""
    if not isinstance(payload, Mapping):
        return 0
    rows = payload.get("rows")
    data = payload.get("data")
    values = data.get("values") if isinstance(data, Mapping) else data
    return max(
        len(rows) if isinstance(rows, list) else 0, len(values) if isinstance(values, list) else 0
    )


def _default_workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(2, cpus))


def _worker_init() -> None:
    """Runs in each render worker: yield the CPU to the bot's event loop first."""
    with contextlib.suppress(OSError):
        os.nice(5)


def _warm() -> None:
    draw_png(ChartSpec("bar", "warm-up", ("a",), (Series("Value", (1.0,)),)))


def _processes(pool: ProcessPoolExecutor | None) -> dict[int, Any]:
    """The pool's live worker processes by pid (the executor keeps them in ``_processes``)."""
    return dict(getattr(pool, "_processes", None) or {})


def _stop_pools(pools: Sequence[ProcessPoolExecutor], grace: float) -> None:
    """Ends idle pools: their workers exit, one still running after ``grace`` seconds is killed."""
    processes = [p for pool in pools for p in _processes(pool).values()]
    for pool in pools:
        pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for pool in pools:
        _terminate(pool, processes)
    for process in processes:
        process.join(grace)
    for pool in pools:
        pool.shutdown(wait=True)


def _terminate(pool: ProcessPoolExecutor, processes: Sequence[Any] = ()) -> None:
    """Kills the workers of a pool that is shutting down (one may be stuck drawing)."""
    for process in [*processes, *_processes(pool).values()]:
        if process.is_alive():
            process.terminate()
