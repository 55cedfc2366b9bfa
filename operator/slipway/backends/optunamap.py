"""Katib's names in Optuna's terms: samplers, the median pruner, and each parameter's suggestion.

| Katib algorithm | Optuna sampler | settings taken (Katib's names) |
|---|---|---|
| random | ``RandomSampler`` | random_state |
| grid | ``GridSampler`` over every value of the space | random_state |
| tpe | ``TPESampler`` | random_state, n_startup_trials, n_ei_candidates |
| multivariate-tpe | ``TPESampler(multivariate=True)`` | the same |
| cmaes | ``CmaEsSampler`` (the ``cmaes`` package) | random_state, sigma |
| sobol | ``QMCSampler(qmc_type="sobol")`` (scipy) | random_state |
| bayesianoptimization | ``GPSampler`` (torch and scipy) | random_state, n_initial_points |

Katib's medianstop becomes ``MedianPruner(n_startup_trials=min_trials_required,
n_warmup_steps=start_step)`` on the per-epoch objective (epochs count from 1, so a trial is judged
from its ``start_step``-th epoch on, as Katib does), defaults 3 and 4 as Katib's. Katib compares a
trial once with the median of the finished trials' first ``start_step`` values; Optuna compares
at every later epoch too, with the median at that epoch.

Without ``random_state`` the seed comes from the experiment's name, so the same sweep samples the
same values. Settings are checked by ``settings_problem`` before anything runs.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from typing import Any

import optuna

from slipway.api.v1alpha1.tuningsweep import EarlyStopping, Parameter, SearchAlgorithm, Setting

SETTINGS: dict[str, tuple[str, ...]] = {
    "random": ("random_state",),
    "grid": ("random_state",),
    "tpe": ("random_state", "n_startup_trials", "n_ei_candidates"),
    "multivariate-tpe": ("random_state", "n_startup_trials", "n_ei_candidates"),
    "cmaes": ("random_state", "sigma"),
    "sobol": ("random_state",),
    "bayesianoptimization": ("random_state", "n_initial_points"),
    "medianstop": ("min_trials_required", "start_step"),
}
_INTEGER = {"random_state", "n_startup_trials", "n_ei_candidates", "n_initial_points"}
_INTEGER |= {"min_trials_required", "start_step"}
# Samplers whose extra packages (torch, scipy) the runner borrows from the trainer's environment.
NEEDS_TRAINER_PACKAGES = frozenset({"sobol", "bayesianoptimization"})
MAX_GRID = 100_000


def settings_problem(path: str, algorithm: str, settings: list[Setting] | None) -> str | None:
    """Why ``settings`` cannot be used (naming ``path[i]``), or None."""
    known = SETTINGS[algorithm]
    for i, s in enumerate(settings or []):
        where = f"{path}[{i}]"
        if s.name not in known:
            choices = ", ".join(known)
            return f"{where}.name: {algorithm} takes no setting {s.name!r}; known: {choices}"
        try:
            value = int(s.value) if s.name in _INTEGER else float(s.value)
        except ValueError:
            return f"{where}.value: {s.name} needs a number, got {s.value!r}"
        if value < (1 if s.name in ("start_step", "min_trials_required") else 0):
            return f"{where}.value: {s.name} {s.value} is out of range"
    return None


def _settings(settings: list[Setting] | None) -> dict[str, str]:
    return {s.name: s.value for s in settings or []}


def seed_of(algorithm: SearchAlgorithm, experiment: str, resumed_at: int = 0) -> int:
    """The sampler's seed. A study resumed with ``resumed_at`` trials takes another seed, else a
    seeded sampler would draw the values of its first trials again."""
    given = _settings(algorithm.algorithm_settings).get("random_state")
    base = (
        int(given)
        if given is not None
        else int(hashlib.sha256(experiment.encode()).hexdigest()[:8], 16)
    )
    return (base + 7919 * resumed_at) % 2**32


def grid_values(p: Parameter) -> list[Any]:
    """Every value a parameter can take (grid search; doubles need a step, checked at admission)."""
    space = p.feasible_space
    if p.parameter_type in ("categorical", "discrete"):
        return list(space.values or [])
    assert space.min is not None and space.max is not None
    step = space.step or 1.0
    count = math.floor((space.max - space.min) / step + 1e-9) + 1
    if p.parameter_type == "int":
        return [int(space.min) + i * int(step) for i in range(count)]
    return [round(space.min + i * step, 12) for i in range(count)]


def grid_size(parameters: list[Parameter]) -> int:
    size = 1
    for p in parameters:
        size *= max(1, len(grid_values(p)))
    return size


def sampler(
    algorithm: SearchAlgorithm, parameters: list[Parameter], experiment: str, resumed_at: int = 0
) -> optuna.samplers.BaseSampler:
    """The Optuna sampler serving ``algorithm`` (``resumed_at``: trials the study already has)."""
    name = algorithm.algorithm_name
    settings = _settings(algorithm.algorithm_settings)
    seed = seed_of(algorithm, experiment, resumed_at)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        space = {p.name: grid_values(p) for p in parameters}
        return optuna.samplers.GridSampler(space, seed=seed)
    if name in ("tpe", "multivariate-tpe"):
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=int(settings.get("n_startup_trials", 10)),
            n_ei_candidates=int(settings.get("n_ei_candidates", 24)),
            multivariate=name == "multivariate-tpe",
            constant_liar=True,  # parallel trials: assume running ones score badly, spread out
        )
    if name == "cmaes":
        sigma = settings.get("sigma")
        return optuna.samplers.CmaEsSampler(
            seed=seed, sigma0=float(sigma) if sigma is not None else None
        )
    if name == "sobol":
        with warnings.catch_warnings():  # "experimental" since Optuna 3.0: say it once, here
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(
                qmc_type="sobol", scramble=True, seed=seed, warn_asynchronous_seeding=False
            )
    if name == "bayesianoptimization":
        return optuna.samplers.GPSampler(
            seed=seed, n_startup_trials=int(settings.get("n_initial_points", 10))
        )
    raise ValueError(f"no Optuna sampler for algorithm {name!r}")


def pruner(early_stopping: EarlyStopping | None) -> optuna.pruners.BasePruner:
    """MedianPruner for medianstop; NopPruner without early stopping."""
    if early_stopping is None:
        return optuna.pruners.NopPruner()
    settings = _settings(early_stopping.algorithm_settings)
    return optuna.pruners.MedianPruner(
        n_startup_trials=int(settings.get("min_trials_required", 3)),
        n_warmup_steps=int(settings.get("start_step", 4)),
    )


def suggest(trial: optuna.trial.Trial, p: Parameter) -> str:
    """Draw ``p``'s value for ``trial``, as the string the trainer's option takes."""
    space = p.feasible_space
    log = space.distribution == "logUniform"
    if p.parameter_type in ("categorical", "discrete"):
        return str(trial.suggest_categorical(p.name, list(space.values or [])))
    assert space.min is not None and space.max is not None
    if p.parameter_type == "int":
        step = 1 if log else int(space.step or 1)  # Optuna draws log-scale ints one by one
        return str(trial.suggest_int(p.name, int(space.min), int(space.max), step=step, log=log))
    value = trial.suggest_float(
        p.name, space.min, space.max, step=None if log else space.step, log=log
    )
    return repr(float(value))


def value_text(p: Parameter, value: Any) -> str:
    """A value Optuna recorded for ``p`` (a resumed trial), as the trainer's option takes it."""
    if p.parameter_type == "int":
        return str(int(value))
    if p.parameter_type == "double":
        return repr(float(value))
    return str(value)
