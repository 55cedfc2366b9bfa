"""Rollout decisions: which versions are live and how traffic is split between them."""

from __future__ import annotations

from slipway.api.v1alpha1.modeldeployment import Rollout
from slipway.builders.rollout import Live, ModelVersion, live_versions, static_split

V1 = ModelVersion("s3://m/1.onnx", "sha256:" + "1" * 64)
V2 = ModelVersion("s3://m/2.onnx", "sha256:" + "2" * 64)
V3 = ModelVersion("s3://m/3.onnx", "sha256:" + "3" * 64)


def test_version_id_comes_from_the_digest() -> None:
    assert V1.version == "v11111111"


def test_first_model_is_stable() -> None:
    assert live_versions(None, None, V1) == Live(stable=V1)


def test_a_new_model_becomes_the_candidate() -> None:
    assert live_versions(V1, None, V2) == Live(stable=V1, candidate=V2)


def test_a_newer_model_replaces_the_candidate() -> None:
    assert live_versions(V1, V2, V3) == Live(stable=V1, candidate=V3)


def test_reverting_the_spec_drops_the_candidate() -> None:
    assert live_versions(V1, V2, V1) == Live(stable=V1)


def test_static_split_uses_the_spec_weight_once_ready() -> None:
    split = static_split(Live(V1, V2), Rollout(candidate_weight=10), candidate_ready=True)
    assert (split.stable_weight, split.candidate_weight) == (90, 10)


def test_unready_candidate_gets_no_traffic() -> None:
    split = static_split(Live(V1, V2), Rollout(candidate_weight=10), candidate_ready=False)
    assert (split.stable_weight, split.candidate_weight, split.waiting) == (100, 0, True)


def test_weight_100_promotes_a_ready_candidate() -> None:
    split = static_split(Live(V1, V2), Rollout(candidate_weight=100), candidate_ready=True)
    assert split.promoted and split.stable == V2 and split.candidate is None
