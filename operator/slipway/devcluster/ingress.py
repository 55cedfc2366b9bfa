"""The local Istio ingress stand-in: one HTTP entry point on loopback that routes as Istio would.

On a cluster an Istio gateway (Envoy) applies the VirtualService and DestinationRule the operator
wrote. Locally this aiohttp server does the same for ``/v2/models/<name>/...``: the routing
decision is ``routing.decide`` (weights, header / cookie / URI matches, mirrors), the destination's
endpoints are the ready model-server processes the Seldon stand-in started whose pod labels the
Service and the DestinationRule subset select. Each answer carries ``x-slipway-version``: the
``version`` label of the process that answered.

The routing table is rebuilt only when the objects or the endpoints change (the supervisor polls
them every half second), never per request; connections to the model servers are pooled.
Mirrored copies are sent in the background with ``-shadow`` appended to the Host (as Envoy does),
their answers discarded: they never delay the caller. Errors read like Envoy's: 404 when no route
matches, 503 ``no healthy upstream`` when a destination has no ready endpoint.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Iterator

import aiohttp
from aiohttp import web

from .routing import Decision, Destination, Endpoint, Request, RoutingTable, decide, model_of

log = logging.getLogger("slipway.standins.ingress")

VERSION_HEADER = "x-slipway-version"
MAX_MIRRORS_IN_FLIGHT = 256  # beyond that a copy is dropped rather than queued
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
    }
)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class Ingress:
    """The entry point: ``start`` binds it, ``update`` swaps in a new routing table."""

    def __init__(self, host: str, port: int, rng: random.Random | None = None) -> None:
        self.host, self.port = host, port
        self.table = RoutingTable()
        self.rng = rng or random.Random()
        self.mirrored = 0  # copies sent, for the log and the tests
        self._turns: dict[tuple[str, str, str | None], Iterator[int]] = {}
        self._mirrors: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512, limit_per_host=0, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, reuse_address=True).start()
        log.info("Istio ingress stand-in listening on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        for task in list(self._mirrors):
            task.cancel()
        if self._session is not None:
            await self._session.close()

    def update(self, table: RoutingTable) -> None:
        self.table = table
        self._turns.clear()

    def _pick(self, namespace: str, destination: Destination) -> Endpoint | None:
        endpoints = self.table.resolve(destination, namespace)
        if not endpoints:
            return None
        key = (namespace, destination.host, destination.subset)
        turn = self._turns.setdefault(key, itertools.count())
        return endpoints[next(turn) % len(endpoints)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        model = model_of(request.path)
        if model is None:
            return _error(404, "the ingress routes /v2/models/<name>/... only")
        table = self.table
        vs = table.virtual_service(model, request.host)
        if isinstance(vs, str):
            return _error(404, vs)
        headers = {k.lower(): v for k, v in request.headers.items()}
        routed = Request(request.path, request.method, headers, dict(request.query), request.host)
        decision = decide(vs.http, routed, self.rng)
        if decision is None:
            return _error(404, f"no route of VirtualService {vs.namespace}/{vs.name} matched")
        body = await request.read()  # before choosing: the table may change while it uploads
        endpoint = self._pick(vs.namespace, decision.destination)
        if endpoint is None:
            return _error(503, "no healthy upstream")
        forward = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        self._mirror(decision, vs.namespace, request, forward, body)
        assert self._session is not None
        try:
            async with self._session.request(
                request.method,
                f"http://127.0.0.1:{endpoint.port}{request.path_qs}",
                headers={**forward, "Host": request.host},
                data=body,
                allow_redirects=False,
            ) as upstream:
                payload = await upstream.read()
                reply = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
                reply[VERSION_HEADER] = endpoint.version
                return web.Response(status=upstream.status, body=payload, headers=reply)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.debug("upstream %s failed: %r", endpoint, exc)
            return _error(503, f"upstream connect error or disconnect/reset before headers: {exc}")

    def _mirror(
        self,
        decision: Decision,
        namespace: str,
        request: web.Request,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        for destination in decision.mirrors:
            endpoint = self._pick(namespace, destination)
            if endpoint is None or len(self._mirrors) >= MAX_MIRRORS_IN_FLIGHT:
                continue
            url = f"http://127.0.0.1:{endpoint.port}{request.path_qs}"
            shadow = {**headers, "Host": f"{request.host}-shadow"}
            task = asyncio.create_task(self._send_copy(request.method, url, shadow, body))
            self._mirrors.add(task)
            task.add_done_callback(self._mirrors.discard)
            self.mirrored += 1

    async def _send_copy(self, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
        assert self._session is not None
        try:
            async with self._session.request(method, url, headers=headers, data=body) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.debug("mirror to %s failed: %r", url, exc)
