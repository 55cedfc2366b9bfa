"""Run one of the pipelines with ``kfp.local`` and write its outcome: the operator's local provider.

    python -m slipway_pipelines.run_local --pipeline NAME --parameters FILE --result FILE
        [--pipeline-root DIR]

loads the pipeline called ``NAME`` (``pipelines.PIPELINES``), calls it with the JSON object in
``--parameters`` under ``kfp.local`` (``SubprocessRunner(use_venv=False)``: every component runs in
this interpreter, which must have ``slipway_trainer``), and writes ``--result`` atomically:
``{"outputs": {"Output": <the pipeline's return value>}}`` on success (an artifact becomes
``{"uri", "path", "metadata"}``), ``{"error": "..."}`` on failure (exit 1). The operator's local
provider runs it detached and reads the result; nothing here knows about the operator.
"""

import argparse
import inspect
import json
import os
import re
import sys
from typing import Any

from kfp import local

from .pipelines import PIPELINES

ANSI = re.compile(r"\x1b\[[0-9;]*m")  # kfp.local colours its messages


def _coerce(func: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    """JSON has one number type: give float parameters floats (an int 1 for ``min_value``)."""
    target = getattr(func, "pipeline_func", func)
    try:
        annotations = {n: p.annotation for n, p in inspect.signature(target).parameters.items()}
    except (TypeError, ValueError):
        return parameters
    return {
        name: float(value)
        if annotations.get(name) is float and isinstance(value, int) and not isinstance(value, bool)
        else value
        for name, value in parameters.items()
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "metadata") and hasattr(value, "uri"):
        return {
            "uri": str(value.uri),
            "path": str(getattr(value, "path", "") or ""),
            "metadata": json.loads(json.dumps(dict(value.metadata), default=str)),
        }
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _outputs(task: Any) -> dict[str, Any]:
    outputs = getattr(task, "outputs", None)
    if isinstance(outputs, dict) and outputs:
        return {str(k): _jsonable(v) for k, v in outputs.items()}
    return {"Output": _jsonable(getattr(task, "output", None))}


def _write(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)


def run(name: str, parameters: dict[str, Any], pipeline_root: str) -> dict[str, Any]:
    """Run pipeline ``name`` to the end; returns its outputs, raises on failure."""
    if name not in PIPELINES:
        raise ValueError(f"unknown pipeline {name!r}; known: {', '.join(sorted(PIPELINES))}")
    func = PIPELINES[name]
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=pipeline_root,
        raise_on_error=True,
    )
    return _outputs(func(**_coerce(func, parameters)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slipway_pipelines.run_local", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--pipeline", required=True, choices=sorted(PIPELINES))
    parser.add_argument("--parameters", required=True, help="JSON file: the pipeline's arguments")
    parser.add_argument("--result", required=True, help="where to write the outcome (JSON)")
    parser.add_argument("--pipeline-root", default="kfp-root", help="kfp.local's artifact folder")
    args = parser.parse_args(argv)
    try:
        with open(args.parameters) as handle:
            parameters = json.load(handle)
        outputs = run(args.pipeline, parameters, os.path.abspath(args.pipeline_root))
    except Exception as exc:  # the run's outcome: recorded, not raised
        error = ANSI.sub("", str(exc)).strip() or type(exc).__name__
        _write(args.result, {"error": error})
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    _write(args.result, {"outputs": outputs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
