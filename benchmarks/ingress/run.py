"""Ingress benchmark: throughput and latency through the Istio ingress stand-in, against the same
model server called directly, at the same concurrency.

The ingress stand-in (``slipway.devcluster.ingress``) is a development tool, but its overhead must
be known. This command starts one real model-server process (``images/model-server``, from its own
environment) on a free loopback port, serving a real ONNX model shaped like the digits model the
trainer exports (``input`` FP32 ``[batch, 1, 8, 8]``: standardize, flatten, 64 -> 32 -> 10, ReLU),
and the ingress stand-in in a process of its own routing to it by a VirtualService
(``serve_ingress.py``). Both answers are checked against a numpy reference before anything is
timed. Then the load generator in this process keeps ``--concurrency`` requests in flight against
one target at a time, alternating (direct, ingress, direct, ingress...) for ``--rounds`` rounds so
that machine noise falls on both; each turn is a warm-up and ``--duration`` measured seconds.

It writes ``benchmarks/ingress/results.md`` (requests/s, p50, p99, CPU per request of each
process, the ratios ingress / direct, each round) and prints it. Every process it started is
stopped and its ports checked closed before it exits.

    python -m benchmarks.ingress.run [--concurrency 64] [--duration 15] [--warmup 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from benchmarks.operator.probes import cpu_seconds
from slipway.devcluster.cluster import free_port
from slipway.devcluster.model_servers import SERVER_PACKAGE, model_server_python
from slipway.devcluster.paths import repo_root

from . import report
from .load import Segment, hammer
from .serve_ingress import VERSION

MODEL = "digits"
RESULTS = Path(__file__).with_name("results.md")

# Run by the model server's interpreter (it has onnx and numpy): writes the model, prints its
# sha256, the request's input and the numpy reference of the answer.
MODEL_SCRIPT = r"""
import hashlib, json, sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
rng = np.random.default_rng(7)
mean, std = np.float32(4.9), np.float32(6.0)  # about the digits pixels' (0..16)
w1 = (rng.standard_normal((64, 32)) / 8).astype(np.float32)
b1 = (rng.standard_normal(32) * 0.1).astype(np.float32)
w2 = (rng.standard_normal((32, 10)) / np.sqrt(32)).astype(np.float32)
b2 = (rng.standard_normal(10) * 0.1).astype(np.float32)
consts = {"mean": np.array(mean), "std": np.array(std), "w1": w1, "b1": b1, "w2": w2, "b2": b2}
nodes = [
    helper.make_node("Sub", ["input", "mean"], ["centred"]),
    helper.make_node("Div", ["centred", "std"], ["scaled"]),
    helper.make_node("Flatten", ["scaled"], ["flat"], axis=1),
    helper.make_node("Gemm", ["flat", "w1", "b1"], ["pre"]),
    helper.make_node("Relu", ["pre"], ["hidden"]),
    helper.make_node("Gemm", ["hidden", "w2", "b2"], ["logits"]),
]
graph = helper.make_graph(
    nodes,
    "digits_mlp",
    [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 8, 8])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
    [numpy_helper.from_array(v, k) for k, v in consts.items()],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
data = model.SerializeToString()
open(sys.argv[1], "wb").write(data)
x = (np.arange(64, dtype=np.float32) * 7 % 17).reshape(1, 1, 8, 8)
h = np.maximum(((x - mean) / std).reshape(1, 64) @ w1 + b1, 0)
y = h @ w2 + b2
print(json.dumps({"sha256": hashlib.sha256(data).hexdigest(), "x": x.ravel().tolist(),
                  "y": y.ravel().tolist()}))
"""


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def process(
    argv: list[str], env: dict[str, str], log: Path, cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own process group; SIGTERM (then SIGKILL after 30 s) to the group at exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s:\n{log.read_text()}")


def infer_once(url: str, body: bytes) -> tuple[list[float], str]:
    """One request: the logits and the ``x-slipway-version`` header (empty when absent)."""
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
        version = response.headers.get("x-slipway-version") or ""
    return [float(v) for v in answer["outputs"][0]["data"]], version


def check_answers(direct: str, ingress: str, body: bytes, expected: list[float]) -> None:
    """Both targets answer with the model's logits, and the ingress says which version answered:
    a benchmark of 404s or of the wrong model would be worthless."""
    for url in (direct, ingress):
        logits, version = infer_once(url, body)
        if len(logits) != len(expected) or any(
            abs(a - b) > 1e-4 for a, b in zip(logits, expected, strict=True)
        ):
            raise RuntimeError(f"{url} answered {logits}, the reference is {expected}")
        if url == ingress and version != VERSION:
            raise RuntimeError(f"the ingress answered with version {version!r}, not {VERSION}")


def build_model(python: Path, folder: Path) -> tuple[Path, str, bytes, list[float]]:
    """The model file, its sha256, a V2 request body and the reference logits for it."""
    path = folder / f"{MODEL}.onnx"
    made = json.loads(
        subprocess.run(
            [str(python), "-c", MODEL_SCRIPT, str(path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert hashlib.sha256(path.read_bytes()).hexdigest() == made["sha256"]
    tensor = {"name": "input", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": made["x"]}
    body = json.dumps({"inputs": [tensor]}).encode()
    return path, made["sha256"], body, made["y"]


async def alternate(
    urls: dict[str, str], body: bytes, args: argparse.Namespace, pids: dict[str, int]
) -> list[Segment]:
    def meter() -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in pids.items()}

    segments = []
    for turn in range(args.rounds):
        for target in (report.DIRECT, report.INGRESS):
            say(f"round {turn + 1}/{args.rounds}: {target}, {args.concurrency} in flight")
            segment = await hammer(
                target, urls[target], body, args.concurrency, args.warmup, args.duration, meter
            )
            say(f"  {segment.rps:.0f} req/s, {segment.errors} errors")
            segments.append(segment)
    return segments


def measure(args: argparse.Namespace, folder: Path) -> list[Segment]:
    root = repo_root()
    python = model_server_python(root)
    model, digest, body, expected = build_model(python, folder)
    server_port, ingress_port = free_port(), free_port()
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_") and k != "PYTHONPATH"
    }
    server_env = inherited | {
        "PYTHONPATH": str(root / "images" / "model-server" / "src"),
        "SLIPWAY_MODEL_URI": model.as_uri(),
        "SLIPWAY_MODEL_SHA256": digest,
        "SLIPWAY_MODEL_NAME": MODEL,
        "SLIPWAY_HOST": "127.0.0.1",
        "SLIPWAY_PORT": str(server_port),
    }
    ingress_argv = [
        sys.executable,
        "-m",
        "benchmarks.ingress.serve_ingress",
        f"--port={ingress_port}",
        f"--upstream-port={server_port}",
        f"--model={MODEL}",
    ]
    server_log, ingress_log = folder / "model-server.log", folder / "ingress.log"
    direct = f"http://127.0.0.1:{server_port}/v2/models/{MODEL}"
    ingress = f"http://127.0.0.1:{ingress_port}/v2/models/{MODEL}"
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(
            process([str(python), "-m", SERVER_PACKAGE], server_env, server_log, folder)
        )
        wait_ready(f"http://127.0.0.1:{server_port}/v2/health/ready", server, server_log)
        router = stack.enter_context(process(ingress_argv, inherited, ingress_log, root))
        wait_ready(f"{ingress}/ready", router, ingress_log)
        say(f"model server pid {server.pid} port {server_port}, ingress pid {router.pid}")
        check_answers(f"{direct}/infer", f"{ingress}/infer", body, expected)
        pids = {"model server": server.pid, "ingress": router.pid, "load generator": os.getpid()}
        urls = {report.DIRECT: f"{direct}/infer", report.INGRESS: f"{ingress}/infer"}
        segments = asyncio.run(alternate(urls, body, args, pids))
    left = [p for p in (server_port, ingress_port) if port_open(p)]
    if left or server.returncode is None or router.returncode is None:
        raise RuntimeError(f"not everything stopped: ports still open {left}")
    say(f"stopped: model server exited {server.returncode}, ingress {router.returncode}")
    return segments


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ingress.run", description=__doc__)
    p.add_argument("--concurrency", type=int, default=64, help="requests kept in flight")
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds per turn")
    p.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each")
    p.add_argument("--rounds", type=int, default=3, help="turns per target, alternating")
    p.add_argument("--out", type=Path, default=RESULTS, help="where to write the markdown")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    machine = report.machine()  # the load average before anything of ours runs
    with tempfile.TemporaryDirectory(prefix="bench-ingress-") as tmp:
        segments = measure(args, Path(tmp))
    command = (
        f"`python -m benchmarks.ingress.run --concurrency {args.concurrency} "
        f"--duration {args.duration:g} --warmup {args.warmup:g} --rounds {args.rounds}`"
    )
    defaults = parser().parse_args([])
    if all(
        getattr(args, k) == getattr(defaults, k)
        for k in ("concurrency", "duration", "warmup", "rounds")
    ):
        command = f"`make bench-ingress` ({command})"
    setting = (
        f"Setting: one model-server process (uvicorn, onnxruntime on 1 intra-op thread) serving "
        f"a digits-shaped ONNX MLP (`input` FP32 [1, 1, 8, 8] -> 10 logits, V2 JSON); the "
        f"ingress stand-in in its own process routing to it by a VirtualService (100 % to one "
        f"DestinationRule subset); the aiohttp load generator in the benchmark process with "
        f"{args.concurrency} requests in flight, {args.warmup:g} s warm-up then "
        f"{args.duration:g} s measured per turn, {args.rounds} alternating turns per target. "
        f"All on the same cores: the ingress's CPU is taken from the model server and the "
        f"client, which is its real cost on one machine."
    )
    text = report.render(segments, command, setting, machine)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
