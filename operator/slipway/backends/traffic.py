"""The traffic concern: route requests to the live versions with the decided weights."""

from __future__ import annotations

from typing import Any, Protocol

from slipway.builders.meta import Owner
from slipway.builders.rollout import Split
from slipway.config import OperatorConfig


class TrafficBackend(Protocol):
    """Renders the routing objects for a split between live versions."""

    kinds: tuple[tuple[str, str], ...]
    """(apiVersion, kind) of every object ``render`` may return, for the operator to watch."""

    def render(self, owner: Owner, split: Split, config: OperatorConfig) -> list[dict[str, Any]]:
        """The routing manifests, in the order they must be applied."""
        ...

    def url(self, owner: Owner, config: OperatorConfig) -> str:
        """In-mesh URL of the inference endpoint."""
        ...
