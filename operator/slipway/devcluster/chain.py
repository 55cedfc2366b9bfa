"""The example chain on ``slipway dev up --examples``: wait until it serves, then roll out.

``examples/`` declares Dataset -> TrainingJob -> TuningSweep -> ModelDeployment, the
ModelDeployment serving the TrainingJob's model under a Canary policy. ``wait_until_serving``
follows the objects (one line each time one's Ready condition or phase changes) until the
ModelDeployment is Ready and the ingress answers a prediction from it. ``rollout_best_model`` then
makes the change a user would commit: the ModelDeployment's model becomes the TuningSweep's best
trial (the same as ``kubectl patch md digits --type merge -p '{"spec": {"model":
{"trainingJobRef": null, "tuningSweepRef": {"name": "digits-mlp-sweep"}}}}'``), which the
operator rolls out as a canary judged on Prometheus, while ``slipway dev load`` gives it traffic.
"""

from __future__ import annotations

import copy
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from slipway.k8s import Cluster

from .ingress import VERSION_HEADER

API = "slipway.dev/v1alpha1"
FIRST_DIGIT = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0]
FIRST_DIGIT += [0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0]
FIRST_DIGIT += [0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]  # scikit-learn's digits[0]


class ChainError(RuntimeError):
    """The chain did not get where it was expected to in time."""


def find(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The one example of ``kind``."""
    found = [m for m in manifests if m.get("kind") == kind]
    if len(found) != 1:
        raise ChainError(f"examples/ should hold one {kind}, found {len(found)}")
    return found[0]


def summary(obj: dict[str, Any]) -> str:
    """Ready, phase and the Ready condition's reason and message, in one line."""
    status = obj.get("status") or {}
    conditions: list[dict[str, Any]] = status.get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), {})
    parts = [f"Ready={ready.get('status', 'Unknown')}", str(status.get("phase") or "")]
    if ready.get("reason"):
        parts.append(f"({ready['reason']}: {ready.get('message', '')})")
    return " ".join(p for p in parts if p)


def failure(key: str, obj: dict[str, Any] | None) -> str | None:
    """Why the chain cannot serve any more, when ``obj`` has failed for good (phase Failed)."""
    status = (obj or {}).get("status") or {}
    if status.get("phase") != "Failed":
        return None
    return f"{key} failed: {summary(obj or {})}; fix its spec and `kubectl apply` it again"


def is_ready(obj: dict[str, Any] | None) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def predict(ingress: str, model: str, timeout: float = 10.0) -> tuple[int, str, Any]:
    """One V2 request with scikit-learn's first digit: (HTTP status, version header, body)."""
    body = {
        "inputs": [
            {"name": "input", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": FIRST_DIGIT}
        ]
    }
    request = urllib.request.Request(
        f"{ingress}/v2/models/{model}/infer",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers.get(VERSION_HEADER, ""), json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, "", exc.read().decode(errors="replace")
    except OSError as exc:
        return 0, "", str(exc)


def wait_until_serving(
    cluster: Cluster,
    manifests: list[dict[str, Any]],
    ingress: str,
    timeout: float,
    say: Callable[[str], None] = print,
) -> tuple[str, Any]:
    """Follow the examples until the ModelDeployment answers through ``ingress``; returns the
    version that answered and its answer. Raises ``ChainError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    shown: dict[str, str] = {}
    deployment = find(manifests, "ModelDeployment")
    model = deployment["metadata"]["name"]
    last: tuple[int, str, Any] = (0, "", "not asked yet")
    while time.monotonic() < deadline:
        live = {}
        for manifest in manifests:
            meta = manifest["metadata"]
            obj = cluster.get(API, manifest["kind"], meta.get("namespace"), meta["name"])
            key = f"{manifest['kind']}/{meta['name']}"
            live[key] = obj
            line = summary(obj or {}) if obj else "not found"
            if shown.get(key) != line:
                say(f"  {key}: {line}")
                shown[key] = line
            problem = failure(key, obj)
            if problem is not None:  # waiting on would only time out
                raise ChainError(problem)
        if is_ready(live.get(f"ModelDeployment/{model}")):
            last = predict(ingress, model)
            if last[0] == 200:
                return last[1], last[2]
        time.sleep(1.0)
    raise ChainError(
        f"the chain did not serve within {timeout:.0f} s (last answer from the ingress: "
        f"{last[0]} {str(last[2])[:200]}); see `slipway dev status` for the logs"
    )


def rollout_best_model(
    cluster: Cluster,
    manifests: list[dict[str, Any]],
    timeout: float,
    say: Callable[[str], None] = print,
) -> str:
    """Once the sweep has a best model, point the ModelDeployment at it; returns the sweep name.

    Applied with the field manager that applied the examples, so the field it no longer sets
    (``trainingJobRef``) is removed, as a commit changing the manifest would do through Argo CD.
    """
    sweep = find(manifests, "TuningSweep")["metadata"]
    deadline = time.monotonic() + timeout
    while True:
        live = cluster.get(API, "TuningSweep", sweep.get("namespace"), sweep["name"]) or {}
        best = (live.get("status") or {}).get("bestTrial") or {}
        if best.get("modelUri"):
            break
        if time.monotonic() > deadline:
            raise ChainError(f"TuningSweep {sweep['name']} has no best model: {summary(live)}")
        time.sleep(2.0)
    changed = copy.deepcopy(find(manifests, "ModelDeployment"))
    changed["spec"]["model"] = {"tuningSweepRef": {"name": sweep["name"]}}
    cluster.apply(changed)
    say(
        f"  ModelDeployment/{changed['metadata']['name']}: spec.model -> tuningSweepRef "
        f"{sweep['name']} (best trial {best.get('name')}, {best.get('objective', '')})"
    )
    return str(sweep["name"])
