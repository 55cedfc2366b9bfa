"""Render the SeldonDeployment that runs this image as a Seldon Core v1 custom V2 server.

Seldon Core v1 runs a "custom server" as a MODEL node of the inference graph whose container is
given in `componentSpecs`; with `spec.protocol: v2` its executor speaks the Open Inference
Protocol to that container on the port named `http` (9000). This module is the single statement
of what the image needs from that manifest, the operator's Seldon backend renders the same
fields, and the tests start a server with exactly the environment rendered here and hit the
probe paths rendered here. Pure: no I/O. `python -m slipway_model_server.seldon` prints JSON.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

HTTP_PORT = 9000
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
SHUTDOWN_DELAY_S = 5  # > readiness period x failures, so endpoints drop the pod before it closes


def container_env(
    model_name: str,
    model_version: str,
    model_uri: str,
    sha256: str,
    batching: bool = False,
    drain_timeout_s: int = 30,
) -> list[dict[str, str]]:
    """The container's environment; the server reads it with pydantic-settings."""
    env = {
        "SLIPWAY_MODEL_NAME": model_name,
        "SLIPWAY_MODEL_VERSION": model_version,
        "SLIPWAY_MODEL_URI": model_uri,
        "SLIPWAY_MODEL_SHA256": sha256,
        "SLIPWAY_PORT": str(HTTP_PORT),
        "SLIPWAY_BATCHING": "true" if batching else "false",
        "SLIPWAY_DRAIN_TIMEOUT_S": str(drain_timeout_s),
        "SLIPWAY_SHUTDOWN_DELAY_S": str(SHUTDOWN_DELAY_S),
    }
    return [{"name": key, "value": value} for key, value in env.items()]


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http", "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def render_seldon_deployment(
    *,
    name: str,
    namespace: str,
    image: str,
    model_uri: str,
    sha256: str,
    model_version: str = "1",
    replicas: int = 1,
    batching: bool = False,
    drain_timeout_s: int = 30,
    resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `machinelearning.seldon.io/v1` SeldonDeployment serving one model with this image.

    The graph node, the container and the V2 model name are all `name`, because Seldon's
    executor routes `/v2/models/<graph node name>/...` to the node's container.
    """
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "env": container_env(name, model_version, model_uri, sha256, batching, drain_timeout_s),
        # Live as soon as the process serves HTTP; ready only after load + digest + warm-up.
        "livenessProbe": _probe(LIVE_PATH, period=10, failures=3),
        "readinessProbe": _probe(READY_PATH, period=2, failures=1),
        # Loading a large model from object storage can take minutes: the startup probe
        # holds off the liveness probe meanwhile, not the readiness one.
        "startupProbe": _probe(LIVE_PATH, period=2, failures=150),
    }
    if resources:
        container["resources"] = resources
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "name": name,
            "protocol": "v2",
            "predictors": [
                {
                    "name": "default",
                    "replicas": replicas,
                    "graph": {
                        "name": name,
                        "type": "MODEL",
                        "endpoint": {"type": "REST", "httpPort": HTTP_PORT},
                        "children": [],
                    },
                    "componentSpecs": [
                        {
                            "spec": {
                                "containers": [container],
                                # SIGTERM drains in-flight requests; give it time to.
                                "terminationGracePeriodSeconds": drain_timeout_s
                                + SHUTDOWN_DELAY_S
                                + 5,
                            }
                        }
                    ],
                }
            ],
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--image", required=True)
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--sha256", required=True)
    parser.add_argument("--model-version", default="1")
    parser.add_argument("--batching", action="store_true")
    args = parser.parse_args(argv)
    manifest = render_seldon_deployment(
        name=args.name,
        namespace=args.namespace,
        image=args.image,
        model_uri=args.model_uri,
        sha256=args.sha256,
        model_version=args.model_version,
        batching=args.batching,
    )
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
