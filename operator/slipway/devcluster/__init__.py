"""A real local control plane for development and tests: etcd + kube-apiserver (+ GC) on loopback.

``binaries`` builds the pinned binaries from Go modules once into a cache outside the clone (or
takes envtest's from $KUBEBUILDER_ASSETS); ``cluster`` starts and stops the processes and writes a
kubeconfig; ``install`` puts the CRDs in and applies manifests. ``slipway dev`` and the integration
tests use the same code.
"""

from .cluster import DevCluster

__all__ = ["DevCluster"]
