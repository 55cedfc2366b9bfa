"""Find or build the control-plane binaries: etcd, kube-apiserver, kube-controller-manager, kubectl.

``go install k8s.io/kubernetes/cmd/kube-apiserver@v1.34.x`` cannot work (kubernetes' go.mod
replaces its staging modules with local paths), so ``tests/cluster/go.mod`` requires
k8s.io/kubernetes and etcd's server and replaces each staging module with its published tag. The
binaries land in ``<cache>/bin/<hash of go.mod and go.sum>``: built once per pin, reused by every
clone. ``$KUBEBUILDER_ASSETS`` (envtest's etcd, kube-apiserver, kubectl) is used when set.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .paths import cache_dir, repo_root

PACKAGES = {
    "etcd": "go.etcd.io/etcd/server/v3",
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kubectl": "k8s.io/kubernetes/cmd/kubectl",
}


@dataclass(frozen=True)
class Binaries:
    """Paths of the control-plane binaries; the controller manager may be absent (envtest)."""

    etcd: Path
    kube_apiserver: Path
    kubectl: Path
    kube_controller_manager: Path | None


def _say(message: str) -> None:
    print(f"slipway: {message}", file=sys.stderr, flush=True)


def _kubernetes_version(go_mod: str) -> str:
    match = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", go_mod, re.M)
    if not match:
        raise RuntimeError("tests/cluster/go.mod does not require k8s.io/kubernetes")
    return match.group(1)


def _build(module_dir: Path, out: Path) -> None:
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(
            "Go is needed to build the control plane (or set KUBEBUILDER_ASSETS to envtest "
            "binaries); install Go >= 1.24"
        )
    go_mod = (module_dir / "go.mod").read_text()
    version = _kubernetes_version(go_mod)
    minor = version.split(".")[1]
    ldflags = " ".join(
        [
            "-s -w",
            f"-X k8s.io/component-base/version.gitVersion={version}",
            "-X k8s.io/component-base/version.gitMajor=1",
            f"-X k8s.io/component-base/version.gitMinor={minor}",
        ]
    )
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _say(
        f"building etcd and Kubernetes {version} from {module_dir.name}/go.mod into {out} "
        "(first time only: about 10-20 minutes on 2 cores)"
    )
    started = time.monotonic()
    cmd = [go, "build", "-v", "-trimpath", "-ldflags", ldflags, "-o", str(tmp) + "/"]
    proc = subprocess.Popen(
        [*cmd, *PACKAGES.values()],
        cwd=module_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for count, line in enumerate(proc.stdout, start=1):
        tail = [*tail[-30:], line.rstrip()]
        if count % 200 == 0:
            _say(f"  ... {count} packages compiled ({time.monotonic() - started:.0f} s)")
    if proc.wait() != 0:
        raise RuntimeError("building the control plane failed:\n" + "\n".join(tail))
    (tmp / "server").rename(tmp / "etcd")  # go names etcd's binary after its module's last element
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    _say(f"built the control plane in {time.monotonic() - started:.0f} s")


def ensure_binaries() -> Binaries:
    """Binaries from $KUBEBUILDER_ASSETS, or from the cache, building them when missing."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        base = Path(assets)
        kcm = base / "kube-controller-manager"
        return Binaries(
            base / "etcd", base / "kube-apiserver", base / "kubectl", kcm if kcm.exists() else None
        )
    module_dir = repo_root() / "tests" / "cluster"
    digest = hashlib.sha256(
        (module_dir / "go.mod").read_bytes() + (module_dir / "go.sum").read_bytes()
    ).hexdigest()[:12]
    out = cache_dir() / "bin" / digest
    if not all((out / name).exists() for name in PACKAGES):
        _build(module_dir, out)
    return Binaries(
        out / "etcd", out / "kube-apiserver", out / "kubectl", out / "kube-controller-manager"
    )


HELM_VERSION = "v3.19.0"


def ensure_helm() -> Path:
    """Helm, built once from its Go module (helm.sh/helm/v3 has no local replaces)."""
    out = cache_dir() / "tools" / f"helm-{HELM_VERSION}"
    helm = out / "helm"
    if helm.exists():
        return helm
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("Go is needed to build helm; install Go >= 1.24")
    _say(f"building helm {HELM_VERSION} into {out} (first time only: a few minutes)")
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            go,
            "install",
            "-trimpath",
            "-ldflags",
            "-s -w",
            f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}",
        ],
        env={**os.environ, "GOBIN": str(out)},
        check=True,
    )
    return helm


def tool_path(name: str) -> Path:
    """Path of ``kubectl``, ``helm``, ``etcd``, ``kube-apiserver`` or ``kube-controller-manager``,
    built first when needed."""
    if name == "helm":
        return ensure_helm()
    bins = ensure_binaries()
    paths = {
        "kubectl": bins.kubectl,
        "etcd": bins.etcd,
        "kube-apiserver": bins.kube_apiserver,
        "kube-controller-manager": bins.kube_controller_manager,
    }
    path = paths.get(name)
    if path is None:
        raise FileNotFoundError(f"no tool {name!r}; choose from {sorted([*paths, 'helm'])}")
    return path
