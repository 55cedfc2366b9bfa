"""A real Prometheus for tests and ``make dev``: built once from Go modules, run on loopback.

``ensure_prometheus`` returns ``prometheus`` and ``promtool`` from the cache, building them the
first time with ``go install -tags remove_all_sd`` (the tag leaves out every cloud service
discovery, which only costs build time and memory here) at the one pinned module version below.
``$SLIPWAY_PROMETHEUS_BIN`` may name a folder holding both binaries instead (Debian's ``prometheus``
package puts them in /usr/bin; release tarballs unpack them side by side).

``PrometheusServer`` runs one server on a free loopback port with a throwaway data folder and a
short scrape interval. Its targets come from file-based service discovery: the caller rewrites one
JSON file (atomically, as Prometheus asks) whenever the set of processes to scrape changes, with no
reload and no restart. ``launch`` runs the same server as a component of ``slipway dev up``,
scraping the model servers the stand-ins list.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from .cluster import DevCluster, free_port
from .paths import cache_dir

MODULE = "github.com/prometheus/prometheus"
MODULE_VERSION = "v0.316.0"  # the one pin: Prometheus 3.16.0 (v0.MMmm.p is release M.mm.p)
COMMANDS = ("prometheus", "promtool")
BUILD_TAGS = "remove_all_sd"


def release(module_version: str = MODULE_VERSION) -> str:
    """The Prometheus release of a module version: v0.316.0 is 3.16.0."""
    _, minor, patch = module_version.removeprefix("v").split(".")
    return f"{int(minor) // 100}.{int(minor) % 100}.{patch}"


@dataclass(frozen=True)
class PrometheusBinaries:
    """Paths of the Prometheus server and its companion tool."""

    prometheus: Path
    promtool: Path


def _say(message: str) -> None:
    print(f"slipway: {message}", file=sys.stderr, flush=True)


def _build(out: Path) -> None:
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(
            "Go is needed to build Prometheus (or set SLIPWAY_PROMETHEUS_BIN to a folder holding "
            "prometheus and promtool, e.g. /usr/bin after `apt-get install prometheus`); "
            "install Go >= 1.24"
        )
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    version = release()
    ldflags = " ".join(
        [
            "-s -w",
            f"-X github.com/prometheus/common/version.Version={version}",
            f"-X github.com/prometheus/common/version.Branch={MODULE_VERSION}",
        ]
    )
    packages = [f"{MODULE}/cmd/{name}@{MODULE_VERSION}" for name in COMMANDS]
    _say(
        f"building Prometheus {version} ({MODULE}@{MODULE_VERSION}) into {out} "
        "(first time only: about 4 minutes on 2 cores, 1.1 GB of memory)"
    )
    started = time.monotonic()
    proc = subprocess.Popen(
        [go, "install", "-v", "-trimpath", "-tags", BUILD_TAGS, "-ldflags", ldflags, *packages],
        env={**os.environ, "GOBIN": str(tmp), "GOFLAGS": "-mod=mod"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    tail: list[str] = []
    for count, line in enumerate(proc.stdout, start=1):
        tail = [*tail[-30:], line.rstrip()]
        if count % 100 == 0:
            _say(f"  ... {count} packages compiled ({time.monotonic() - started:.0f} s)")
    if proc.wait() != 0:
        raise RuntimeError("building Prometheus failed:\n" + "\n".join(tail))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    _say(f"built Prometheus in {time.monotonic() - started:.0f} s")


def ensure_prometheus() -> PrometheusBinaries:
    """Prometheus from ``$SLIPWAY_PROMETHEUS_BIN``, or from the cache, building it when missing."""
    given = os.environ.get("SLIPWAY_PROMETHEUS_BIN")
    if given:
        base = Path(given)
        bins = PrometheusBinaries(base / "prometheus", base / "promtool")
        missing = [str(p) for p in (bins.prometheus, bins.promtool) if not p.exists()]
        if missing:
            raise FileNotFoundError(f"SLIPWAY_PROMETHEUS_BIN={given}: missing {', '.join(missing)}")
        return bins
    out = cache_dir() / "tools" / f"prometheus-{MODULE_VERSION}"
    if not all((out / name).exists() for name in COMMANDS):
        _build(out)
    return PrometheusBinaries(out / "prometheus", out / "promtool")


Labels = Mapping[str, str]


def scrape_config(
    targets_file: Path,
    scrape_interval: float,
    rule_files: Iterable[Path] = (),
    job: str = "slipway",
) -> dict[str, Any]:
    """A configuration scraping what ``targets_file`` (file-based service discovery) lists."""
    interval = f"{max(1, round(scrape_interval * 1000))}ms"
    return {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}],
            }
        ],
    }


def server_argv(bins: PrometheusBinaries, config: Path, data: Path, port: int) -> list[str]:
    """The command line of one Prometheus server on loopback."""
    return [
        str(bins.prometheus),
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]


def wait_ready(url: str, alive: Callable[[], bool], timeout: float) -> bool:
    """Whether the server at ``url`` answered /-/ready before ``timeout`` while ``alive``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/-/ready", timeout=2) as reply,
        ):
            if reply.status == 200:
                return True
        time.sleep(0.2)
    return False


class PrometheusError(RuntimeError):
    """Prometheus did not start, or refused a query."""


class PrometheusServer:
    """One Prometheus process on loopback, scraping what its file-SD file lists.

    Use as a context manager, or call ``start`` and ``stop``. ``set_targets`` rewrites the
    file-SD file; Prometheus notices the change within about a second.
    """

    def __init__(
        self,
        scrape_interval: float = 1.0,
        binaries: PrometheusBinaries | None = None,
        workdir: Path | None = None,
        rule_files: Iterable[Path] = (),
        job: str = "slipway",
    ) -> None:
        self.scrape_interval = scrape_interval
        self.binaries = binaries
        self.job = job
        self.rule_files = [Path(p) for p in rule_files]
        self._owned_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="slipway-prometheus-"))
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the HTTP API, e.g. http://127.0.0.1:40123."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def targets_file(self) -> Path:
        return self.workdir / "targets.json"

    @property
    def log_file(self) -> Path:
        return self.workdir / "prometheus.log"

    def _config(self) -> dict[str, Any]:
        return scrape_config(self.targets_file, self.scrape_interval, self.rule_files, self.job)

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it answers queries."""
        if self._proc is not None:
            raise PrometheusError("already started")
        bins = self.binaries or ensure_prometheus()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.targets_file.exists():
            self.set_targets([])
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self._config(), sort_keys=False))
        self.port = free_port()
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                server_argv(bins, config, self.workdir / "data", self.port),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc = self._proc
        if wait_ready(self.url, lambda: proc.poll() is None, timeout):
            return
        tail = self.log_file.read_text(errors="replace").splitlines()[-20:]
        self.stop()
        raise PrometheusError("Prometheus did not become ready:\n" + "\n".join(tail))

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove a data folder it created."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if self._owned_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def reload(self) -> None:
        """Re-read the configuration and rule files (POST /-/reload)."""
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    # ---- targets and queries -----------------------------------------------------------------

    def set_targets(self, groups: Iterable[tuple[Iterable[str], Labels]]) -> None:
        """Replace the scraped targets: groups of ``host:port`` addresses with their labels.

        Written to a temporary file and renamed over the old one, so Prometheus never reads a
        half-written file.
        """
        document = [
            {"targets": sorted(addresses), "labels": dict(labels)} for addresses, labels in groups
        ]
        self.workdir.mkdir(parents=True, exist_ok=True)
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(document, indent=1))
        tmp.replace(self.targets_file)

    def api(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET ``/api/v1/<path>``; returns ``data``, raises ``PrometheusError`` on an error."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as reply:
                body = json.load(reply)
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusError(f"{path}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's vector result (a list of ``{metric, value}``)."""
        data = self.api("query", {"query": promql})
        result: list[dict[str, Any]] = data["result"]
        return result

    def active_targets(self) -> list[dict[str, Any]]:
        """The targets Prometheus scrapes now, with their health."""
        targets: list[dict[str, Any]] = self.api("targets", {"state": "active"})["activeTargets"]
        return targets

    def wait_for_targets(self, count: int, timeout: float = 30.0) -> None:
        """Wait until ``count`` targets are up (scraped successfully at least once)."""
        deadline = time.monotonic() + timeout
        up: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            up = [t for t in self.active_targets() if t.get("health") == "up"]
            if len(up) >= count:
                return
            time.sleep(0.2)
        raise PrometheusError(f"{len(up)} of {count} targets up after {timeout:.0f} s")


DEV_SCRAPE_INTERVAL = 2.0  # seconds: a canary's 30 s window holds 15 samples


def launch(dev: DevCluster, targets_file: Path, timeout: float = 60.0) -> str:
    """Start the Prometheus of ``slipway dev up`` as the component ``prometheus``; its URL.

    It scrapes what ``targets_file`` lists: the stand-ins write every model-server process there,
    with the ``namespace`` label a PodMonitor adds on a cluster. Like etcd, each start begins with
    an empty data folder.
    """
    bins = ensure_prometheus()
    folder = dev.state / "prometheus"
    shutil.rmtree(folder / "data", ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    if not targets_file.exists():
        targets_file.write_text("[]")
    config = folder / "prometheus.yml"
    document = scrape_config(targets_file, DEV_SCRAPE_INTERVAL, job="model-servers")
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    port = free_port()
    dev.spawn("prometheus", server_argv(bins, config, folder / "data", port))
    url = f"http://127.0.0.1:{port}"
    if not wait_ready(url, lambda: "prometheus" in dev.running(), timeout):
        raise RuntimeError(f"Prometheus did not start; see {dev.state / 'logs' / 'prometheus.log'}")
    (folder / "url").write_text(url)
    return url


def dev_url(dev: DevCluster) -> str | None:
    """The URL of the dev cluster's Prometheus while it runs, else None."""
    path = dev.state / "prometheus" / "url"
    if "prometheus" not in dev.running() or not path.exists():
        return None
    return path.read_text().strip()


def main() -> int:
    """``python -m slipway.devcluster.prometheus``: build (once) and print the binaries' paths."""
    bins = ensure_prometheus()
    print(bins.prometheus)
    print(bins.promtool)
    return 0


if __name__ == "__main__":
    sys.exit(main())
