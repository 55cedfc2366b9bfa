"""Where onnxruntime calls run, and adaptive batching that merges concurrent requests.

`Runner` runs a model call either inline on the event loop (cheapest for models that take a few
microseconds) or in a small thread pool (so a slow model does not stall HTTP parsing; onnxruntime
releases the GIL). `AdaptiveBatcher` queues requests that arrive within a window, concatenates
compatible ones along the first axis up to a maximum number of rows, runs one call and splits the
outputs back. If the merged call fails, every request in it is retried alone, so a bad request
only fails itself and every caller gets exactly what an unbatched call would have returned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .model import OnnxModel
from .protocol import InferRequest

log = logging.getLogger(__name__)


class Runner:
    """Runs `model.run` inline or on worker threads and records rows per call."""

    def __init__(
        self,
        model: OnnxModel,
        inline: bool,
        observe_rows: Callable[[int], None],
        threads: int = 1,
    ) -> None:
        self.model = model
        self.inline = inline
        self._observe = observe_rows
        # By default the server runs one single-threaded onnxruntime call per core at a time:
        # under concurrent load that beats one call spread over all cores, whose threads wait
        # for each other at every operator (measured in the README's benchmark notes).
        self._pool = (
            None if inline else ThreadPoolExecutor(threads, thread_name_prefix="onnxruntime")
        )

    async def run(self, feeds: dict[str, np.ndarray], rows: int | None) -> list[np.ndarray]:
        self._observe(rows or 1)
        if self._pool is None:
            return self.model.run(feeds)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.model.run, feeds)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def _signature(request: InferRequest) -> tuple[object, ...]:
    """Requests can share a call when every input has the same trailing shape."""
    return tuple((name, tensor.shape[1:]) for name, tensor in sorted(request.feeds.items()))


@dataclass
class _Pending:
    request: InferRequest
    future: asyncio.Future[list[np.ndarray]]


@dataclass
class _Queue:
    items: list[_Pending] = field(default_factory=list)
    rows: int = 0
    timer: asyncio.TimerHandle | None = None


class AdaptiveBatcher:
    """Merges requests that arrive within `window_s`, up to `max_rows` rows per call.

    With `inflight` (a callable counting the server's in-flight infer requests), batching is
    eager: a batch also runs as soon as every in-flight request that is not already running
    is waiting in a queue, because no other request is on its way to join it. A lone caller
    then pays no window, and under load batches form from whatever arrived together; the window
    only bounds the wait for requests still being read.
    """

    def __init__(
        self,
        runner: Runner,
        window_s: float,
        max_rows: int,
        inflight: Callable[[], int] | None = None,
    ) -> None:
        self.runner = runner
        self.window_s = window_s
        self.max_rows = max_rows
        self._inflight = inflight
        self._queues: dict[tuple[object, ...], _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._queued = 0  # requests waiting in queues
        self._running = 0  # requests in batches that have not settled yet
        self._tick_scheduled = False
        self.draining = False

    async def infer(self, request: InferRequest) -> list[np.ndarray]:
        rows = request.rows
        if (
            self.draining
            or not self.runner.model.batchable
            or rows is None
            or rows >= self.max_rows
        ):
            return await self.runner.run(request.feeds, rows)
        key = _signature(request)
        loop = asyncio.get_running_loop()
        queue = self._queues.setdefault(key, _Queue())
        if queue.rows + rows > self.max_rows:
            self._flush(key)
            queue = self._queues.setdefault(key, _Queue())
        pending = _Pending(request, loop.create_future())
        queue.items.append(pending)
        queue.rows += rows
        self._queued += 1
        if queue.rows >= self.max_rows:
            self._flush(key)
            return await pending.future
        if queue.timer is None:
            queue.timer = loop.call_later(self.window_s, self._flush, key)
        if self._inflight is not None and not self._tick_scheduled:
            # Let every request the loop has already started reach this point first.
            self._tick_scheduled = True
            loop.call_soon(self._tick)
        return await pending.future

    def _tick(self) -> None:
        """Eager mode, one loop iteration after a request queued: if every in-flight request
        that is not already running is waiting, none can join any more, so run them all."""
        self._tick_scheduled = False
        if self._inflight is not None and self._queued >= self._inflight() - self._running:
            for key in list(self._queues):
                self._flush(key)

    def _flush(self, key: tuple[object, ...]) -> None:
        queue = self._queues.pop(key, None)
        if queue is None or not queue.items:
            return
        if queue.timer is not None:
            queue.timer.cancel()
        self._queued -= len(queue.items)
        self._running += len(queue.items)
        task = asyncio.get_running_loop().create_task(self._run(queue.items, queue.rows))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, items: list[_Pending], rows: int) -> None:
        try:
            await self._run_batch(items, rows)
        finally:
            self._running -= len(items)

    async def _run_batch(self, items: list[_Pending], rows: int) -> None:
        if len(items) > 1:
            try:
                feeds = {
                    name: np.concatenate([item.request.feeds[name] for item in items])
                    for name in items[0].request.feeds
                }
                outputs = await self.runner.run(feeds, rows)
                if all(out.ndim >= 1 and out.shape[0] == rows for out in outputs):
                    start = 0
                    for item in items:
                        stop = start + (item.request.rows or 0)
                        _settle(item, [out[start:stop] for out in outputs])
                        start = stop
                    return
                log.debug("outputs not row-aligned; running %d requests alone", len(items))
            except Exception as exc:  # noqa: BLE001 - each request is retried alone below
                log.debug("batch of %d failed (%s); running each request alone", len(items), exc)
        for item in items:
            try:
                _settle(item, await self.runner.run(item.request.feeds, item.request.rows))
            except Exception as exc:  # noqa: BLE001 - delivered to that request's caller
                if not item.future.done():
                    item.future.set_exception(exc)

    def flush_all(self) -> None:
        """Stop waiting: run every queued request now, and later ones without a window."""
        self.draining = True
        for key in list(self._queues):
            self._flush(key)

    async def drain(self) -> None:
        """Run everything still queued and wait for it (used at shutdown)."""
        for key in list(self._queues):
            self._flush(key)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _settle(item: _Pending, outputs: list[np.ndarray]) -> None:
    if not item.future.done():
        item.future.set_result(outputs)
