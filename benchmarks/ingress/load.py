"""The load generator: a closed loop of concurrent V2 infer requests, and what it measured.

``hammer`` keeps ``concurrency`` requests in flight (one coroutine each, on one pooled aiohttp
session with as many keep-alive connections) for a warm-up, then for ``duration`` seconds; every
request that ends inside the measured window counts, a 200 as a success (its latency recorded)
and anything else as an error. The same body and the same client go to both targets, so the only
difference between them is the hop through the ingress.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp


@dataclass
class Segment:
    """One measured run against one target."""

    target: str
    duration_s: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds used

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.duration_s


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0-100) of ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return ordered[rank - 1]


async def _worker(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    start: float,
    end: float,
    segment: Segment,
) -> None:
    headers = {"Content-Type": "application/json"}
    while (sent := time.perf_counter()) < end:
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                ok = response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        done = time.perf_counter()
        if sent < start or done > end:
            continue  # warm-up, or past the window: neither counted
        if ok:
            segment.latencies_ms.append((done - sent) * 1000)
        else:
            segment.errors += 1


async def _meter_window(
    meter: Callable[[], dict[str, float]], start: float, end: float, segment: Segment
) -> None:
    """CPU counters read at the window's start and end: what each process used inside it."""
    await asyncio.sleep(max(start - time.perf_counter(), 0))
    before = meter()
    await asyncio.sleep(max(end - time.perf_counter(), 0))
    after = meter()
    segment.cpu_s = {name: after[name] - before[name] for name in before}


async def hammer(
    target: str,
    url: str,
    body: bytes,
    concurrency: int,
    warmup_s: float,
    duration_s: float,
    meter: Callable[[], dict[str, float]],
) -> Segment:
    """Warm up, then measure ``duration_s`` seconds of ``concurrency`` requests in flight;
    ``meter`` returns the CPU seconds each process of interest has used so far."""
    segment = Segment(target, duration_s)
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter() + warmup_s
        end = start + duration_s
        await asyncio.gather(
            _meter_window(meter, start, end, segment),
            *(_worker(session, url, body, start, end, segment) for _ in range(concurrency)),
        )
    return segment
