"""slipway.dev/v1alpha1: the four kinds, each as a spec model, a status model and its KindInfo."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from . import dataset, modeldeployment, trainingjob, tuningsweep
from .common import API_VERSION, GROUP, VERSION
from .kinds import KindInfo


@dataclass(frozen=True)
class Kind:
    """One custom resource kind: its names and its spec and status models."""

    info: KindInfo
    spec: type[BaseModel]
    status: type[BaseModel]


DATASET = Kind(dataset.INFO, dataset.DatasetSpec, dataset.DatasetStatus)
TRAINING_JOB = Kind(trainingjob.INFO, trainingjob.TrainingJobSpec, trainingjob.TrainingJobStatus)
TUNING_SWEEP = Kind(tuningsweep.INFO, tuningsweep.TuningSweepSpec, tuningsweep.TuningSweepStatus)
MODEL_DEPLOYMENT = Kind(
    modeldeployment.INFO, modeldeployment.ModelDeploymentSpec, modeldeployment.ModelDeploymentStatus
)
KINDS = (DATASET, TRAINING_JOB, TUNING_SWEEP, MODEL_DEPLOYMENT)

__all__ = ["API_VERSION", "GROUP", "KINDS", "VERSION", "Kind"]
