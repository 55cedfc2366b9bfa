"""Prometheus metrics that the rollout analysis queries to judge a canary.

Names are part of Slipway's contract with the operator's analysis templates:

- `slipway_model_requests_total{model,version,code}`: infer requests by HTTP status code;
- `slipway_model_request_duration_seconds{model,version}`: infer latency histogram;
- `slipway_model_batch_size{model,version}`: rows per onnxruntime call (1 request = its rows);
- `slipway_model_inflight_requests{model,version}`: infer requests being served now;
- `slipway_model_ready{model,version}`: 1 once the model loaded and warmed up.

Each server process gets its own registry (plus process/platform collectors) so tests can run
several in one interpreter; label children are bound once, off the hot path.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServerMetrics:
    """The server's metrics, bound to one model name and version."""

    def __init__(self, model: str, version: str) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        labels = ("model", "version")
        self._requests = Counter(
            "slipway_model_requests",
            "Inference requests by model, version and HTTP status code.",
            (*labels, "code"),
            registry=self.registry,
        )
        duration = Histogram(
            "slipway_model_request_duration_seconds",
            "Inference request latency, from the first body byte to the reply.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        batch = Histogram(
            "slipway_model_batch_size",
            "Rows in each onnxruntime call (adaptive batching merges requests).",
            labels,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        inflight = Gauge(
            "slipway_model_inflight_requests",
            "Inference requests being served now.",
            labels,
            registry=self.registry,
        )
        ready = Gauge(
            "slipway_model_ready",
            "1 when the model is loaded, verified and warmed up.",
            labels,
            registry=self.registry,
        )
        self._model, self._version = model, version
        self.duration = duration.labels(model, version)
        self.batch_size = batch.labels(model, version)
        self.inflight = inflight.labels(model, version)
        self.ready = ready.labels(model, version)
        self._by_code: dict[int, Counter] = {}

    def count(self, code: int) -> None:
        """Count one finished infer request with its HTTP status code."""
        child = self._by_code.get(code)
        if child is None:
            child = self._requests.labels(self._model, self._version, str(code))
            self._by_code[code] = child
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
