"""No-op providers: create nothing, report ready. For clusters without Seldon or Istio (and for
exercising the reconciler without third-party CRDs)."""

from __future__ import annotations

from typing import Any

from slipway.api.v1alpha1.modeldeployment import ModelDeploymentSpec
from slipway.builders.meta import Owner, short_name
from slipway.builders.rollout import ModelVersion, Split
from slipway.config import NodePool, OperatorConfig

from .serving import VersionState


class NoServing:
    """Serving provider ``none``: versions exist only in status."""

    api_version = "v1"
    kind = "None"

    def name(self, owner: Owner, version: ModelVersion) -> str:
        return short_name(owner.name, version.version)

    def render(
        self,
        owner: Owner,
        spec: ModelDeploymentSpec,
        version: ModelVersion,
        pool: NodePool | None,
        config: OperatorConfig,
    ) -> dict[str, Any] | None:
        return None

    def observe(self, live: dict[str, Any] | None) -> VersionState:
        return VersionState(ready=True, detail="no serving backend")

    def served(self, live: dict[str, Any]) -> ModelVersion | None:
        return None


class NoTraffic:
    """Traffic provider ``none``: no routing objects."""

    kinds: tuple[tuple[str, str], ...] = ()

    def render(self, owner: Owner, split: Split, config: OperatorConfig) -> list[dict[str, Any]]:
        return []

    def url(self, owner: Owner, config: OperatorConfig) -> str:
        return ""
