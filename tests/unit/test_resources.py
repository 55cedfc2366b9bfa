"""REST paths of the kinds the k8s layer reads and writes."""

from __future__ import annotations

import pytest

from slipway.k8s.resources import resource


@pytest.mark.parametrize(
    ("api_version", "kind", "namespace", "name", "path"),
    [
        ("v1", "Service", "ml", "digits", "/api/v1/namespaces/ml/services/digits"),
        ("v1", "Service", None, None, "/api/v1/services"),  # every namespace
        ("v1", "Namespace", None, "ml", "/api/v1/namespaces/ml"),
        (
            "slipway.dev/v1alpha1",
            "ModelDeployment",
            None,
            None,
            "/apis/slipway.dev/v1alpha1/modeldeployments",
        ),
        (
            "networking.istio.io/v1",
            "VirtualService",
            "ml",
            None,
            "/apis/networking.istio.io/v1/namespaces/ml/virtualservices",
        ),
    ],
)
def test_paths(
    api_version: str, kind: str, namespace: str | None, name: str | None, path: str
) -> None:
    assert resource(api_version, kind).path(namespace, name) == path


def test_unknown_kind_is_named() -> None:
    with pytest.raises(KeyError, match="Deployment in apps/v1"):
        resource("apps/v1", "Deployment")
