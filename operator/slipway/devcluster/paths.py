"""Where things live: the repository, the cache outside it, and a dev cluster's state folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_MARKER = Path("tests/cluster/go.mod")


def repo_root() -> Path:
    """The Slipway checkout: found from the working directory, else from this file."""
    for start in (Path.cwd(), Path(__file__).resolve()):
        for candidate in (start, *start.parents):
            if (candidate / _MARKER).is_file():
                return candidate
    raise FileNotFoundError(f"no Slipway checkout found (looked for {_MARKER})")


def venv_python(root: Path, name: str, requirements: list[str] | tuple[str, ...]) -> Path:
    """The interpreter of the environment ``hack/venv.sh`` keeps for ``name`` (created the first
    time, its progress on stderr); ``requirements`` are paths relative to ``root``."""
    script = [str(root / "hack" / "venv.sh"), name, *(str(root / r) for r in requirements)]
    venv = subprocess.run(script, check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
    return Path(venv) / "bin" / "python"


def cache_dir() -> Path:
    """$SLIPWAY_CACHE, else $XDG_CACHE_HOME/slipway, else ~/.cache/slipway."""
    explicit = os.environ.get("SLIPWAY_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "slipway"


def default_state_dir() -> Path:
    """State of the `slipway dev` cluster: data, logs, pids, kubeconfig."""
    return cache_dir() / "dev"
