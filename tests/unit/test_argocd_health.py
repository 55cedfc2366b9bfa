"""The Argo CD health checks, run under a real Lua 5.1 (lupa) against real objects.

What runs is what ships: each script is read from the chart's argocd-cm snippet
(``charts/slipway/files/argocd/argocd-cm-health.yaml``), which must be what
``hack/argocd_health_snippet.py`` makes of the sources. The objects are the testdata that
``hack/capture_health_testdata.py`` captured from a real API server, one file per state, named
``<health>-<case>.yaml``: the check must answer ``<health>``. Argo CD's contract: the object in
the global ``obj``, a table ``{status, message}`` returned. The runtime here has no ``os``,
``io``, ``require`` or ``load``, so a check that needs them fails here before it fails in Argo CD.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa.lua51 import LuaRuntime

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = ROOT / "charts" / "slipway" / "files" / "argocd" / "argocd-cm-health.yaml"
TESTDATA = ROOT / "tests" / "testdata" / "health"
PREFIX = "resource.customizations.health."
HEALTH = {"healthy": "Healthy", "progressing": "Progressing", "degraded": "Degraded"}
HEALTH["suspended"] = "Suspended"
KINDS = {
    "slipway.dev_Dataset",
    "slipway.dev_TrainingJob",
    "slipway.dev_TuningSweep",
    "slipway.dev_ModelDeployment",
    "machinelearning.seldon.io_SeldonDeployment",
    "kubeflow.org_Experiment",
    "trainer.kubeflow.org_TrainJob",
    "kubeflow.org_PyTorchJob",
}
UNSAFE = ("os", "io", "require", "load", "loadstring", "loadfile", "dofile", "module", "package")


def scripts() -> dict[str, str]:
    data: dict[str, str] = yaml.safe_load(SNIPPET.read_text())["data"]
    return {key.removeprefix(PREFIX): text for key, text in data.items()}


def key_of(obj: dict[str, Any]) -> str:
    group = obj["apiVersion"].rpartition("/")[0]
    return f"{group}_{obj['kind']}"


def health(script: str, obj: dict[str, Any]) -> tuple[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)
    for name in UNSAFE:
        lua.globals()[name] = None
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    assert result is not None, "the script returned nothing"
    return str(result["status"]), str(result["message"] or "")


def cases() -> list[Path]:
    return sorted(TESTDATA.glob("*/*.yaml"))


def test_snippet_is_generated_from_the_sources() -> None:
    spec = importlib.util.spec_from_file_location(
        "snippet", ROOT / "hack" / "argocd_health_snippet.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, "run hack/argocd_health_snippet.py"


def test_every_kind_has_a_check_and_real_objects_in_each_state() -> None:
    assert set(scripts()) == KINDS
    seen: dict[str, set[str]] = {}
    for path in cases():
        obj = yaml.safe_load(path.read_text())
        seen.setdefault(key_of(obj), set()).add(path.name.split("-")[0])
        assert "managedFields" not in obj["metadata"], path
        assert obj["metadata"].get("uid"), f"{path} was not read from an API server"
    for kind in KINDS:
        assert {"healthy", "progressing", "degraded"} <= seen.get(kind, set()), kind
    assert "suspended" in seen["slipway.dev_ModelDeployment"]


@pytest.mark.parametrize("path", cases(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_check_answers_the_captured_state(path: Path) -> None:
    obj = yaml.safe_load(path.read_text())
    status, message = health(scripts()[key_of(obj)], obj)
    assert status == HEALTH[path.name.split("-")[0]], message
    assert message, "every answer says why"


def captured(kind: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load((TESTDATA / kind / f"{name}.yaml").read_text())
    return found


def test_rolled_back_names_the_metric_and_the_stable_version() -> None:
    obj = captured("ModelDeployment", "degraded-rolled-back")
    status, message = health(scripts()["slipway.dev_ModelDeployment"], obj)
    rollout = obj["status"]["rollout"]
    assert status == "Degraded"
    assert "error-percent 42 > max 10" in message and rollout["candidate"] in message
    assert f"{rollout['stable']} keeps serving" in message


def test_a_rollback_of_an_older_spec_is_not_degraded() -> None:
    """Once the spec changed after a rollback (and the operator observed it), the old rollback
    no longer describes the object."""
    obj = captured("ModelDeployment", "degraded-rolled-back")
    obj["metadata"]["generation"] += 1
    obj["status"]["observedGeneration"] = obj["metadata"]["generation"]
    status, _ = health(scripts()["slipway.dev_ModelDeployment"], obj)
    assert status == "Healthy"


def test_stale_status_says_which_generation() -> None:
    obj = captured("Dataset", "progressing-spec-not-observed")
    generation, observed = obj["metadata"]["generation"], obj["status"]["observedGeneration"]
    assert observed < generation
    _, message = health(scripts()["slipway.dev_Dataset"], obj)
    assert f"generation {generation}" in message and f"generation {observed})" in message


def test_gates_and_inconclusive_data_suspend() -> None:
    script = scripts()["slipway.dev_ModelDeployment"]
    for case, words in (
        ("suspended-confirm-promotion", "confirm-promotion"),
        ("suspended-confirm-rollout", "confirm-rollout"),
        ("suspended-rollout-inconclusive", "inconclusive"),
    ):
        status, message = health(script, captured("ModelDeployment", case))
        assert (status, words in message) == ("Suspended", True), message


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_object_without_status_is_progressing(kind: str) -> None:
    group, _, name = kind.rpartition("_")
    obj = {"apiVersion": f"{group}/v1", "kind": name, "metadata": {"name": "x", "generation": 1}}
    assert health(scripts()[kind], obj)[0] == "Progressing"


def test_examples_sync_in_the_chain_order_and_the_application_points_at_them() -> None:
    waves = {}
    for path in sorted((ROOT / "examples").glob("0*.yaml")):
        doc = yaml.safe_load(path.read_text())
        waves[doc["kind"]] = int(doc["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
    chain = ["Dataset", "TrainingJob", "TuningSweep", "ModelDeployment"]
    assert sorted(waves, key=waves.__getitem__) == chain
    apps = list(yaml.safe_load_all((ROOT / "examples" / "argocd" / "application.yaml").read_text()))
    assert {app["kind"] for app in apps} == {"Application"}
    for app in apps:
        assert (ROOT / app["spec"]["source"]["path"]).is_dir(), app["metadata"]["name"]
