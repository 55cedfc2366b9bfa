"""Operator configuration: GPU node pools and defaults, from a YAML file and/or the environment.

Node pools are defined once here (the Helm chart renders them from values) and used by training
and serving alike: a CR says ``nodePool: a100`` and ``gpus: 2``; the builders turn the pool into a
nodeSelector, tolerations, the GPU resource name and an optional priority class.

Sources, later ones winning: built-in defaults, the YAML file named by ``--config`` or
``SLIPWAY_CONFIG``, then ``SLIPWAY_<FIELD>`` variables for scalar fields. Invalid configuration is
a ``ConfigError`` whose message lists each bad field; the operator refuses to start with it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel


class ConfigError(Exception):
    """The operator configuration is invalid; the message says which field and why."""


class _Config(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Toleration(_Config):
    """A pod toleration, as in the Kubernetes API."""

    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"


class NodePool(_Config):
    """A named group of nodes that training and serving pods can be placed on."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    gpu_resource: str | None = Field(
        default=DEFAULT_GPU_RESOURCE,
        min_length=1,
        description="Extended resource of the pool's GPUs; null for a CPU-only pool, where a CR "
        "asking for GPUs is reported Degraded instead of rendering an unschedulable limit.",
    )
    priority_class_name: str | None = None
    queue: str | None = None


class KfpConfig(_Config):
    """The Kubeflow Pipelines v2 API server the ``kfp`` pipelines provider talks to."""

    endpoint: str = Field(
        default="http://ml-pipeline.kubeflow.svc.cluster.local:8888",
        min_length=1,
        description="Base URL of the KFP API server (the v2beta1 REST API lives under it).",
    )
    token_file: str | None = Field(
        default="/var/run/secrets/kubernetes.io/serviceaccount/token",
        description="Bearer token file, re-read on every call (projected tokens rotate); "
        "None or a missing file: no Authorization header.",
    )
    ca_file: str | None = Field(default=None, description="CA bundle for an https endpoint.")
    multi_user: bool = Field(
        default=False,
        description="Multi-user KFP: pipelines, experiments and runs live in a namespace "
        "(kfp.namespace, else the object's own, which must be a Kubeflow profile).",
    )
    namespace: str | None = Field(default=None, description="KFP namespace in multi-user mode.")
    experiment: str = Field(default="slipway", min_length=1, description="Experiment for runs.")
    pipelines_dir: str | None = Field(
        default=None,
        description="Folder of the compiled pipeline IR (<name>.yaml); None: pipelines/compiled "
        "of the checkout the operator runs from, else /opt/slipway/pipelines (operator image).",
    )
    timeout_seconds: float = Field(default=30.0, gt=0, description="Per-request timeout.")


class PrometheusConfig(_Config):
    """The Prometheus server the ``prometheus`` analysis provider queries to judge rollouts."""

    url: str = Field(
        default="http://prometheus-operated.monitoring.svc:9090",
        pattern=r"^https?://\S+$",
        description="Base URL of the Prometheus HTTP API (the operator queries /api/v1/query).",
    )
    timeout_seconds: float = Field(default=10.0, gt=0, description="Per-query timeout.")


class OperatorConfig(_Config):
    """Everything the operator reads at start-up."""

    node_pools: list[NodePool] = Field(default_factory=list)
    serving: Literal["seldon", "none"] = "seldon"
    traffic: Literal["istio", "none"] = "istio"
    field_manager: str = "slipway"
    namespace: str | None = Field(
        default=None, description="Watch one namespace (or a glob such as 'team-*'); None: all."
    )
    resync_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Seconds between resyncs of every object (a safety net behind the watches).",
    )
    metrics_port: int = Field(default=8080, ge=0, le=65535)
    health_port: int = Field(default=8081, ge=0, le=65535)
    model_server_port: int = Field(default=9000, ge=1, le=65535)
    cluster_domain: str = "cluster.local"
    pipelines: Literal["kfp", "local", "none"] = Field(
        default="kfp", description="Pipelines provider for Datasets and single-worker training."
    )
    training: Literal["trainjob", "pytorchjob", "local", "none"] = Field(
        default="trainjob", description="Provider for distributed (multi-worker or GPU) training."
    )
    kfp: KfpConfig = Field(default_factory=KfpConfig)
    tuning: Literal["katib", "local", "none"] = Field(
        default="katib",
        description="Provider for TuningSweeps: katib (a Katib Experiment), local (Optuna on the "
        "operator's machine, trials as local trainer processes) or none.",
    )
    analysis: Literal["prometheus", "none"] = Field(
        default="prometheus",
        description="Metrics provider judging Canary, ABTest and Shadow rollouts; none: metrics "
        "are not measured (reported Skipped) and only webhooks gate a rollout.",
    )
    prometheus: PrometheusConfig = Field(default_factory=PrometheusConfig)
    trainjob_runtime: str = Field(
        default="torch-distributed", min_length=1, description="TrainJob runtimeRef name."
    )
    trainjob_runtime_kind: Literal["ClusterTrainingRuntime", "TrainingRuntime"] = (
        "ClusterTrainingRuntime"
    )
    local_store: str | None = Field(
        default=None,
        description="Folder of the local providers' runs and pvc:// data; None: "
        "$SLIPWAY_CACHE (else $XDG_CACHE_HOME/slipway, else ~/.cache/slipway)/local-store.",
    )
    pipelines_python: str | None = Field(
        default=None,
        description="Interpreter of the local pipelines provider (trainer + kfp installed); "
        "None: the environment hack/venv.sh creates for pipelines/test.sh.",
    )
    trainer_python: str | None = Field(
        default=None,
        description="Interpreter of the local training provider (the trainer's environment); "
        "None: the environment hack/venv.sh creates for images/trainer/test.sh.",
    )

    @model_validator(mode="after")
    def _unique_pools(self) -> OperatorConfig:
        names = [pool.name for pool in self.node_pools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"nodePools: duplicate pool names {duplicates}")
        return self

    def pool(self, name: str) -> NodePool | None:
        """The pool called ``name``, or None when no such pool is configured."""
        return next((pool for pool in self.node_pools if pool.name == name), None)

    @property
    def pool_names(self) -> list[str]:
        return [pool.name for pool in self.node_pools]


def _describe(error: ValidationError, from_env: set[str]) -> str:
    lines = []
    for e in error.errors():
        loc = [str(p) for p in e["loc"]]
        where = f"SLIPWAY_{loc[0].upper()}" if loc and loc[0] in from_env else ".".join(loc)
        lines.append(f"  {where or '(top level)'}: {e['msg']}")
    return "invalid operator configuration:\n" + "\n".join(lines)


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> OperatorConfig:
    """Read the configuration; raises ``ConfigError`` with every problem listed."""
    env = os.environ if environ is None else environ
    data: dict[str, object] = {}
    source = path or env.get("SLIPWAY_CONFIG")
    if source:
        try:
            loaded = yaml.safe_load(Path(source).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read operator configuration {source}: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"operator configuration {source} must be a YAML mapping")
        data.update(loaded or {})
    scalars = {
        name: field
        for name, field in OperatorConfig.model_fields.items()
        if name not in {"node_pools", "kfp", "prometheus"}
    }
    from_env = set()
    for name in scalars:
        value = env.get(f"SLIPWAY_{name.upper()}")
        if value is not None:
            data[name] = value
            from_env.add(name)
    try:
        return OperatorConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, from_env)) from exc
