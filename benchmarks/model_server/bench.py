"""Benchmark the Slipway model server against raw onnxruntime and MLServer.

For a small MLP and a ~10M-parameter MLP, measures throughput and p50/p99 latency at several
concurrencies for: raw onnxruntime in-process (the ceiling: no HTTP, no JSON), the Slipway server
and MLServer (with an onnxruntime runtime), each with and without adaptive batching. HTTP load
comes from `wrk`, a separate process on 127.0.0.1; every server is checked for a correct answer
before it is measured, and non-2xx replies are counted. Writes a Markdown table and JSON.

Run through ./run.sh, which prepares the environments; see images/model-server/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "images" / "model-server" / "tests"))
import onnx_models  # noqa: E402  (shared model builders, also used by the server's tests)

MODELS = {"small": (4, 16, 3), "large": (1024, 2048, 2048, 1536, 10)}
WINDOW_MS = 2.0
MAX_BATCH = 32


@dataclass
class Result:
    model: str
    server: str
    batching: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def body_for(layers: tuple[int, ...]) -> tuple[dict[str, object], np.ndarray]:
    x = np.round(np.random.default_rng(1).standard_normal((1, layers[0])), 4).astype(np.float32)
    body = {
        "inputs": [
            {"name": "x", "shape": [1, layers[0]], "datatype": "FP32", "data": x.ravel().tolist()}
        ]
    }
    return body, x


# ---- raw onnxruntime: the ceiling ---------------------------------------------------------


def raw_onnxruntime(path: Path, x: np.ndarray, concurrency: int, seconds: float) -> Result:
    options = ort.SessionOptions()  # the same options as both servers use
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    feeds = {"x": x}
    for _ in range(50):
        session.run(None, feeds)
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    stop_at = time.perf_counter() + seconds
    barrier = threading.Barrier(concurrency)

    def worker(out: list[float]) -> None:
        barrier.wait()
        while (start := time.perf_counter()) < stop_at:
            session.run(None, feeds)
            out.append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker, args=(lat,)) for lat in latencies]
    begin = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begin
    flat = np.concatenate([np.asarray(lat) for lat in latencies])
    return Result(
        "", "raw onnxruntime", "-", concurrency, len(flat) / elapsed,
        float(np.percentile(flat, 50) * 1000), float(np.percentile(flat, 99) * 1000), 0,
    )  # fmt: skip


# ---- HTTP servers -------------------------------------------------------------------------


class Server:
    def __init__(self, argv: list[str], env: dict[str, str], port: int, model: str, log: Path):
        self.port, self.model, self.log = port, model, log
        self.url = f"http://127.0.0.1:{port}/v2/models/{model}/infer"
        self.proc = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def wait_ready(self, attempts: int = 1200) -> None:
        for _ in range(attempts):
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited; log:\n{self.log.read_text()[-3000:]}")
            try:
                url = f"http://127.0.0.1:{self.port}/v2/models/{self.model}/ready"
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server never became ready; log:\n{self.log.read_text()[-3000:]}")

    def check(self, body: dict[str, object], expected: np.ndarray) -> None:
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            out = json.loads(reply.read())["outputs"][0]
        got = np.asarray(out["data"], np.float32).reshape(expected.shape)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_slipway(args: argparse.Namespace, path: Path, batching: bool, log: Path) -> Server:
    port = free_port()
    env = {
        "PYTHONPATH": str(REPO / "images" / "model-server" / "src"),
        "SLIPWAY_MODEL_URI": str(path),
        "SLIPWAY_MODEL_SHA256": onnx_sha256(path),
        "SLIPWAY_MODEL_NAME": "mlp",
        "SLIPWAY_HOST": "127.0.0.1",
        "SLIPWAY_PORT": str(port),
        "SLIPWAY_BATCHING": str(batching).lower(),
        "SLIPWAY_BATCH_WINDOW_MS": str(WINDOW_MS),
        "SLIPWAY_MAX_BATCH_SIZE": str(MAX_BATCH),
        "SLIPWAY_LOG_LEVEL": "warning",
    }
    return Server([args.server_python, "-m", "slipway_model_server"], env, port, "mlp", log)


def start_mlserver(args: argparse.Namespace, path: Path, batching: bool, work: Path) -> Server:
    port = free_port()
    folder = work / f"mlserver-{port}"
    (folder / "mlp").mkdir(parents=True)
    settings = {
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": 0,
        "host": "127.0.0.1",
        "logging_level": "WARNING",
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    model_settings: dict[str, object] = {
        "name": "mlp",
        "implementation": "mlserver_runtime.OnnxRuntimeModel",
        "parameters": {"uri": str(path), "version": "1"},
    }
    if batching:
        model_settings |= {"max_batch_size": MAX_BATCH, "max_batch_time": WINDOW_MS / 1000}
    (folder / "mlp" / "model-settings.json").write_text(json.dumps(model_settings))
    env = {"PYTHONPATH": str(HERE)}
    mlserver = str(Path(sys.executable).parent / "mlserver")
    return Server([mlserver, "start", str(folder)], env, port, "mlp", work / f"mlserver-{port}.log")


def onnx_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- load generation ----------------------------------------------------------------------

_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"cannot parse wrk latency {text!r}")
    return float(match.group(1)) * _UNIT[match.group(2)]


def wrk(
    url: str, body_file: Path, concurrency: int, seconds: float
) -> tuple[float, float, float, int]:
    cmd = [
        "wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency",
        "--timeout", "10s", "-s", str(HERE / "post.lua"), url,
    ]  # fmt: skip
    env = {**os.environ, "BENCH_BODY": str(body_file)}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(g) for g in match.groups())
    return rps, p50, p99, errors


# ---- driver -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-python", required=True, help="python of the model-server env")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per point")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--repeat", type=int, default=1, help="runs per point; median kept")
    parser.add_argument("--concurrency", default="1,8,64")
    parser.add_argument("--models", default="small,large")
    parser.add_argument("--servers", default="slipway,mlserver")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install -y wrk)")
    work = HERE / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    levels = [int(c) for c in args.concurrency.split(",")]
    results: list[Result] = []
    load_before = os.getloadavg()
    for name in args.models.split(","):
        layers = MODELS[name]
        data, reference = onnx_models.mlp(layers, seed=1)
        path = work / f"{name}.onnx"
        path.write_bytes(data)
        body, x = body_for(layers)
        body_file = work / f"{name}.json"
        body_file.write_text(json.dumps(body))
        params = sum(a * b + b for a, b in itertools.pairwise(layers))
        print(f"== {name} MLP {layers}: {params / 1e6:.2f}M parameters", flush=True)
        for c in levels:
            runs = [raw_onnxruntime(path, x, c, args.seconds) for _ in range(args.repeat)]
            result = sorted(runs, key=lambda r: r.rps)[len(runs) // 2]
            result.model = name
            results.append(result)
            print(f"  {result}", flush=True)
        results += measure_servers(args, name, path, body, reference(x), body_file, levels, work)
    write_report(results, Path(args.out), load_before, args.repeat)


def measure_servers(
    args: argparse.Namespace,
    name: str,
    path: Path,
    body: dict[str, object],
    expected: np.ndarray,
    body_file: Path,
    levels: list[int],
    work: Path,
) -> list[Result]:
    """Start every server configuration, then measure them interleaved: each round runs all of
    them back to back, so a change in background load hits every configuration alike."""
    configs: list[tuple[str, str, Server]] = []
    try:
        for kind in args.servers.split(","):
            for batching in (False, True):
                if kind == "slipway":
                    log = work / f"slipway-{name}-{batching}.log"
                    server = start_slipway(args, path, batching, log)
                else:
                    server = start_mlserver(args, path, batching, work)
                label = "Slipway" if kind == "slipway" else "MLServer 1.7.1"
                batch = f"{WINDOW_MS:g} ms / {MAX_BATCH}" if batching else "off"
                configs.append((label, batch, server))
        for _, _, server in configs:
            server.wait_ready()
            server.check(body, expected)
        results = []
        for c in levels:
            runs: dict[int, list[tuple[float, float, float, int]]] = {}
            for _, _, server in configs:
                wrk(server.url, body_file, c, args.warmup)
            for _ in range(args.repeat):
                for index, (_, _, server) in enumerate(configs):
                    runs.setdefault(index, []).append(wrk(server.url, body_file, c, args.seconds))
            for index, (label, batch, _) in enumerate(configs):
                ordered = sorted(runs[index])
                rps, p50, p99, _ = ordered[len(ordered) // 2]  # the median run by req/s
                errors = sum(run[3] for run in ordered)
                result = Result(name, label, batch, c, rps, p50, p99, errors)
                results.append(result)
                print(f"  {result}", flush=True)
        return results
    finally:
        for _, _, server in configs:
            server.stop()


def write_report(
    results: list[Result], out: Path, load_before: tuple[float, ...], repeat: int
) -> None:
    lines = [
        "| model | server | batching | concurrency | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    order = {"raw": 0, "Slipway": 1, "MLServer": 2}
    results = sorted(
        results,
        key=lambda r: (
            r.model != "small",
            order[r.server.split()[0]],
            r.batching != "off",
            r.concurrency,
        ),
    )
    for r in results:
        lines.append(
            f"| {r.model} | {r.server} | {r.batching} | {r.concurrency} | {r.rps:,.0f} | "
            f"{r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} |"
        )
    lines.append("")
    for model in dict.fromkeys(r.model for r in results):
        top = max(r.concurrency for r in results if r.model == model)

        def best(
            server: str, batching: str | None = None, model: str = model, top: int = top
        ) -> Result | None:
            rows = [
                r for r in results
                if r.model == model and r.concurrency == top and r.server.startswith(server)
                and (batching is None or (r.batching == "off") == (batching == "off"))
            ]  # fmt: skip
            return max(rows, key=lambda r: r.rps) if rows else None

        ours, theirs = best("Slipway"), best("MLServer")
        raws = [r for r in results if r.model == model and r.server.startswith("raw")]
        raw = max(raws, key=lambda r: r.rps) if raws else None
        if ours and theirs and raw:
            lines.append(
                f"- {model}, concurrency {top}: Slipway best {ours.rps:,.0f} req/s "
                f"(batching {ours.batching}) = {ours.rps / theirs.rps:.2f}x MLServer's best "
                f"({theirs.rps:,.0f}, batching {theirs.batching}); "
                f"{ours.rps / raw.rps:.1%} of raw onnxruntime's best ({raw.rps:,.0f} calls/s "
                f"at concurrency {raw.concurrency})."
            )
        for batching in ("off", "on"):
            ours_b, theirs_b = best("Slipway", batching), best("MLServer", batching)
            if ours_b and theirs_b:
                lines.append(
                    f"  - batching {batching}: Slipway {ours_b.rps:,.0f} vs MLServer "
                    f"{theirs_b.rps:,.0f} req/s = {ours_b.rps / theirs_b.rps:.2f}x"
                )
    load_after = os.getloadavg()
    lines.append("")
    lines.append(
        f"Machine: {os.cpu_count()} CPUs; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after; onnxruntime {ort.__version__}; wrk -t1 on 127.0.0.1; "
        f"median of {repeat} run(s) per point."
    )
    table = "\n".join(lines) + "\n"
    out.with_suffix(".md").write_text(table)
    out.with_suffix(".json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    print(table)


if __name__ == "__main__":
    main()
