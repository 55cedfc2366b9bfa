"""What a sweep's experiment is made of: the checks CEL cannot make (each naming its field), the
trainer arguments, Katib's names in Optuna's terms, and where a trial's model is read from."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from pydantic import ValidationError

from slipway.api.v1alpha1.tuningsweep import EarlyStopping, Parameter, TuningSweepSpec
from slipway.backends import optunamap
from slipway.backends.storage import LocalStore
from slipway.backends.tuning import TrialResult, goal_reached, ranked
from slipway.reconcilers.runs import Store
from slipway.reconcilers.sweepplan import problems, request, trial_output

from .test_tuning_katib import DATA, OWNER, SPEC


def spec(**changes: Any) -> TuningSweepSpec:
    return TuningSweepSpec.model_validate({**SPEC, **changes})


def param(name: str, type_: str, **space: Any) -> dict[str, Any]:
    return {"name": name, "parameterType": type_, "feasibleSpace": space}


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        (
            {"objective": {"type": "maximize", "objectiveMetricName": "f1"}},
            "MetricNotReported",
            "spec.objective.objectiveMetricName: the trainer does not report 'f1'",
        ),
        (
            {
                "objective": {
                    "type": "minimize",
                    "objectiveMetricName": "val_loss",
                    "additionalMetricNames": ["val_accuracy", "auc"],
                }
            },
            "MetricNotReported",
            "spec.objective.additionalMetricNames[1]",
        ),
        (
            {"parameters": [param("depth", "int", min=1, max=3)]},
            "InvalidParameter",
            "spec.parameters[0].name: 'depth' is neither a trainer option nor a mlp hyperparameter",
        ),
        (
            {"parameters": [param("epochs", "double", min=1, max=3)]},
            "InvalidParameter",
            "spec.parameters[0].parameterType: epochs takes int or discrete",
        ),
        (
            {"parameters": [param("hidden", "int", min=1.5, max=3)]},
            "InvalidParameter",
            "spec.parameters[0].feasibleSpace.min: an int parameter needs a whole number",
        ),
        (
            {"parameters": [param("optimizer", "categorical", list=["adam", "lamb"])]},
            "InvalidParameter",
            "unknown optimizers ['lamb']",
        ),
        (
            {
                "algorithm": {
                    "algorithmSettings": [{"name": "gamma", "value": "1"}],
                    "algorithmName": "tpe",
                }
            },
            "InvalidSetting",
            "spec.algorithm.algorithmSettings[0].name: tpe takes no setting 'gamma'",
        ),
        (
            {
                "earlyStopping": {
                    "algorithmName": "medianstop",
                    "algorithmSettings": [{"name": "start_step", "value": "0"}],
                }
            },
            "InvalidSetting",
            "spec.earlyStopping.algorithmSettings[0].value: start_step 0 is out of range",
        ),
    ],
)
def test_problems_name_the_field(changes: dict[str, Any], reason: str, field: str) -> None:
    found = problems(spec(**changes))
    assert found is not None and found[0] == reason and field in found[1], found


def test_a_good_spec_has_no_problem() -> None:
    assert problems(spec()) is None


def test_algorithms_optuna_cannot_serve_are_refused_with_the_list() -> None:
    with pytest.raises(ValidationError) as info:
        spec(algorithm={"algorithmName": "hyperband"})
    message = str(info.value)
    assert "bayesianoptimization" in message and "multivariate-tpe" in message


def test_local_arguments_keep_uris_and_leave_searched_options_out() -> None:
    req = request(OWNER, "digits-x", spec(), DATA, None, in_pods=False)
    assert f"--dataset-uri={DATA.uri}" in req.args
    assert not any(a.startswith(("--learning-rate", "--optimizer")) for a in req.args)
    assert "--epochs=10" in req.args
    assert req.options == {
        "learningRate": "--learning-rate=",
        "hidden": "--hparam=hidden=",
        "optimizer": "--optimizer=",
    }
    assert req.output_root == "pvc://slipway-models/team-a/digits-x"
    assert req.volumes == ()
    args = req.trial_args(
        {"learningRate": "0.01", "hidden": "64", "optimizer": "sgd"}, "/o/t", "/m"
    )
    assert args[-5:] == [
        "--learning-rate=0.01",
        "--hparam=hidden=64",
        "--optimizer=sgd",
        "--output-uri=/o/t",
        "--metrics-file=/m",
    ]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("random", optuna.samplers.RandomSampler),
        ("grid", optuna.samplers.GridSampler),
        ("tpe", optuna.samplers.TPESampler),
        ("multivariate-tpe", optuna.samplers.TPESampler),
        ("cmaes", optuna.samplers.CmaEsSampler),
        ("sobol", optuna.samplers.QMCSampler),
        ("bayesianoptimization", optuna.samplers.GPSampler),
    ],
)
def test_every_katib_algorithm_has_its_optuna_sampler(name: str, kind: type) -> None:
    s = spec(algorithm={"algorithmName": name}, parameters=SPEC["parameters"][1:])
    assert isinstance(optunamap.sampler(s.algorithm, s.parameters, "digits-x"), kind)


def test_medianstop_is_the_median_pruner_from_start_step() -> None:
    stopping = EarlyStopping.model_validate(
        {
            "algorithmName": "medianstop",
            "algorithmSettings": [
                {"name": "min_trials_required", "value": "2"},
                {"name": "start_step", "value": "1"},
            ],
        }
    )
    pruner = optunamap.pruner(stopping)
    assert isinstance(pruner, optuna.pruners.MedianPruner)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for value in (0.9, 0.8):
        trial = study.ask()
        trial.report(value, 1)
        study.tell(trial, value)
    worse = study.ask()
    worse.report(0.1, 1)  # the first epoch: start_step 1 judges it already
    assert worse.should_prune()
    assert isinstance(optunamap.pruner(None), optuna.pruners.NopPruner)


def test_grid_values_and_suggestions_follow_the_space() -> None:
    hidden = Parameter.model_validate(param("hidden", "int", min=32, max=128, step=32))
    lr = Parameter.model_validate(param("learningRate", "double", min=0.1, max=0.3, step=0.1))
    assert optunamap.grid_values(hidden) == [32, 64, 96, 128]
    assert optunamap.grid_values(lr) == [0.1, 0.2, 0.3]
    log = Parameter.model_validate(
        param("learningRate", "double", min=1e-4, max=1e-1, distribution="logUniform")
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        assert int(optunamap.suggest(trial, hidden)) in (32, 64, 96, 128)
        assert 1e-4 <= float(optunamap.suggest(trial, log)) <= 1e-1


def test_ranking_and_goal_follow_the_direction() -> None:
    trials = [
        TrialResult("a", "Succeeded", objective=0.5),
        TrialResult("b", "Succeeded", objective=0.9),
        TrialResult("c", "EarlyStopped", objective=0.99),
        TrialResult("d", "Succeeded", objective=None),
    ]
    assert [t.name for t in ranked(trials, maximize=True)] == ["b", "a"]
    assert [t.name for t in ranked(trials, maximize=False)] == ["a", "b"]
    objective = spec().objective  # maximize, goal 0.99
    assert goal_reached(objective, 0.995) and not goal_reached(objective, 0.98)


def export(folder: Path, digest: str = DATA.digest, model: bytes = b"onnx") -> str:
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(model)
    meta = {
        "model": {"file": "model.onnx", "sha256": hashlib.sha256(model).hexdigest()},
        "dataset": {"digest": digest},
        "metrics": {"validation": {"accuracy": 0.95, "loss": 0.2}},
    }
    (folder / "metadata.json").write_text(json.dumps(meta))
    return "sha256:" + hashlib.sha256(model).hexdigest()


def test_a_trials_model_comes_from_its_own_metadata(tmp_path: Path) -> None:
    store = Store(LocalStore(tmp_path))
    root = "pvc://models/ns/exp-1"
    digest = export(tmp_path / "pvc" / "models" / "ns" / "exp-1" / "exp-1-000")
    found = trial_output(store, root, "exp-1", "exp-1-000", DATA.digest, verify=True)
    assert (found.uri, found.digest) == (f"{root}/exp-1-000/model.onnx", digest)
    assert found.metrics == {"accuracy": 0.95, "loss": 0.2}
    outside = trial_output(store, root, "exp-1", "../exp-2-000", DATA.digest, verify=True)
    assert outside.problem and "does not belong" in outside.problem
    missing = trial_output(store, root, "exp-1", "exp-1-001", DATA.digest, verify=True)
    assert missing.problem and "cannot read" in missing.problem
    export(tmp_path / "pvc" / "models" / "ns" / "exp-1" / "exp-1-002", digest="sha256:" + "0" * 64)
    other = trial_output(store, root, "exp-1", "exp-1-002", DATA.digest, verify=True)
    assert other.problem and "names dataset sha256:000" in other.problem
    tampered = tmp_path / "pvc" / "models" / "ns" / "exp-1" / "exp-1-000" / "model.onnx"
    tampered.write_bytes(b"other")
    changed = trial_output(store, root, "exp-1", "exp-1-000", DATA.digest, verify=True)
    assert changed.problem and "does not match the sha256" in changed.problem
