"""Rollout decisions: which versions are live and how traffic is split between them."""

from __future__ import annotations

import pytest

from slipway.api.v1alpha1.rollout import Rollout
from slipway.backends.seldon import SELDON_NAME_LIMIT
from slipway.builders.meta import short_name
from slipway.builders.rollout import (
    DigestPrefixCollision,
    Live,
    ModelVersion,
    distinct_id,
    live_versions,
    static_split,
    version_lineage,
)

V1 = ModelVersion("s3://m/1.onnx", "sha256:" + "1" * 64)
V2 = ModelVersion("s3://m/2.onnx", "sha256:" + "2" * 64)
V3 = ModelVersion("s3://m/3.onnx", "sha256:" + "3" * 64)


def test_version_id_comes_from_the_digest() -> None:
    assert V1.version == "v11111111"


def roles(live: Live) -> tuple[tuple[str, str], tuple[str, str] | None]:
    """(version id, digest) of the stable and candidate versions."""
    c = live.candidate
    return (live.stable.version, live.stable.digest), (c.version, c.digest) if c else None


def test_first_model_is_stable() -> None:
    assert roles(live_versions(None, None, V1)) == (("v11111111", V1.digest), None)


def test_a_new_model_becomes_the_candidate() -> None:
    live = live_versions(V1, None, V2)
    assert roles(live) == (("v11111111", V1.digest), ("v22222222", V2.digest))


def test_a_newer_model_replaces_the_candidate() -> None:
    live = live_versions(V1, V2, V3)
    assert roles(live) == (("v11111111", V1.digest), ("v33333333", V3.digest))


def test_reverting_the_spec_drops_the_candidate() -> None:
    assert roles(live_versions(V1, V2, V1)) == (("v11111111", V1.digest), None)


# Version identity is the whole digest: a shared 8-digit prefix is a different model.
SAME_PREFIX = ModelVersion("s3://m/1b.onnx", "sha256:" + "1" * 8 + "a" * 56)


def test_a_digest_sharing_the_stable_prefix_is_still_a_candidate() -> None:
    live = live_versions(V1, None, SAME_PREFIX)
    assert live.candidate is not None
    assert live.candidate.digest == SAME_PREFIX.digest
    assert live.candidate.version == "v11111111aaaaaaaa" != live.stable.version


def test_a_recorded_long_id_is_kept_while_the_model_stays() -> None:
    recorded = ModelVersion(SAME_PREFIX.uri, SAME_PREFIX.digest, id="v11111111aaaaaaaa")
    live = live_versions(V1, recorded, ModelVersion(SAME_PREFIX.uri, SAME_PREFIX.digest))
    assert live.candidate is not None and live.candidate.version == "v11111111aaaaaaaa"
    # ... and after promotion, the stable version keeps it too.
    promoted = live_versions(recorded, None, SAME_PREFIX)
    assert promoted.stable.version == "v11111111aaaaaaaa" and promoted.candidate is None


def test_a_new_candidate_never_takes_the_id_of_the_one_it_replaces() -> None:
    old = ModelVersion("s3://m/2.onnx", "sha256:" + "2" * 8 + "b" * 56)
    new = ModelVersion("s3://m/3.onnx", "sha256:" + "2" * 8 + "c" * 56)
    live = live_versions(V1, old, new)
    assert live.candidate is not None and live.candidate.version == "v22222222cccccccc"


def test_ids_stay_inside_every_child_name() -> None:
    digest = "sha256:" + "d" * 64
    taken = {"vdddddddd": "sha256:" + "d" * 8 + "0" * 56, "vdddddddddddddddd": "x"}
    vid = distinct_id(digest, taken)
    assert vid == "v" + "d" * 24
    assert len(short_name("m" * 253, vid, limit=SELDON_NAME_LIMIT)) <= SELDON_NAME_LIMIT
    with pytest.raises(DigestPrefixCollision):
        distinct_id(digest, {**taken, vid: "y"})


def test_static_split_uses_the_spec_weight_once_ready() -> None:
    split = static_split(Live(V1, V2), Rollout(candidate_weight=10), candidate_ready=True)
    assert (split.stable_weight, split.candidate_weight) == (90, 10)


def test_unready_candidate_gets_no_traffic() -> None:
    split = static_split(Live(V1, V2), Rollout(candidate_weight=10), candidate_ready=False)
    assert (split.stable_weight, split.candidate_weight, split.waiting) == (100, 0, True)


def test_weight_100_promotes_a_ready_candidate() -> None:
    split = static_split(Live(V1, V2), Rollout(candidate_weight=100), candidate_ready=True)
    assert split.promoted and split.stable == V2 and split.candidate is None


FROM_JOB = (("datasetDigest", "sha256:" + "d" * 64), ("trainingJob", "digits-cnn"))
FROM_SWEEP = (("trial", "sweep-005"), ("tuningSweep", "sweep"))


def test_a_version_keeps_the_lineage_it_was_first_served_with() -> None:
    stable = ModelVersion(V1.uri, V1.digest, lineage=FROM_JOB)
    # The same model, now reached through a sweep: still the stable version, lineage unchanged.
    live = live_versions(stable, None, ModelVersion(V1.uri, V1.digest, lineage=FROM_SWEEP))
    assert live.candidate is None and live.stable.lineage == FROM_JOB
    # A new model brings its own lineage as the candidate; the stable one keeps its own.
    live = live_versions(stable, None, ModelVersion(V2.uri, V2.digest, lineage=FROM_SWEEP))
    assert live.stable.lineage == FROM_JOB
    assert live.candidate is not None and live.candidate.lineage == FROM_SWEEP
    # Lineage describes a version; it never makes two versions of one digest differ.
    assert ModelVersion(V1.uri, V1.digest, lineage=FROM_SWEEP) == V1


def test_version_lineage_keeps_only_the_links_of_one_version() -> None:
    lineage = {
        "trainingJob": "digits-cnn",
        "datasetDigest": "sha256:abc",
        "modelUri": "pvc://m/model.onnx",
        "liveVersion": "v1",
        "trial": "",
    }
    assert version_lineage(lineage) == (
        ("datasetDigest", "sha256:abc"),
        ("trainingJob", "digits-cnn"),
    )
    assert version_lineage(None) == ()
