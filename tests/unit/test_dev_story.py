"""The pieces of `make dev`'s story: the load generator, the chain's reading of status, and the
operator configuration `dev up` writes. The load generator runs against a real aiohttp server."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from slipway.config import load_config
from slipway.devcluster import load
from slipway.devcluster.chain import ChainError, failure, find, is_ready, summary
from slipway.devcluster.cluster import DevCluster
from slipway.devcluster.commands import _operator_config

ROOT = Path(__file__).resolve().parents[2]


def test_payload_is_a_digits_shaped_v2_request() -> None:
    body = load.payload(random.Random(1), (1, 1, 8, 8))
    [tensor] = body["inputs"]  # type: ignore[misc]
    assert tensor["name"] == "input" and tensor["shape"] == [1, 1, 8, 8]
    assert tensor["datatype"] == "FP32" and len(tensor["data"]) == 64
    assert all(0 <= x <= 16 for x in tensor["data"])


def test_tally_line_shows_the_split_and_failures() -> None:
    tally = load.Tally()
    tally.versions.update({"v1": 3, "v2": 1})
    tally.failures["HTTP 503"] = 2
    line = tally.line(10)
    assert "4 answered in 10 s (v1 75%, v2 25%); failed: HTTP 503 2" in line


def test_load_counts_every_answer_by_version() -> None:
    seen: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        assert body["inputs"][0]["shape"] == [1, 1, 8, 8]
        seen.append(1)
        if len(seen) % 5 == 0:
            return web.json_response({"error": "boom"}, status=500)
        version = "va" if len(seen) % 2 else "vb"
        return web.json_response({"outputs": []}, headers={load.VERSION_HEADER: version})

    async def scenario() -> tuple[Any, list[str]]:
        app = web.Application()
        app.router.add_post("/v2/models/digits/infer", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        lines: list[str] = []
        try:
            totals = await load.run(
                f"http://127.0.0.1:{port}", "digits", rate=40, duration=1.0, say=lines.append
            )
        finally:
            await runner.cleanup()
        return totals, lines

    totals, lines = asyncio.run(scenario())
    assert 38 <= len(seen) <= 42, len(seen)
    failed = len(seen) // 5
    assert sum(totals.values()) == len(seen) - failed
    assert set(totals) == {"va", "vb"}
    assert f"failed: HTTP 500 {failed}" in lines[-1]


def test_summary_and_readiness_read_the_ready_condition() -> None:
    obj = {
        "status": {
            "phase": "Waiting",
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "WaitingForModel", "message": "m"}
            ],
        }
    }
    assert summary(obj) == "Ready=False Waiting (WaitingForModel: m)"
    assert not is_ready(obj) and not is_ready(None)
    obj["status"]["conditions"][0]["status"] = "True"  # type: ignore[index]
    assert is_ready(obj)
    assert summary({}) == "Ready=Unknown"


def test_find_wants_exactly_one_example_of_a_kind() -> None:
    examples = [{"kind": "Dataset"}, {"kind": "TuningSweep"}, {"kind": "TuningSweep"}]
    assert find(examples, "Dataset") == {"kind": "Dataset"}
    with pytest.raises(ChainError, match="one TuningSweep, found 2"):
        find(examples, "TuningSweep")


def test_dev_up_points_the_operator_at_its_prometheus(tmp_path: Path) -> None:
    dev = DevCluster(tmp_path)
    path = _operator_config(dev, ROOT / "config" / "dev.yaml", "http://127.0.0.1:41234")
    config = load_config(path, environ={})
    assert config.analysis == "prometheus"
    assert config.prometheus.url == "http://127.0.0.1:41234"
    base = yaml.safe_load((ROOT / "config" / "dev.yaml").read_text())
    assert [p.name for p in config.node_pools] == [p["name"] for p in base["nodePools"]]
    assert (config.pipelines, config.training, config.tuning) == ("local", "local", "local")


def test_a_failed_example_stops_the_wait_with_its_reason() -> None:
    failed = {
        "status": {
            "phase": "Failed",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "QualityGateFailed",
                    "message": "accuracy 0.41 < 0.9",
                }
            ],
        }
    }
    problem = failure("TrainingJob/digits-cnn", failed)
    assert problem is not None and "accuracy 0.41 < 0.9" in problem
    assert problem.startswith("TrainingJob/digits-cnn failed: Ready=False Failed (QualityGate")
    assert failure("TrainingJob/digits-cnn", {"status": {"phase": "Running"}}) is None
    assert failure("Dataset/digits", None) is None
