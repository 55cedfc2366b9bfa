"""Providers for the systems Slipway drives, each behind a small Protocol.

One Protocol per concern (``serving``, ``traffic``; pipelines, training and tuning follow the same
pattern), one module per provider (``seldon``, ``istio``) and a no-op provider for each, picked by
name from the operator configuration. Providers only render manifests and read their children's
status: they never call the API server; the reconciler applies what they render. Pipelines
providers start runs outside Kubernetes (a KFP server, local processes), and the local training
provider runs processes; those that need settings are built from the operator configuration.
"""

from __future__ import annotations

from collections.abc import Callable

from slipway.config import OperatorConfig

from .analysis import AnalysisBackend, AnalysisUnavailable, NoAnalysis, QueryRejected, Target
from .istio import IstioTraffic
from .kfp import KfpPipelines
from .localpipelines import LocalPipelines
from .localtraining import LocalTraining
from .noop import NoServing, NoTraffic
from .pipelines import NoPipelines, PipelineRun, PipelinesBackend, RunStatus
from .prometheus import PrometheusAnalysis
from .pytorchjob import PyTorchJobTraining
from .seldon import SeldonServing
from .serving import ServingBackend, VersionState
from .traffic import TrafficBackend
from .training import NoTraining, TrainingBackend, TrainingRequest, TrainingState
from .trainjob import TrainJobTraining

SERVING: dict[str, ServingBackend] = {"seldon": SeldonServing(), "none": NoServing()}
TRAFFIC: dict[str, TrafficBackend] = {"istio": IstioTraffic(), "none": NoTraffic()}


def serving_backend(name: str) -> ServingBackend:
    return SERVING[name]


def traffic_backend(name: str) -> TrafficBackend:
    return TRAFFIC[name]


def analysis_backend(config: OperatorConfig) -> AnalysisBackend:
    """The analysis provider the configuration names (``analysis``), with its settings."""
    if config.analysis == "prometheus":
        return PrometheusAnalysis(config.prometheus.url, config.prometheus.timeout_seconds)
    return NoAnalysis()


PIPELINES: dict[str, Callable[[OperatorConfig], PipelinesBackend]] = {
    "kfp": lambda c: KfpPipelines(c.kfp),
    "local": LocalPipelines.from_config,
    "none": lambda c: NoPipelines(),
}
TRAINING: dict[str, Callable[[OperatorConfig], TrainingBackend]] = {
    "trainjob": lambda c: TrainJobTraining(c.trainjob_runtime, c.trainjob_runtime_kind),
    "pytorchjob": lambda c: PyTorchJobTraining(),
    "local": LocalTraining.from_config,
    "none": lambda c: NoTraining(),
}
# One instance per (provider, configuration): the kfp provider caches pipeline and experiment ids.
_PIPELINES_BUILT: dict[tuple[str, str], PipelinesBackend] = {}
_TRAINING_BUILT: dict[tuple[str, str], TrainingBackend] = {}


def pipelines_backend(name: str, config: OperatorConfig) -> PipelinesBackend:
    """The pipelines provider called ``name`` (``kfp``, ``local``, ``none``) for ``config``."""
    key = (name, config.model_dump_json())
    if key not in _PIPELINES_BUILT:
        _PIPELINES_BUILT[key] = PIPELINES[name](config)
    return _PIPELINES_BUILT[key]


def training_backend(name: str, config: OperatorConfig) -> TrainingBackend:
    """The training provider called ``name`` (``trainjob``, ``pytorchjob``, ``local``, ``none``)."""
    key = (name, config.model_dump_json())
    if key not in _TRAINING_BUILT:
        _TRAINING_BUILT[key] = TRAINING[name](config)
    return _TRAINING_BUILT[key]


__all__ = [
    "PIPELINES",
    "SERVING",
    "TRAFFIC",
    "TRAINING",
    "AnalysisBackend",
    "AnalysisUnavailable",
    "PipelineRun",
    "PipelinesBackend",
    "QueryRejected",
    "RunStatus",
    "ServingBackend",
    "Target",
    "TrafficBackend",
    "TrainingBackend",
    "TrainingRequest",
    "TrainingState",
    "VersionState",
    "analysis_backend",
    "pipelines_backend",
    "serving_backend",
    "traffic_backend",
    "training_backend",
]
