"""How Istio routes one HTTP request, as pure functions: the ingress stand-in's decisions.

The Istio ingress stand-in (``ingress.py``) asks this module where a request goes; nothing here does
I/O, so the semantics are unit-tested with a seeded random generator. What it follows, from Istio's
``networking.istio.io/v1`` API (and Envoy, which executes it):

- a VirtualService's ``http`` routes are tried in order; the first whose ``match`` list is empty, or
  has one entry whose every condition holds, takes the request; none matching is a 404;
- a condition is ``uri``, ``method``, ``authority``, ``headers``, ``withoutHeaders`` or
  ``queryParams``, each a StringMatch (``exact``, ``prefix`` or ``regex``, the regex matching the
  whole value as Envoy's RE2 matcher does; an empty StringMatch on a header means "present").
  Cookies are matched as Istio documents it, through a regex on the ``cookie`` header. A condition
  this module does not know (``sourceLabels``, ``port``, ``gateways``...) never holds, so a route
  is never taken by mistake;
- a route's destinations are chosen at random in proportion to their ``weight`` (a lone destination
  without a weight takes everything); ``mirror`` (or each of ``mirrors``) gets a copy of
  ``mirrorPercentage.value`` percent of the requests (100 when unset);
- a destination ``host`` names a Service (``name``, ``name.namespace``, or the full
  ``name.namespace.svc.<domain>``, short names relative to the VirtualService's namespace); its
  endpoints are the ready pods the Service's selector selects, narrowed by the labels of the
  DestinationRule subset the destination names. No endpoint is a 503 ("no healthy upstream").
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

MODEL_PATH = re.compile(r"^/v2/models/([^/]+)(/.*)?$")


@dataclass(frozen=True)
class Request:
    """What routing looks at: the path (without the query), method, lower-cased headers, query."""

    path: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    authority: str = ""


@dataclass(frozen=True)
class Destination:
    """A VirtualService destination: a host, optionally a subset."""

    host: str
    subset: str | None = None


@dataclass(frozen=True)
class Decision:
    """Where one request goes: its route's name, its destination, and the mirrors to copy it to."""

    route: str
    destination: Destination
    mirrors: tuple[Destination, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    """One ready pod, as the stand-ins know it: its namespace, labels and loopback port."""

    namespace: str
    labels: Mapping[str, str]
    port: int
    name: str = ""

    @property
    def version(self) -> str:
        return self.labels.get("version", "")


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None  # Istio rejects such a VirtualService; here the condition simply never holds


def string_match(spec: Mapping[str, Any] | None, value: str | None) -> bool:
    """Whether ``value`` satisfies an Istio StringMatch; an empty match only needs a value."""
    if value is None:
        return False
    spec = spec or {}
    if "exact" in spec:
        return value == str(spec["exact"])
    if "prefix" in spec:
        return value.startswith(str(spec["prefix"]))
    if "regex" in spec:
        compiled = _regex(str(spec["regex"]))
        return compiled is not None and compiled.fullmatch(value) is not None
    return True


_KNOWN = {"name", "uri", "method", "authority", "headers", "withoutHeaders", "queryParams"}


def request_matches(match: Mapping[str, Any], request: Request) -> bool:
    """Whether every condition of one HTTPMatchRequest holds for ``request``."""
    if set(match) - _KNOWN:
        return False
    if "uri" in match and not string_match(match["uri"], request.path):
        return False
    if "method" in match and not string_match(match["method"], request.method):
        return False
    if "authority" in match and not string_match(match["authority"], request.authority):
        return False
    for name, spec in (match.get("headers") or {}).items():
        if not string_match(spec, request.headers.get(name.lower())):
            return False
    for name, spec in (match.get("withoutHeaders") or {}).items():
        if string_match(spec, request.headers.get(name.lower())):
            return False
    return all(
        string_match(spec, request.query.get(name))
        for name, spec in (match.get("queryParams") or {}).items()
    )


def route_matches(http_route: Mapping[str, Any], request: Request) -> bool:
    """An http route with no ``match`` takes everything; otherwise any one match entry will do."""
    matches = http_route.get("match") or []
    return not matches or any(request_matches(m, request) for m in matches)


def _destination(spec: Mapping[str, Any]) -> Destination:
    subset = spec.get("subset")
    return Destination(str(spec.get("host", "")), str(subset) if subset else None)


def pick_weighted(routes: list[Mapping[str, Any]], rng: random.Random) -> Destination | None:
    """A destination chosen in proportion to the weights; None when nothing has weight."""
    if len(routes) == 1 and "weight" not in routes[0]:
        return _destination(routes[0].get("destination") or {})
    weights = [max(int(r.get("weight") or 0), 0) for r in routes]
    total = sum(weights)
    if total <= 0:
        return None
    point = rng.random() * total
    for route, weight in zip(routes, weights, strict=True):
        if point < weight:
            return _destination(route.get("destination") or {})
        point -= weight
    return _destination(routes[-1].get("destination") or {})  # float rounding at the very end


def _percent(spec: Mapping[str, Any] | None, legacy: Any = None) -> float:
    if spec is not None and "value" in spec:
        return float(spec["value"])
    return float(legacy) if legacy is not None else 100.0


def pick_mirrors(http_route: Mapping[str, Any], rng: random.Random) -> tuple[Destination, ...]:
    """The mirrors this request is copied to, each drawn with its own percentage."""
    candidates: list[tuple[Mapping[str, Any], float]] = []
    if http_route.get("mirror"):
        candidates.append(
            (
                http_route["mirror"],
                _percent(http_route.get("mirrorPercentage"), http_route.get("mirrorPercent")),
            )
        )
    for mirror in http_route.get("mirrors") or []:
        candidates.append((mirror.get("destination") or {}, _percent(mirror.get("percentage"))))
    return tuple(
        _destination(spec) for spec, percent in candidates if rng.random() * 100.0 < percent
    )


def decide(
    http_routes: Iterable[Mapping[str, Any]], request: Request, rng: random.Random
) -> Decision | None:
    """The first matching http route's weighted destination and mirrors; None if none matches."""
    for index, http_route in enumerate(http_routes):
        if not route_matches(http_route, request):
            continue
        destination = pick_weighted(list(http_route.get("route") or []), rng)
        if destination is None:
            return None
        name = str(http_route.get("name") or f"http[{index}]")
        return Decision(name, destination, pick_mirrors(http_route, rng))
    return None


def service_key(host: str, namespace: str, domain: str) -> tuple[str, str] | None:
    """(namespace, name) of the Service a host names, relative to ``namespace``; None when the
    host is not a cluster Service (an external name, a wildcard)."""
    host = host.lower().rstrip(".")
    suffix = f".svc.{domain}"
    if host.endswith(suffix):
        host = host[: -len(suffix)]
    elif host.endswith(".svc"):
        host = host[: -len(".svc")]
    parts = host.split(".")
    if len(parts) == 1 and parts[0] and parts[0] != "*":
        return namespace, parts[0]
    if len(parts) == 2 and all(parts):
        return parts[1], parts[0]
    return None


def model_of(path: str) -> str | None:
    """The model name of a V2 path ``/v2/models/<name>/...``."""
    found = MODEL_PATH.match(path)
    return found.group(1) if found else None


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A Kubernetes equality selector; an empty one selects nothing (as a Service's does)."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@dataclass(frozen=True)
class VirtualService:
    """The parts of a VirtualService that routing reads."""

    namespace: str
    name: str
    hosts: tuple[str, ...]
    http: tuple[Mapping[str, Any], ...]


class RoutingTable:
    """One consistent snapshot of VirtualServices, DestinationRules, Services and ready endpoints.

    Built once per change (never per request), then read by every request until the next change.
    """

    def __init__(
        self,
        virtual_services: Iterable[Mapping[str, Any]] = (),
        destination_rules: Iterable[Mapping[str, Any]] = (),
        services: Iterable[Mapping[str, Any]] = (),
        endpoints: Iterable[Endpoint] = (),
        domain: str = "cluster.local",
    ) -> None:
        self.domain = domain
        self.endpoints = tuple(endpoints)
        self._selectors: dict[tuple[str, str], dict[str, str]] = {}
        for svc in services:
            meta = svc.get("metadata") or {}
            selector = (svc.get("spec") or {}).get("selector") or {}
            self._selectors[(meta.get("namespace", ""), meta.get("name", ""))] = dict(selector)
        self._subsets: dict[tuple[str, str], list[tuple[str, dict[str, dict[str, str]]]]] = {}
        for rule in destination_rules:
            ns = (rule.get("metadata") or {}).get("namespace", "")
            spec = rule.get("spec") or {}
            key = service_key(str(spec.get("host", "")), ns, domain)
            if key is not None:
                subsets = {
                    s["name"]: dict(s.get("labels") or {}) for s in spec.get("subsets") or []
                }
                self._subsets.setdefault(key, []).append((ns, subsets))
        self._by_host: dict[str, list[VirtualService]] = {}
        self._by_service: dict[tuple[str, str], list[VirtualService]] = {}
        for obj in virtual_services:
            meta = obj.get("metadata") or {}
            spec = obj.get("spec") or {}
            vs = VirtualService(
                meta.get("namespace", ""),
                meta.get("name", ""),
                tuple(str(h).lower() for h in spec.get("hosts") or []),
                tuple(spec.get("http") or []),
            )
            for host in vs.hosts:
                key = service_key(host, vs.namespace, domain)
                names = {host} | ({self.fqdn(key)} if key else set())
                for name in names:
                    self._by_host.setdefault(name, []).append(vs)
                if key is not None:
                    self._by_service.setdefault(key, []).append(vs)

    def fqdn(self, key: tuple[str, str]) -> str:
        return f"{key[1]}.{key[0]}.svc.{self.domain}"

    def virtual_service(self, model: str, authority: str = "") -> VirtualService | str:
        """The VirtualService a request for ``model`` follows, or why there is none.

        A Host header naming a VirtualService host selects it, as at an Istio gateway. Otherwise
        the model name is the ``app`` label a Service selects (how Slipway names models), and the
        request follows that Service's VirtualService as a mesh client calling the Service would;
        a Service without one is routed to all its endpoints.
        """
        host = authority.lower().rsplit(":", 1)[0] if authority else ""
        if host in self._by_host:
            found = self._by_host[host]
            return found[0] if len(found) == 1 else f"{len(found)} VirtualServices claim {host}"
        keys = sorted(k for k, sel in self._selectors.items() if sel.get("app") == model)
        if not keys:
            return f"no Service selects app={model}"
        candidates = [(key, self._by_service.get(key, [])) for key in keys]
        if len(candidates) > 1:
            hosts = ", ".join(self.fqdn(key) for key, _ in candidates)
            return f"several Services serve model {model}; set the Host header to one of {hosts}"
        key, found = candidates[0]
        if not found:
            plain = {"route": [{"destination": {"host": self.fqdn(key)}}], "name": "service"}
            return VirtualService(key[0], key[1], (self.fqdn(key),), (plain,))
        if len(found) > 1:
            return f"{len(found)} VirtualServices claim {self.fqdn(key)}"
        return found[0]

    def resolve(self, destination: Destination, namespace: str) -> list[Endpoint]:
        """The ready endpoints of a destination written in a VirtualService in ``namespace``."""
        key = service_key(destination.host, namespace, self.domain)
        if key is None or key not in self._selectors:
            return []
        wanted = dict(self._selectors[key])
        if not wanted:
            return []
        if destination.subset is not None:
            labels = self._subset_labels(key, destination.subset, namespace)
            if labels is None:
                return []
            wanted |= labels
        return [e for e in self.endpoints if e.namespace == key[0] and selects(wanted, e.labels)]

    def _subset_labels(
        self, key: tuple[str, str], subset: str, client_namespace: str
    ) -> dict[str, str] | None:
        """The subset's labels from the DestinationRule Istio would pick: the client's namespace
        first, then the Service's, then any other."""
        rules = self._subsets.get(key, [])
        order = sorted(rules, key=lambda r: (r[0] != client_namespace, r[0] != key[0], r[0]))
        for _, subsets in order:
            if subset in subsets:
                return subsets[subset]
        return None
