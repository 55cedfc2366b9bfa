"""The serving concern: run one model version as a deployment and report whether it is ready."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from slipway.api.v1alpha1.modeldeployment import ModelDeploymentSpec
from slipway.builders.meta import Owner
from slipway.builders.rollout import ModelVersion
from slipway.config import NodePool, OperatorConfig


@dataclass(frozen=True)
class VersionState:
    """What the serving system says about one version's deployment."""

    ready: bool
    failed: bool = False
    detail: str = ""


class ServingBackend(Protocol):
    """Renders and observes the deployment of one model version."""

    api_version: str
    kind: str

    def name(self, owner: Owner, version: ModelVersion) -> str:
        """Name of the deployment object for ``version``."""
        ...

    def render(
        self,
        owner: Owner,
        spec: ModelDeploymentSpec,
        version: ModelVersion,
        pool: NodePool | None,
        config: OperatorConfig,
    ) -> dict[str, Any] | None:
        """The deployment manifest for ``version``, or None when there is nothing to create."""
        ...

    def observe(self, live: dict[str, Any] | None) -> VersionState:
        """The state of a version from its live deployment object."""
        ...

    def served(self, live: dict[str, Any]) -> ModelVersion | None:
        """The model version a live deployment object serves (None if it does not say), so a
        reconcile whose status lost its record can still tell which version was live."""
        ...
