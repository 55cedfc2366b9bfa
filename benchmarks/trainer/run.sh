#!/usr/bin/env bash
# Trainer benchmark: samples/s of the training step for the MLP and the CNN, and the share of step
# time spent loading data. Usage, from anywhere: benchmarks/trainer/run.sh [--device cuda] [--epochs N]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=$("$root/hack/venv.sh" trainer "$root/images/trainer/requirements.txt")
export PYTHONPATH="$root/images/trainer/src${PYTHONPATH:+:$PYTHONPATH}"
exec "$venv/bin/python" "$here/bench.py" "$@"
