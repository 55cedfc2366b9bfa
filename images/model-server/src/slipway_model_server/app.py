"""The ASGI application: V2 REST routes, health, metrics and the model's load lifecycle.

A plain ASGI callable rather than a web framework, because this is the hot path and every
request pays for routing and (de)serialization layers: routing is a split of the path, bodies
are read straight from `receive`, replies are pre-encoded bytes. The model loads in the
background after the server starts, so `/v2/health/live` answers at once and
`/v2/health/ready` says why the model is not ready (loading, fetch error, digest mismatch, bad
graph, failed warm-up) until it is.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from . import __version__
from .batching import AdaptiveBatcher, Runner
from .loader import ModelLoadError, fetch_model_bytes, verify_sha256
from .metrics import CONTENT_TYPE, ServerMetrics
from .model import OnnxModel
from .protocol import RequestError, decode_infer_request, encode_infer_response
from .settings import ServerSettings

log = logging.getLogger("slipway_model_server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = b"application/json"


class ClientGone(Exception):
    """The client disconnected before sending the whole body."""


def _too_large(limit: int) -> RequestError:
    return RequestError(
        413, f"request body exceeds the limit of {limit} bytes (SLIPWAY_MAX_BODY_BYTES)"
    )


def _json(payload: object) -> bytes:
    return orjson.dumps(payload)


class ModelServer:
    """One model, served over V2 REST; an ASGI 3 application."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.name = settings.model_name
        self.version = settings.model_version
        self.metrics = ServerMetrics(self.name, self.version)
        self.model: OnnxModel | None = None
        self.runner: Runner | None = None
        self.batcher: AdaptiveBatcher | None = None
        self.ready = False
        self.reason = "model is loading"
        self.digest: str | None = None
        self._load_task: asyncio.Task[None] | None = None
        self._metadata = b""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inflight = 0  # infer requests being served (the gauge, as a cheap int)
        self._draining = False

    # ---- lifecycle -------------------------------------------------------------------------

    async def load(self) -> None:
        """Fetch, verify, load and warm up the model; on failure stay up and record why."""
        s = self.settings
        try:
            data = await asyncio.to_thread(fetch_model_bytes, s.model_uri, s.fetch_timeout_s)
            self.digest = verify_sha256(data, s.model_sha256)
            try:
                model = await asyncio.to_thread(
                    OnnxModel,
                    data,
                    intra_op_threads=s.intra_op_threads,
                    inter_op_threads=s.inter_op_threads,
                    providers=[p.strip() for p in s.execution_providers.split(",") if p.strip()],
                    spinning=s.intra_op_spinning,
                )
            except Exception as exc:
                raise ModelLoadError(f"onnxruntime cannot load the model: {exc}") from exc
            try:
                latency = await asyncio.to_thread(model.warm_up)
            except Exception as exc:
                raise ModelLoadError(f"warm-up inference failed: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - whatever failed, stay up and say why
            self.reason = str(exc) if isinstance(exc, ModelLoadError) else f"load failed: {exc!r}"
            log.error("model %s version %s is not ready: %s", self.name, self.version, self.reason)
            return
        inline = s.inference_thread == "inline" or (
            s.inference_thread == "auto" and latency * 1000 <= s.inline_threshold_ms
        )
        self.runner = Runner(
            model,
            inline,
            self.metrics.batch_size.observe,
            threads=s.inference_threads or len(os.sched_getaffinity(0)),
        )
        if s.batching and model.batchable:
            self.batcher = AdaptiveBatcher(
                self.runner,
                s.batch_window_ms / 1000,
                s.max_batch_size,
                inflight=(lambda: self._inflight) if s.batch_eager else None,
            )
        elif s.batching:
            log.warning("batching requested but the model has a fixed first dimension; disabled")
        self._metadata = _json(
            {
                "name": self.name,
                "versions": [self.version],
                "platform": "onnxruntime_onnx",
                "inputs": [spec.metadata() for spec in model.inputs],
                "outputs": [spec.metadata() for spec in model.outputs],
            }
        )
        self.model = model
        if self._draining:  # SIGTERM arrived while loading: serve what is in flight, never ready
            if self.batcher is not None:
                self.batcher.flush_all()
            return
        self.ready = True
        self.reason = ""
        self.metrics.ready.set(1)
        log.info(
            "model %s version %s ready: sha256 %s, warm-up %.3f ms, inference %s, batching %s",
            self.name,
            self.version,
            self.digest,
            latency * 1000,
            "inline" if inline else "thread pool",
            f"{s.batch_window_ms} ms / {s.max_batch_size} rows{', eager' if s.batch_eager else ''}"
            if self.batcher
            else "off",
        )

    def request_drain(self) -> None:
        """Safe from a signal handler: schedule `begin_drain` on the server's event loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.begin_drain)

    def begin_drain(self) -> None:
        """SIGTERM arrived: report not ready and stop holding requests in the batch window."""
        self._draining = True
        self.ready = False
        self.reason = "shutting down"
        self.metrics.ready.set(0)
        if self.batcher is not None:
            self.batcher.flush_all()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._loop = asyncio.get_running_loop()
                self._load_task = asyncio.create_task(self.load())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._load_task is not None and not self._load_task.done():
                    self._load_task.cancel()
                if self.batcher is not None:
                    await self.batcher.drain()
                if self.runner is not None:
                    self.runner.close()
                log.info("drained; shutting down")
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ---- HTTP ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope["path"].strip("/").split("/")
        method = scope["method"]
        if parts[0] == "metrics" and len(parts) == 1:
            return await self._reply(send, 200, self.metrics.render(), CONTENT_TYPE.encode())
        if parts[0] != "v2":
            return await self._error(send, 404, f"no route for {scope['path']}")
        tail = parts[1:]
        if tail and tail[0] == "models" and len(tail) >= 2:
            return await self._model_route(scope, receive, send, tail[1], tail[2:], method)
        if method != "GET":
            return await self._error(send, 405, f"{method} is not allowed on {scope['path']}")
        if tail == ["health", "live"]:
            return await self._reply(send, 200, b'{"live":true}')
        if tail == ["health", "ready"]:
            return await self._readiness(send)
        if tail == [] or tail == [""]:
            meta = {"name": "slipway-model-server", "version": __version__, "extensions": []}
            return await self._reply(send, 200, _json(meta))
        return await self._error(send, 404, f"no route for {scope['path']}")

    async def _readiness(self, send: Send) -> None:
        if self.ready:
            return await self._reply(send, 200, b'{"ready":true}')
        await self._reply(send, 503, _json({"ready": False, "reason": self.reason}))

    async def _model_route(
        self, scope: Scope, receive: Receive, send: Send, name: str, rest: list[str], method: str
    ) -> None:
        if name != self.name:
            message = f"unknown model '{name}'; this server serves '{self.name}'"
            return await self._error(send, 404, message)
        if len(rest) >= 2 and rest[0] == "versions":
            if rest[1] != self.version:
                message = f"model '{name}' has no version '{rest[1]}'; it serves '{self.version}'"
                return await self._error(send, 404, message)
            rest = rest[2:]
        if rest == ["infer"]:
            if method != "POST":
                return await self._error(send, 405, "infer takes POST")
            return await self._infer(scope, receive, send)
        if method != "GET":
            return await self._error(send, 405, f"{method} is not allowed on {scope['path']}")
        if rest == ["ready"]:
            return await self._readiness(send)
        if rest == []:
            if self.model is None:
                return await self._error(send, 503, f"model not ready: {self.reason}")
            return await self._reply(send, 200, self._metadata)
        return await self._error(send, 404, f"no route for {scope['path']}")

    async def _infer(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        metrics = self.metrics
        metrics.inflight.inc()
        self._inflight += 1
        status, body = 500, b""
        try:
            status, body = await self._infer_body(scope, receive)
        except ClientGone:
            status = 499
            return
        finally:
            metrics.count(status)
            metrics.duration.observe(time.perf_counter() - started)
            metrics.inflight.dec()
            self._inflight -= 1
            if status != 499:
                await self._reply(send, status, body)

    async def _infer_body(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        try:
            if self.model is None or self.runner is None:
                raise RequestError(503, f"model not ready: {self.reason}")
            raw = await self._read_body(scope, receive)
            request = decode_infer_request(raw, self.model)
            if self.batcher is not None:
                outputs = await self.batcher.infer(request)
            else:
                outputs = await self.runner.run(request.feeds, request.rows)
            return 200, encode_infer_response(self.name, self.version, request, self.model, outputs)
        except RequestError as exc:
            return exc.status, _json({"error": exc.message})
        except InvalidArgument as exc:
            return 400, _json({"error": f"the model rejected the input: {exc}"})
        except ClientGone:
            raise
        except Exception as exc:
            log.exception("inference failed")
            return 500, _json({"error": f"inference failed: {type(exc).__name__}: {exc}"})

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.settings.max_body_bytes
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise RequestError(400, "invalid Content-Length header") from None
                if declared > limit:
                    raise RequestError(
                        413,
                        f"request body of {declared} bytes exceeds the limit of {limit} bytes "
                        "(SLIPWAY_MAX_BODY_BYTES)",
                    )
                break
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        body: bytes = message.get("body", b"")
        if len(body) > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            return body
        chunks, size = [body], len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _error(self, send: Send, status: int, message: str) -> None:
        await self._reply(send, status, _json({"error": message}))

    @staticmethod
    async def _reply(send: Send, status: int, body: bytes, content_type: bytes = _JSON) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
