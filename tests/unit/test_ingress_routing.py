"""The Istio ingress stand-in's routing decisions (``devcluster.routing``), as pure functions.

Randomness comes from a seeded generator (counts over many draws) or a scripted one (exact
boundaries), so every assertion is deterministic.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from slipway.devcluster.routing import (
    Decision,
    Destination,
    Endpoint,
    Request,
    RoutingTable,
    decide,
    model_of,
    pick_mirrors,
    pick_weighted,
    service_key,
    string_match,
)

HOST = "digits.ml.svc.cluster.local"


class Scripted(random.Random):
    """A generator whose ``random()`` returns the given values in turn."""

    def __init__(self, *values: float) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


def to(subset: str, weight: int | None = None) -> dict[str, Any]:
    route: dict[str, Any] = {"destination": {"host": HOST, "subset": subset}}
    if weight is not None:
        route["weight"] = weight
    return route


def taken(routes: list[dict[str, Any]], request: Request, rng: random.Random) -> Decision:
    decision = decide(routes, request, rng)
    assert decision is not None
    return decision


def split(stable: int, candidate: int) -> list[dict[str, Any]]:
    return [{"name": "inference", "route": [to("v1", stable), to("v2", candidate)]}]


def req(path: str = "/v2/models/digits/infer", **headers: str) -> Request:
    return Request(path, "POST", {k.replace("_", "-"): v for k, v in headers.items()})


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ({"exact": "beta"}, "beta", True),
        ({"exact": "beta"}, "beta2", False),
        ({"prefix": "be"}, "beta", True),
        ({"prefix": "be"}, "alpha", False),
        ({"regex": "b.t"}, "bet", True),
        ({"regex": "b.t"}, "beta", False),  # RE2 in Envoy matches the whole value
        ({"regex": "("}, "(", False),  # an invalid regex never matches
        ({}, "anything", True),  # an empty StringMatch on a header: the header is present
        ({}, None, False),
        ({"exact": "x"}, None, False),
    ],
)
def test_string_match(spec: dict[str, str], value: str | None, expected: bool) -> None:
    assert string_match(spec, value) is expected


def test_weights_split_by_the_drawn_point() -> None:
    routes = split(90, 10)[0]["route"]
    assert pick_weighted(routes, Scripted(0.0)) == Destination(HOST, "v1")
    assert pick_weighted(routes, Scripted(0.8999)) == Destination(HOST, "v1")
    assert pick_weighted(routes, Scripted(0.9)) == Destination(HOST, "v2")
    assert pick_weighted(routes, Scripted(0.99999)) == Destination(HOST, "v2")


def test_weights_over_many_requests() -> None:
    rng = random.Random(7)
    counts = Counter(taken(split(70, 30), req(), rng).destination.subset for _ in range(10_000))
    assert 6_800 <= counts["v1"] <= 7_200
    assert counts["v1"] + counts["v2"] == 10_000
    # the same seed gives the same sequence of choices
    again = random.Random(7)
    first = [taken(split(50, 50), req(), again).destination.subset for _ in range(50)]
    again = random.Random(7)
    assert first == [taken(split(50, 50), req(), again).destination.subset for _ in range(50)]


def test_zero_weight_is_never_chosen_and_no_weight_is_no_route() -> None:
    rng = random.Random(1)
    assert {taken(split(100, 0), req(), rng).destination.subset for _ in range(2_000)} == {"v1"}
    assert decide(split(0, 0), req(), rng) is None
    lone = [{"route": [{"destination": {"host": HOST}}]}]
    decision = decide(lone, req(), rng)
    assert decision is not None and decision.destination == Destination(HOST, None)
    assert decision.route == "http[0]"


def header_routes() -> list[dict[str, Any]]:
    return [
        {
            "name": "beta-users",
            "match": [
                {"headers": {"x-user": {"exact": "beta"}}},
                {"headers": {"cookie": {"regex": "^(.*?;\\s*)?(group=beta)(;.*)?$"}}},
            ],
            "route": [to("v2")],
        },
        {
            "name": "internal",
            "match": [{"headers": {"x-team": {"prefix": "ml-"}}, "uri": {"prefix": "/v2/models/"}}],
            "route": [to("v3")],
        },
        {"name": "default", "route": [to("v1")]},
    ]


@pytest.mark.parametrize(
    ("headers", "route", "subset"),
    [
        ({"x-user": "beta"}, "beta-users", "v2"),
        ({"x-user": "Beta"}, "default", "v1"),  # values are case-sensitive
        ({"cookie": "session=1; group=beta"}, "beta-users", "v2"),
        ({"cookie": "group=beta"}, "beta-users", "v2"),
        ({"cookie": "group=betamax"}, "default", "v1"),
        ({"cookie": "session=1; group=alpha"}, "default", "v1"),
        ({"x-team": "ml-platform"}, "internal", "v3"),
        ({"x-team": "ml-platform", "x-user": "beta"}, "beta-users", "v2"),  # first match wins
        ({"x-team": "web"}, "default", "v1"),
        ({}, "default", "v1"),
    ],
)
def test_first_matching_route_wins(headers: dict[str, str], route: str, subset: str) -> None:
    decision = decide(
        header_routes(), Request("/v2/models/digits/infer", "POST", headers), Scripted()
    )
    assert decision is not None
    assert (decision.route, decision.destination.subset) == (route, subset)


def test_conditions_within_a_match_all_hold() -> None:
    routes = header_routes()
    # "internal" needs the header AND the uri prefix
    on_other_path = Request("/metrics", "GET", {"x-team": "ml-platform"})
    decision = decide(routes, on_other_path, Scripted())
    assert decision is not None and decision.route == "default"


def test_method_query_without_headers_and_unknown_conditions() -> None:
    routes = [
        {"name": "get", "match": [{"method": {"exact": "GET"}}], "route": [to("g")]},
        {"name": "q", "match": [{"queryParams": {"debug": {"exact": "1"}}}], "route": [to("q")]},
        {"name": "labels", "match": [{"sourceLabels": {"app": "x"}}], "route": [to("never")]},
        {"name": "nobot", "match": [{"withoutHeaders": {"x-bot": {}}}], "route": [to("human")]},
    ]
    assert taken(routes, Request("/v2/models/m", "GET"), Scripted()).route == "get"
    query = Request("/v2/models/m/infer", "POST", {}, {"debug": "1"})
    assert taken(routes, query, Scripted()).route == "q"
    assert taken(routes, req(), Scripted()).route == "nobot"
    assert decide(routes, req(x_bot="yes"), Scripted()) is None  # nothing matches: a 404


def test_mirror_percentage() -> None:
    route: dict[str, Any] = {
        "route": [to("v1")],
        "mirror": {"host": HOST, "subset": "v2"},
        "mirrorPercentage": {"value": 25.0},
    }
    assert pick_mirrors(route, Scripted(0.2499)) == (Destination(HOST, "v2"),)
    assert pick_mirrors(route, Scripted(0.25)) == ()
    rng = random.Random(3)
    copies = sum(len(taken([route], req(), rng).mirrors) for _ in range(10_000))
    assert 2_300 <= copies <= 2_700
    # without a percentage every request is mirrored; the legacy integer field is honoured
    assert pick_mirrors({"mirror": {"host": HOST}}, Scripted(0.9999)) == (Destination(HOST),)
    assert pick_mirrors({"mirror": {"host": HOST}, "mirrorPercent": 0}, Scripted(0.0)) == ()
    # `mirrors` (Istio >= 1.22): each with its own percentage
    several = {
        "mirrors": [
            {"destination": {"host": HOST, "subset": "a"}, "percentage": {"value": 100}},
            {"destination": {"host": HOST, "subset": "b"}, "percentage": {"value": 0}},
        ]
    }
    assert pick_mirrors(several, Scripted(0.5, 0.5)) == (Destination(HOST, "a"),)


def test_no_mirror_on_a_route_that_was_not_taken() -> None:
    routes = [
        {"match": [{"headers": {"x-user": {"exact": "beta"}}}], "route": [to("v2")]},
        {"route": [to("v1")], "mirror": {"host": HOST, "subset": "v2"}},
    ]
    assert taken(routes, req(x_user="beta"), Scripted(0.0)).mirrors == ()
    assert taken(routes, req(), Scripted(0.0)).mirrors == (Destination(HOST, "v2"),)


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("digits", ("ml", "digits")),
        ("digits.other", ("other", "digits")),
        ("digits.other.svc", ("other", "digits")),
        ("digits.other.svc.cluster.local", ("other", "digits")),
        ("DIGITS.other.svc.cluster.local.", ("other", "digits")),
        ("api.example.com", None),
        ("*", None),
    ],
)
def test_service_key(host: str, key: tuple[str, str] | None) -> None:
    assert service_key(host, "ml", "cluster.local") == key


def test_model_of() -> None:
    assert model_of("/v2/models/digits/infer") == "digits"
    assert model_of("/v2/models/digits") == "digits"
    assert model_of("/v2/health/ready") is None


def obj(kind: str, ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"namespace": ns, "name": name}, "spec": spec}


def table(
    endpoints: list[Endpoint], selector: dict[str, str] | None = None, **extra: Any
) -> RoutingTable:
    service = obj("Service", "ml", "digits", {"selector": selector or {"app": "digits"}})
    rule = obj(
        "DestinationRule",
        "ml",
        "digits",
        {
            "host": HOST,
            "subsets": [
                {"name": "v1", "labels": {"version": "v1"}},
                {"name": "v2", "labels": {"version": "v2"}},
            ],
        },
    )
    vs = obj("VirtualService", "ml", "digits", {"hosts": [HOST], "http": split(50, 50)})
    return RoutingTable(
        [vs, *extra.get("vs", [])], [rule, *extra.get("rules", [])], [service], endpoints
    )


def pod(version: str, port: int, ns: str = "ml", **labels: str) -> Endpoint:
    return Endpoint(ns, {"app": "digits", "version": version, **labels}, port)


def test_table_resolves_model_virtual_service_and_subset_endpoints() -> None:
    t = table([pod("v1", 1001), pod("v2", 1002), pod("v1", 1003), pod("v1", 1004, ns="other")])
    vs = t.virtual_service("digits")
    assert not isinstance(vs, str) and (vs.namespace, vs.name) == ("ml", "digits")
    assert [e.port for e in t.resolve(Destination(HOST, "v1"), "ml")] == [1001, 1003]
    assert [e.port for e in t.resolve(Destination("digits", "v2"), "ml")] == [1002]
    assert [e.port for e in t.resolve(Destination(HOST), "ml")] == [1001, 1002, 1003]
    assert t.resolve(Destination(HOST, "v9"), "ml") == []  # no such subset: no upstream
    assert t.virtual_service("unknown") == "no Service selects app=unknown"


def test_service_selector_must_select_the_pods() -> None:
    """A Service whose selector the pods do not carry has no endpoints, as on a cluster."""
    t = table([pod("v1", 1001)], selector={"app": "digits", "slipway.dev/modeldeployment": "d"})
    assert t.resolve(Destination(HOST, "v1"), "ml") == []
    labelled = pod("v1", 1002, **{"slipway.dev/modeldeployment": "d"})
    t = table([labelled], selector={"app": "digits", "slipway.dev/modeldeployment": "d"})
    assert t.resolve(Destination(HOST, "v1"), "ml") == [labelled]


def test_host_header_selects_another_virtual_service() -> None:
    mine = obj(
        "VirtualService",
        "lab",
        "by-header",
        {"hosts": ["by-header"], "http": [{"route": [to("v2")]}]},
    )
    t = table([pod("v1", 1001), pod("v2", 1002)], vs=[mine])
    found = t.virtual_service("digits", "by-header.lab.svc.cluster.local:8080")
    assert not isinstance(found, str) and found.name == "by-header"
    assert not isinstance(t.virtual_service("digits", "by-header"), str)
    found = t.virtual_service("digits", "localhost:8080")  # not a VirtualService host: by model
    assert not isinstance(found, str) and found.name == "digits"
    # a destination in another namespace resolves through its Service's DestinationRule
    assert [e.port for e in t.resolve(Destination(HOST, "v2"), "lab")] == [1002]


def test_destination_rule_in_the_client_namespace_wins() -> None:
    override = obj(
        "DestinationRule",
        "lab",
        "override",
        {"host": HOST, "subsets": [{"name": "v2", "labels": {"version": "v1"}}]},
    )
    t = table([pod("v1", 1001), pod("v2", 1002)], rules=[override])
    assert [e.port for e in t.resolve(Destination(HOST, "v2"), "lab")] == [1001]
    assert [e.port for e in t.resolve(Destination(HOST, "v2"), "ml")] == [1002]


def test_service_without_virtual_service_and_ambiguous_models() -> None:
    service = obj("Service", "ml", "digits", {"selector": {"app": "digits"}})
    t = RoutingTable([], [], [service], [pod("v1", 1001)])
    plain = t.virtual_service("digits")
    assert not isinstance(plain, str)
    decision = decide(plain.http, req(), Scripted())
    assert decision is not None
    assert [e.port for e in t.resolve(decision.destination, plain.namespace)] == [1001]
    twin = obj("Service", "other", "digits", {"selector": {"app": "digits"}})
    ambiguous = RoutingTable([], [], [service, twin], [])
    message = ambiguous.virtual_service("digits")
    assert isinstance(message, str) and "Host header" in message
    assert isinstance(ambiguous.virtual_service("digits", HOST), str)  # no VS has that host
    empty = obj("Service", "ml", "nosel", {"selector": {}})
    assert RoutingTable([], [], [empty], [pod("v1", 1)]).resolve(Destination("nosel"), "ml") == []
