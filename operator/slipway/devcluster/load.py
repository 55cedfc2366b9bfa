"""Steady inference traffic through the ingress: ``slipway dev load``.

A Canary is judged on the model servers' own request metrics, so without requests it learns
nothing (its checks stay inconclusive). This sends V2 requests at a fixed rate, open loop (each
starts on schedule whether or not earlier ones answered, at most ``concurrency`` in flight; a slot
missing is counted as ``dropped``), to ``/v2/models/<model>/infer`` on the ingress stand-in. Each
input is a random 8x8 image with the value range of scikit-learn's digits (0-16), the shape the
example models take. Every ``report`` seconds one line says how many requests each version answered
(the ingress's ``x-slipway-version`` header) and how many failed, so the split of a rollout can be
watched moving.

``slipway dev up --load`` runs it in the background as the component ``load`` (log
``logs/load.log``); ``slipway dev load`` runs it in the foreground.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable

import aiohttp

from .ingress import VERSION_HEADER


def payload(rng: random.Random, shape: tuple[int, ...]) -> dict[str, object]:
    """One V2 inference request: a random digits-like image of ``shape``."""
    size = 1
    for dim in shape:
        size *= dim
    data = [float(rng.randint(0, 16)) for _ in range(size)]
    return {"inputs": [{"name": "input", "shape": list(shape), "datatype": "FP32", "data": data}]}


class Tally:
    """Outcomes since the last report: answers by version, failures by cause."""

    def __init__(self) -> None:
        self.versions: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()

    def line(self, seconds: float) -> str:
        answered = sum(self.versions.values())
        split = ", ".join(
            f"{v or '?'} {100 * n / answered:.0f}%" for v, n in sorted(self.versions.items())
        )
        failed = ", ".join(f"{cause} {n}" for cause, n in sorted(self.failures.items()))
        return (
            f"{time.strftime('%H:%M:%S')} {answered} answered in {seconds:.0f} s"
            + (f" ({split})" if split else "")
            + (f"; failed: {failed}" if failed else "")
        )


async def _one(
    session: aiohttp.ClientSession, url: str, body: dict[str, object], tally: Tally
) -> None:
    try:
        async with session.post(url, json=body) as response:
            await response.read()
            if response.status == 200:
                tally.versions[response.headers.get(VERSION_HEADER, "")] += 1
            else:
                tally.failures[f"HTTP {response.status}"] += 1
    except (aiohttp.ClientError, TimeoutError) as exc:
        tally.failures[type(exc).__name__] += 1


async def run(
    base_url: str,
    model: str,
    rate: float,
    duration: float | None = None,
    concurrency: int = 32,
    report: float = 10.0,
    say: Callable[[str], None] = print,
    shape: tuple[int, ...] = (1, 1, 8, 8),
    stop: asyncio.Event | None = None,
) -> Counter[str]:
    """Send ``rate`` requests per second until ``duration`` (or ``stop``); answers by version."""
    stop = stop or asyncio.Event()
    url = f"{base_url.rstrip('/')}/v2/models/{model}/infer"
    rng = random.Random(0)
    total: Counter[str] = Counter()
    tally = Tally()
    in_flight: set[asyncio.Task[None]] = set()
    timeout = aiohttp.ClientTimeout(total=10)
    say(f"sending {rate:g} requests/s to {url}")
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = last_report = due = time.monotonic()
        while not stop.is_set() and (duration is None or due - started < duration):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, due - time.monotonic()))
            if len(in_flight) < concurrency:
                task = asyncio.create_task(_one(session, url, payload(rng, shape), tally))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            else:
                tally.failures["dropped"] += 1
            due += 1.0 / rate
            now = time.monotonic()
            if now - last_report >= report:
                total.update(tally.versions)
                say(tally.line(now - last_report))
                tally, last_report = Tally(), now
        if in_flight:
            await asyncio.wait(in_flight, timeout=10)
    total.update(tally.versions)
    say(tally.line(time.monotonic() - last_report))
    return total


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m slipway.devcluster.load", description=__doc__)
    p.add_argument("--url", required=True, help="the ingress, e.g. http://127.0.0.1:8080")
    p.add_argument("--model", default="digits", help="model name (default: digits)")
    p.add_argument("--rate", type=float, default=20.0, help="requests per second (default: 20)")
    p.add_argument("--duration", type=float, help="seconds to run (default: until stopped)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)

    async def until_signalled() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await run(
            args.url,
            args.model,
            args.rate,
            args.duration,
            say=lambda line: print(line, flush=True),
            stop=stop,
        )

    asyncio.run(until_signalled())
    return 0


if __name__ == "__main__":
    sys.exit(main())
