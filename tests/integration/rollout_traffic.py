"""The traffic side of the rollout tests: Istio's data plane, played, and webhook receivers.

- ``IstioPlayer`` plays Istio's data plane: a load generator that reads the VirtualService from
  the API server on every step and sends each request where its routes say (match first, then
  weights; a mirror gets a copy whose answer is discarded), to the real model servers that
  ``SeldonPlayer`` runs. Every third request carries the header an A/B test can match.
- ``Hooks``: a webhook receiver whose answer per path the test sets, recording every call.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from slipway.k8s import Cluster

from .rollout_env import ISTIO, SeldonPlayer

ROWS = [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]


def infer_body() -> bytes:
    data = [v for row in ROWS for v in row]
    return json.dumps(
        {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": data}]}
    ).encode()


def _matches(rule: dict[str, Any], value: str | None) -> bool:
    if value is None:
        return False
    if "exact" in rule:
        return bool(value == rule["exact"])
    if "prefix" in rule:
        return value.startswith(rule["prefix"])
    return re.fullmatch(rule["regex"], value) is not None


def route_matches(match: dict[str, Any], headers: dict[str, str]) -> bool:
    """Istio's HTTPMatchRequest, for the headers this load generator sends."""
    return all(_matches(rule, headers.get(name)) for name, rule in match.get("headers", {}).items())


@dataclass
class IstioPlayer:
    """Plays Istio's data plane (see the module docstring). ``every``: one request in that many
    carries ``header``; ``rate``: requests per second."""

    kube: Cluster
    namespace: str
    name: str
    seldon: SeldonPlayer
    header: tuple[str, str] = ("x-user-group", "insider")
    every: int = 3
    rate: float = 40.0
    sent: Counter[tuple[str, bool]] = field(default_factory=Counter)  # (version, header) -> n
    codes: Counter[tuple[str, int]] = field(default_factory=Counter)  # (version, code) -> n
    mirrored: Counter[str] = field(default_factory=Counter)
    routes_seen: list[list[tuple[str, int]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _credit: dict[str, float] = field(default_factory=dict)
    _n: int = 0
    _conns: dict[str, http.client.HTTPConnection] = field(default_factory=dict)

    def __enter__(self) -> IstioPlayer:
        self._thread = threading.Thread(target=self._loop, name="istio-player", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _send(self, version: str, headers: dict[str, str]) -> int | None:
        address = self.seldon.versions.get(version)
        if address is None:
            return None
        conn = self._conns.get(address)
        if conn is None:
            host, port = address.split(":")
            conn = self._conns[address] = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            conn.request(
                "POST",
                f"/v2/models/{self.name}/infer",
                infer_body(),
                {"Content-Type": "application/json", **headers},
            )
            response = conn.getresponse()
            response.read()
            return response.status
        except OSError:
            self._conns.pop(address, None)
            conn.close()
            return None

    def _pick(self, routes: list[dict[str, Any]]) -> str:
        """Smooth weighted round robin over the routes' weights."""
        total = sum(int(r.get("weight", 100)) for r in routes) or 1
        for r in routes:
            subset = r["destination"]["subset"]
            self._credit[subset] = self._credit.get(subset, 0.0) + int(r.get("weight", 100))
        best = max(routes, key=lambda r: self._credit[r["destination"]["subset"]])
        subset = str(best["destination"]["subset"])
        self._credit[subset] -= total
        return subset

    def step(self, count: int) -> None:
        """Read the VirtualService now, then send ``count`` requests as its routes say."""
        vs = self.kube.get(ISTIO, "VirtualService", self.namespace, self.name)
        if vs is None:
            return
        http_routes = vs["spec"]["http"]
        weights = [(r["destination"]["subset"], r["weight"]) for r in http_routes[-1]["route"]]
        if not self.routes_seen or self.routes_seen[-1] != weights:
            self.routes_seen.append(weights)
        for _ in range(count):
            self._n += 1
            flagged = self._n % self.every == 0
            headers = {self.header[0]: self.header[1]} if flagged else {}
            chosen = next(
                (
                    r
                    for r in http_routes
                    if not r.get("match") or any(route_matches(m, headers) for m in r["match"])
                ),
                http_routes[-1],
            )
            version = self._pick(chosen["route"])
            code = self._send(version, headers)
            if code is not None:
                self.sent[(version, flagged)] += 1
                self.codes[(version, code)] += 1
            mirror = chosen.get("mirror")
            share = float((chosen.get("mirrorPercentage") or {}).get("value", 100.0))
            copied = mirror and (self._n % 100) < share
            if copied and self._send(mirror["subset"], headers) is not None:  # answer discarded
                self.mirrored[mirror["subset"]] += 1

    def _loop(self) -> None:
        per_step, period = max(1, round(self.rate / 10)), 0.1
        while not self._stop.wait(period):
            try:
                self.step(per_step)
            except Exception as exc:
                print(f"istio player: {exc}")

    def served(self, version: str) -> int:
        return sum(n for (v, _), n in self.sent.items() if v == version)


@dataclass
class Hooks:
    """A webhook receiver: ``answer[path]`` is the status it replies (200 by default); every
    call's JSON body is kept in ``calls[path]``."""

    answer: dict[str, int] = field(default_factory=dict)
    calls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self, path: str) -> int:
        return len(self.calls.get(path, []))

    @contextlib.contextmanager
    def running(self) -> Iterator[Hooks]:
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                hooks.calls.setdefault(self.path, []).append(body)
                code = hooks.answer.get(self.path, 200)
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
