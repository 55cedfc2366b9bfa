"""The ``kfp`` pipelines provider against a stand-in Kubeflow Pipelines API server.

The stand-in (``FakeKfp`` below) is a small HTTP server in this test implementing the v2beta1
endpoints the provider calls: pipelines by name, create pipeline, list and upload pipeline
versions, list and create experiments, list runs (with the ``display_name EQUALS`` filter), create,
get and terminate runs. It checks the bearer token on every request. It is not KFP: it stands in
for it, and the test moves runs through their states the way KFP's persistence agent would.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from slipway.backends.kfp import KfpPipelines
from slipway.backends.pipelines import (
    CANCELED,
    CANCELING,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TRAINING,
    PipelineRun,
    PipelinesError,
)
from slipway.config import KfpConfig

ROOT = Path(__file__).resolve().parents[2]
COMPILED = ROOT / "pipelines" / "compiled"


class FakeKfp:
    """State of the stand-in server, and what it was asked."""

    def __init__(self) -> None:
        self.token = "token-1"
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, bytes] = {}
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.lock = threading.Lock()

    @staticmethod
    def _matches(item: dict[str, Any], query: dict[str, list[str]]) -> bool:
        filters = query.get("filter")
        if not filters:
            return True
        for predicate in json.loads(filters[0])["predicates"]:
            assert predicate["operation"] == "EQUALS"
            value = predicate.get("string_value", predicate.get("stringValue"))
            if item.get(predicate["key"]) != value:
                return False
        return True

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        ns = query.get("namespace", [""])[0]
        self.calls.append(f"{method} {path}")
        if m := re.fullmatch(r"/apis/v2beta1/pipelines/names/([^/]+)", path):
            found = [p for p in self.pipelines.values() if p["name"] == m[1]]
            return (200, found[0]) if found else (404, {"code": 5, "message": "not found"})
        if path == "/apis/v2beta1/pipelines" and method == "POST":
            item = json.loads(body) | {"pipeline_id": str(uuid.uuid4())}
            self.pipelines[item["pipeline_id"]] = item
            return 200, item
        if m := re.fullmatch(r"/apis/v2beta1/pipelines/([^/]+)/versions", path):
            listed = [
                v
                for v in self.versions.values()
                if v["pipeline_id"] == m[1] and self._matches(v, query)
            ]
            return 200, {"pipeline_versions": listed, "total_size": len(listed)}
        if path == "/apis/v2beta1/pipelines/upload_version":
            assert b'name="uploadfile"' in body
            content = body.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]
            item = {
                "pipeline_id": query["pipelineid"][0],
                "pipeline_version_id": str(uuid.uuid4()),
                "name": query["name"][0],
            }
            self.versions[item["pipeline_version_id"]] = item
            self.uploads[item["pipeline_version_id"]] = content
            return 200, item
        if path == "/apis/v2beta1/experiments":
            if method == "POST":
                item = json.loads(body) | {"experiment_id": str(uuid.uuid4())}
                self.experiments[item["experiment_id"]] = item
                return 200, item
            listed = [
                e
                for e in self.experiments.values()
                if e.get("namespace", "") == ns and self._matches(e, query)
            ]
            return 200, {"experiments": listed}
        if path == "/apis/v2beta1/runs" and method == "POST":
            item = json.loads(body)
            assert item["pipeline_version_reference"]["pipeline_version_id"] in self.versions
            experiment = self.experiments[item["experiment_id"]]
            item |= {
                "run_id": str(uuid.uuid4()),
                "state": PENDING,
                "namespace": experiment.get("namespace", ""),
                "created_at": f"2026-11-28T10:00:{len(self.runs):02d}Z",
                "finished_at": "1970-01-01T00:00:00Z",
            }
            self.runs[item["run_id"]] = item
            return 200, item
        if path == "/apis/v2beta1/runs":
            if "filter" not in query:  # the whole list could be huge: callers filter by name
                return 400, {"code": 3, "message": "stand-in: list runs without a filter"}
            listed = [
                r for r in self.runs.values() if r["namespace"] == ns and self._matches(r, query)
            ]
            return 200, {"runs": listed, "total_size": len(listed)}
        if m := re.fullmatch(r"/apis/v2beta1/runs/([^/:]+)(:terminate)?", path):
            run = self.runs.get(m[1])
            if run is None:
                return 404, {"code": 5, "message": f"run {m[1]} not found"}
            if m[2]:
                run["state"] = CANCELING
                return 200, {}
            return 200, run
        return 404, {"code": 12, "message": f"stand-in does not implement {method} {path}"}


@pytest.fixture
def kfp() -> Iterator[tuple[FakeKfp, str]]:
    fake = FakeKfp()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                code, answer = 401, {"code": 16, "message": "bad token"}
            else:
                with fake.lock:
                    code, answer = fake.handle(self.command, url.path, parse_qs(url.query), body)
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def provider(endpoint: str, token: Path, **extra: Any) -> KfpPipelines:
    return KfpPipelines(
        KfpConfig(endpoint=endpoint, token_file=str(token), pipelines_dir=str(COMPILED), **extra)
    )


def training_run(name: str = "digits-mlp-g1-0f3c9a2e") -> PipelineRun:
    return PipelineRun(name, "ml", TRAINING, {"dataset_uri": "s3://d/v1", "epochs": 3})


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("token-1\n")
    return path


def test_start_uploads_the_compiled_pipeline_once_and_creates_one_run(
    kfp: tuple[FakeKfp, str], token: Path
) -> None:
    fake, endpoint = kfp
    run = training_run()
    started = provider(endpoint, token).start(run)
    assert started.state == PENDING and not started.terminal
    ((version_id, uploaded),) = fake.uploads.items()
    assert uploaded == (COMPILED / f"{TRAINING}.yaml").read_bytes()
    assert fake.versions[version_id]["name"].startswith(f"{TRAINING}-")
    (created,) = fake.runs.values()
    assert created["display_name"] == run.name
    assert created["runtime_config"]["parameters"] == {"dataset_uri": "s3://d/v1", "epochs": 3}
    assert created["run_id"] == started.run_id

    # A restarted operator (a new provider) finds the run instead of creating a second one,
    # and reuses the uploaded pipeline version for a new run.
    again = provider(endpoint, token)
    assert again.start(run).run_id == started.run_id
    assert again.find(run) == started
    assert len(fake.runs) == 1
    again.start(training_run("digits-mlp-g2-0f3c9a2e"))
    assert len(fake.runs) == 2 and len(fake.uploads) == 1 and len(fake.experiments) == 1


def test_states_and_failure_messages(kfp: tuple[FakeKfp, str], token: Path) -> None:
    fake, endpoint = kfp
    backend = provider(endpoint, token)
    run_id = backend.start(training_run()).run_id
    fake.runs[run_id]["state"] = RUNNING
    status = backend.status(run_id)
    assert status is not None and status.state == RUNNING and status.finished is None
    fake.runs[run_id] |= {
        "state": FAILED,
        "finished_at": "2026-11-28T10:05:00Z",
        "error": {"code": 9, "message": "pipeline failed"},
        "run_details": {
            "task_details": [
                {"display_name": "train-model", "state": SUCCEEDED},
                {
                    "display_name": "evaluate-model",
                    "state": FAILED,
                    "error": {"message": "quality gate failed: accuracy 0.41 < 0.9"},
                },
            ]
        },
    }
    status = backend.status(run_id)
    assert status is not None and status.terminal and not status.succeeded
    assert status.message == (
        "task evaluate-model: quality gate failed: accuracy 0.41 < 0.9; pipeline failed"
    )
    assert status.finished == "2026-11-28T10:05:00Z"
    assert backend.status("no-such-run") is None


def test_cancel_is_terminal_and_never_restarts(kfp: tuple[FakeKfp, str], token: Path) -> None:
    fake, endpoint = kfp
    backend = provider(endpoint, token)
    run = training_run()
    run_id = backend.start(run).run_id
    fake.runs[run_id]["state"] = RUNNING
    backend.cancel(run_id)
    assert f"POST /apis/v2beta1/runs/{run_id}:terminate" in fake.calls
    status = backend.status(run_id)
    assert status is not None and status.state == CANCELING and not status.terminal
    fake.runs[run_id]["state"] = CANCELED  # what KFP reports once the workflow stopped
    status = backend.status(run_id)
    assert status is not None and status.terminal and not status.succeeded
    restarted = provider(endpoint, token)
    assert restarted.start(run).state == CANCELED
    assert len(fake.runs) == 1
    calls = len(fake.calls)
    restarted.cancel(run_id)  # already terminal: nothing to terminate
    assert not any(":terminate" in c for c in fake.calls[calls:])


def test_token_is_read_on_every_call(kfp: tuple[FakeKfp, str], token: Path) -> None:
    fake, endpoint = kfp
    backend = provider(endpoint, token)
    run_id = backend.start(training_run()).run_id
    fake.token = "token-2"  # the kubelet rotated the projected token
    with pytest.raises(PipelinesError, match="HTTP 401: bad token"):
        backend.status(run_id)
    token.write_text("token-2")
    assert backend.status(run_id) is not None


def test_multi_user_runs_live_in_the_object_namespace(
    kfp: tuple[FakeKfp, str], token: Path
) -> None:
    fake, endpoint = kfp
    backend = provider(endpoint, token, multi_user=True)
    run = training_run()
    started = backend.start(run)
    assert fake.runs[started.run_id]["namespace"] == "ml"
    assert backend.find(run) == started
    elsewhere = PipelineRun(run.name, "other", run.pipeline, run.parameters)
    assert backend.find(elsewhere) is None  # the same name in another profile is another run


def test_unreachable_server_is_a_pipelines_error(token: Path) -> None:
    backend = provider("http://127.0.0.1:9", token, timeout_seconds=2)
    with pytest.raises(PipelinesError, match="unreachable"):
        backend.find(training_run())
