"""Adaptive batching: merged calls return exactly what unbatched calls return.

Merging is made deterministic, not timing-dependent: the window is long (60 s) and the maximum
batch size equals the rows the test sends, so the batch runs exactly when the last request joins
it. The metrics' batch-size histogram then proves the requests really shared one call.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from server_harness import ServerProcess, batching_env, infer_body


def _post_all(server: ServerProcess, bodies: list[dict[str, object]]) -> list[httpx.Response]:
    def post(body: dict[str, object]) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            return client.post("/v2/models/mlp/infer", json=body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def _batch_stats(server: ServerProcess) -> dict[str, float]:
    stats = {}
    for line in server.client.get("/metrics").text.splitlines():
        if line.startswith("slipway_model_batch_size_"):
            key, value = line.rsplit(" ", 1)
            stats[key.split("{")[0].removeprefix("slipway_model_batch_size_")] = float(value)
            if 'le="1.0"' in key:
                stats["le1"] = float(value)
    return stats


def _unbatched(server: ServerProcess, body: dict[str, object]) -> httpx.Response:
    return server.client.post("/v2/models/mlp/infer", json=body)


def test_mixed_batch_sizes_match_unbatched(start_server, mlp_model: tuple) -> None:
    path, digest, reference = mlp_model
    sizes = [1, 3, 1, 2, 5, 1, 4, 7]  # 24 rows in all
    env = {"SLIPWAY_MODEL_URI": str(path), "SLIPWAY_MODEL_SHA256": digest}
    plain = start_server(env)
    batched = start_server(batching_env(path, digest, 60000, sum(sizes)))
    plain.wait_ready()
    batched.wait_ready()
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal((n, 4)).astype(np.float32) for n in sizes]
    bodies = [infer_body("x", x) | {"id": f"r{i}"} for i, x in enumerate(inputs)]

    responses = _post_all(batched, bodies)

    for i, (x, body, response) in enumerate(zip(inputs, bodies, responses, strict=True)):
        assert response.status_code == 200, response.text
        reply = response.json()
        assert reply["id"] == f"r{i}"
        alone = _unbatched(plain, body).json()
        assert reply["outputs"] == alone["outputs"]  # byte-for-byte the same numbers
        got = np.asarray(reply["outputs"][0]["data"], np.float32).reshape(len(x), 3)
        np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)
    stats = _batch_stats(batched)
    assert stats["count"] == 1  # one onnxruntime call ...
    assert stats["sum"] == sum(sizes)  # ... with every row in it


def test_one_failing_request_fails_alone(start_server, lookup_model: tuple) -> None:
    path, digest, table = lookup_model
    server = start_server(batching_env(path, digest, 60000, 6))
    server.wait_ready()
    indices = [[1], [2, 3], [42], [0, 9]]  # 42 is outside the 10-row table
    bodies = [
        {"inputs": [{"name": "idx", "shape": [len(i)], "datatype": "INT64", "data": i}]}
        for i in indices
    ]
    responses = _post_all(server, bodies)
    for idx, response in zip(indices, responses, strict=True):
        if 42 in idx:
            assert response.status_code == 400, response.text
            assert "idx=42" in response.json()["error"]
            continue
        assert response.status_code == 200, response.text
        outputs = {out["name"]: out for out in response.json()["outputs"]}
        assert outputs["value"]["shape"] == [len(idx), 2]
        assert outputs["value"]["data"] == table[idx].ravel().tolist()
        assert outputs["twice"]["data"] == (2 * table[idx]).ravel().tolist()
    stats = _batch_stats(server)
    # The merged call (6 rows) failed, then each of the 4 requests ran alone.
    assert stats["count"] == 5
    assert stats["sum"] == 12
    # Requested outputs still apply to batched requests.
    body = dict(bodies[0], outputs=[{"name": "twice"}])
    server_alone = server.client.post(
        "/v2/models/mlp/infer",
        json=body
        | {
            "inputs": [
                {"name": "idx", "shape": [6], "datatype": "INT64", "data": [0, 1, 2, 3, 4, 5]}
            ]
        },
    )
    assert [out["name"] for out in server_alone.json()["outputs"]] == ["twice"]


@pytest.mark.parametrize("eager", [True, False])
def test_short_window_under_concurrency(start_server, mlp_model: tuple, eager: bool) -> None:
    """A small window with many concurrent callers, eager or not: every answer is right."""
    path, digest, reference = mlp_model
    server = start_server(batching_env(path, digest, 5, 16, eager=eager))
    server.wait_ready()
    rng = np.random.default_rng(11)
    sizes = rng.integers(1, 6, size=48)
    inputs = [rng.standard_normal((int(n), 4)).astype(np.float32) for n in sizes]
    responses = _post_all(server, [infer_body("x", x) for x in inputs])
    for x, response in zip(inputs, responses, strict=True):
        assert response.status_code == 200, response.text
        got = np.asarray(response.json()["outputs"][0]["data"], np.float32).reshape(len(x), 3)
        np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)
    assert _batch_stats(server)["sum"] == sum(len(x) for x in inputs)


def test_eager_batching_does_not_hold_a_lone_request(start_server, mlp_model: tuple) -> None:
    """Eager mode: with nothing else in flight, a request runs at once instead of waiting out
    the (here one-minute) window; the client's 30 s timeout would fail the test otherwise."""
    path, digest, reference = mlp_model
    server = start_server(batching_env(path, digest, 60000, 64, eager=True))
    server.wait_ready()
    x = np.ones((2, 4), np.float32)
    for _ in range(3):
        response = server.client.post("/v2/models/mlp/infer", json=infer_body("x", x))
        assert response.status_code == 200, response.text
    got = np.asarray(response.json()["outputs"][0]["data"], np.float32).reshape(2, 3)
    np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)
    stats = _batch_stats(server)
    assert (stats["count"], stats["sum"]) == (3, 6)
