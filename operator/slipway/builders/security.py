"""Pod and container security for every pod Slipway renders: the restricted Pod Security profile.

Kubernetes' ``restricted`` profile asks for non-root containers, no privilege escalation, every
capability dropped and the RuntimeDefault seccomp profile; Slipway also makes the root filesystem
read-only and mounts one writable scratch volume (``/tmp``) for what a server or trainer writes
while it runs. Training and serving use the same helpers, so a namespace labelled
``pod-security.kubernetes.io/enforce: restricted`` admits both.
"""

from __future__ import annotations

from typing import Any

SCRATCH_VOLUME = "scratch"
SCRATCH_PATH = "/tmp"
RUN_AS_USER = 10001  # the images' USER (images/*/Dockerfile)
DEFAULT_REQUESTS = {"cpu": "100m", "memory": "256Mi"}


def pod_security_context() -> dict[str, Any]:
    """The pod-level securityContext."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """The container-level securityContext."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def scratch_volume(size_limit: str = "1Gi") -> dict[str, Any]:
    """The writable scratch volume (an emptyDir) a read-only root filesystem needs."""
    return {"name": SCRATCH_VOLUME, "emptyDir": {"sizeLimit": size_limit}}


def scratch_mount() -> dict[str, Any]:
    """Where the scratch volume is mounted in each container."""
    return {"name": SCRATCH_VOLUME, "mountPath": SCRATCH_PATH}
