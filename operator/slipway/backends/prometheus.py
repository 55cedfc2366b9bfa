"""Analysis provider ``prometheus``: instant PromQL queries over Prometheus' HTTP API.

Builtin metrics read the model server's own series, selected by the ``namespace`` label (added by
the scrape: a PodMonitor, or file discovery in the tests) and the server's ``model`` and
``version`` labels:

- ``request-success-rate``: percent of requests not answered 5xx. The numerator falls back to 0
  when no request succeeded (``or vector(0)``), so a candidate failing every request measures 0%,
  not "no data"; with no requests at all the ratio has no data and the check is inconclusive.
- ``request-duration``: the 99th percentile latency in milliseconds (NaN, hence no data, without
  requests).

A custom metric's query is a template: ``{{ namespace }}``, ``{{ name }}``, ``{{ model }}``,
``{{ version }}`` / ``{{ candidate }}``, ``{{ stable }}`` and ``{{ interval }}`` are replaced
before it is sent. A query must return one value (a scalar or a one-series vector).
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from slipway.api.v1alpha1.rollout import AnalysisMetric

from .analysis import AnalysisUnavailable, QueryRejected, Target

REQUESTS = "slipway_model_requests_total"
DURATION_BUCKETS = "slipway_model_request_duration_seconds_bucket"
NOT_5XX = 'code!~"5.."'
_VARIABLE = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)\s*}}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def selector(target: Target, version: str | None = None, extra: str = "") -> str:
    """The label matchers of one version's series (the candidate's by default)."""
    labels = [
        f"namespace={_quote(target.namespace)}",
        f"model={_quote(target.model)}",
        f"version={_quote(version or target.version)}",
    ]
    return "{" + ",".join(labels + ([extra] if extra else [])) + "}"


def sample_query(target: Target, window: str) -> str:
    return f"sum(increase({REQUESTS}{selector(target)}[{window}]))"


def builtin_query(name: str, target: Target, window: str) -> str:
    """PromQL of a builtin metric for the candidate over ``window``."""
    if name == "request-success-rate":
        ok = f"sum(rate({REQUESTS}{selector(target, extra=NOT_5XX)}[{window}]))"
        every = f"sum(rate({REQUESTS}{selector(target)}[{window}]))"
        return f"100 * ({ok} or vector(0)) / {every}"
    if name == "request-duration":
        buckets = f"sum by (le) (rate({DURATION_BUCKETS}{selector(target)}[{window}]))"
        return f"1000 * histogram_quantile(0.99, {buckets})"
    raise ValueError(f"no builtin metric {name!r}")


def render(template: str, target: Target, window: str) -> str:
    """A custom query with its template variables replaced."""
    values = {
        "namespace": target.namespace,
        "name": target.name,
        "model": target.model,
        "version": target.version,
        "candidate": target.version,
        "stable": target.stable,
        "interval": window,
    }
    return _VARIABLE.sub(lambda m: values[m.group(1)], template)


def query_of(metric: AnalysisMetric, target: Target) -> str:
    if metric.query:
        return render(metric.query, target, metric.interval)
    return builtin_query(metric.name, target, metric.interval)


def single_value(data: dict[str, Any], metric: str) -> float | None:
    """The one value of an instant query's result; None for no data or NaN."""
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        raw = result[1] if isinstance(result, list) else None
    elif kind == "vector" and isinstance(result, list):
        if not result:
            return None
        if len(result) > 1:
            raise QueryRejected(
                metric, f"returned {len(result)} series; aggregate it to one (e.g. sum(...))"
            )
        raw = result[0]["value"][1]
    else:
        raise QueryRejected(metric, f"returned a {kind}; it must return a scalar or a vector")
    value = float(str(raw))
    return None if math.isnan(value) else value


class PrometheusAnalysis:
    """The ``prometheus`` analysis provider, querying the server at ``url``."""

    measures = True

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _query(self, promql: str, metric: str) -> float | None:
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout) as reply:
                body = json.load(reply)
        except urllib.error.HTTPError as exc:
            if exc.code not in (400, 422):
                raise AnalysisUnavailable(f"Prometheus at {self.url}: HTTP {exc.code}") from exc
            try:
                detail = json.loads(exc.read() or b"{}").get("error", "")
            except ValueError:
                detail = ""
            raise QueryRejected(metric, f"Prometheus refused the query: {detail}") from exc
        except (OSError, ValueError) as exc:
            raise AnalysisUnavailable(f"Prometheus at {self.url}: {exc}") from exc
        if body.get("status") != "success":
            raise QueryRejected(metric, f"Prometheus answered {body.get('error', body)}")
        return single_value(body.get("data") or {}, metric)

    def sample_size(self, target: Target, window: str) -> float | None:
        return self._query(sample_query(target, window), "sample size")

    def measure(self, metric: AnalysisMetric, target: Target) -> float | None:
        return self._query(query_of(metric, target), metric.name)
