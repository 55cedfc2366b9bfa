#!/usr/bin/env bash
# Compile both pipelines to Kubeflow Pipelines IR YAML (default: pipelines/compiled/).
# Usage, from anywhere: pipelines/compile.sh [--output-dir DIR]
# SLIPWAY_TRAINER_IMAGE overrides the image the components run in.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
venv=$("$root/hack/venv.sh" pipelines "$root/images/trainer/requirements.txt" "$here/requirements.txt")
export PYTHONPATH="$root/images/trainer/src:$here${PYTHONPATH:+:$PYTHONPATH}"
exec "$venv/bin/python" -m slipway_pipelines.compile "$@"
