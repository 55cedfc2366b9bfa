"""Compile both pipelines to Kubeflow Pipelines IR YAML.

    python -m slipway_pipelines.compile [--output-dir pipelines/compiled]

writes ``<output-dir>/<pipeline name>.yaml`` for each pipeline and prints the paths.
"""

import argparse
import os
import sys

from kfp import compiler

from .pipelines import PIPELINES

DEFAULT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "compiled")


def compile_all(output_dir: str) -> list[str]:
    os.makedirs(output_dir, exist_ok=True)
    paths = []
    for name, func in PIPELINES.items():
        path = os.path.join(output_dir, f"{name}.yaml")
        compiler.Compiler().compile(pipeline_func=func, package_path=path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slipway_pipelines.compile", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--output-dir", default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    for path in compile_all(args.output_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
