"""REST paths of the kinds Slipway reads and writes.

A fixed table instead of discovery: the operator touches a handful of kinds, all known in advance,
and a table costs no start-up round trips.
"""

from __future__ import annotations

from dataclasses import dataclass

from slipway.api.v1alpha1 import KINDS


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the REST API."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def path(
        self, namespace: str | None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The REST path; a namespaced kind with no ``namespace`` gives the all-namespaces path."""
        prefix = "/api/" if "/" not in self.api_version else "/apis/"
        scope = f"namespaces/{namespace}/" if self.namespaced and namespace is not None else ""
        path = f"{prefix}{self.api_version}/{scope}{self.plural}"
        if name is not None:
            path += f"/{name}"
        if subresource is not None:
            path += f"/{subresource}"
        return path


_TABLE = [
    Resource("v1", "Service", "services"),
    Resource("v1", "Event", "events"),
    Resource("v1", "Namespace", "namespaces", namespaced=False),
    Resource(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
    ),
    Resource("kopf.dev/v1", "ClusterKopfPeering", "clusterkopfpeerings", namespaced=False),
    Resource("kopf.dev/v1", "KopfPeering", "kopfpeerings"),
    Resource("machinelearning.seldon.io/v1", "SeldonDeployment", "seldondeployments"),
    Resource("networking.istio.io/v1", "VirtualService", "virtualservices"),
    Resource("networking.istio.io/v1", "DestinationRule", "destinationrules"),
    Resource("kubeflow.org/v1beta1", "Experiment", "experiments"),
    Resource("kubeflow.org/v1", "PyTorchJob", "pytorchjobs"),
    Resource("trainer.kubeflow.org/v1alpha1", "TrainJob", "trainjobs"),
    Resource(
        "trainer.kubeflow.org/v1alpha1",
        "ClusterTrainingRuntime",
        "clustertrainingruntimes",
        namespaced=False,
    ),
    *(Resource(f"{k.info.group}/{k.info.version}", k.info.kind, k.info.plural) for k in KINDS),
]
RESOURCES = {(r.api_version, r.kind): r for r in _TABLE}


def resource(api_version: str, kind: str) -> Resource:
    try:
        return RESOURCES[(api_version, kind)]
    except KeyError:
        raise KeyError(f"Slipway does not manage {kind} in {api_version}") from None
