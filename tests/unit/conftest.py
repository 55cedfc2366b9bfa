"""Shared inputs for the pure unit tests."""

from __future__ import annotations

import pytest

from slipway.builders.meta import Owner
from slipway.config import OperatorConfig


@pytest.fixture
def owner() -> Owner:
    return Owner("slipway.dev/v1alpha1", "ModelDeployment", "digits", "ml", "uid-1234")


@pytest.fixture
def config() -> OperatorConfig:
    return OperatorConfig.model_validate(
        {
            "nodePools": [
                {
                    "name": "gpu",
                    "nodeSelector": {"slipway.dev/pool": "gpu"},
                    "tolerations": [
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "priorityClassName": "inference",
                }
            ]
        }
    )
