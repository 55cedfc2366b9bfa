#!/usr/bin/env bash
# Benchmark the Slipway model server against raw onnxruntime and MLServer on this machine.
#
#   benchmarks/model_server/run.sh [--seconds 8] [--concurrency 1,8,64] [--models small,large]
#
# Needs wrk (Debian: apt-get install -y wrk). Creates (once) two environments with hack/venv.sh:
# the server's own, and a separate one holding MLServer; writes results.md and results.json here.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
server_env=$("$repo/hack/venv.sh" model-server \
  "$repo/images/model-server/requirements.txt" "$repo/images/model-server/requirements-test.txt")
bench_env=$("$repo/hack/venv.sh" model-server-bench "$here/requirements.txt")
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }

exec "$bench_env/bin/python" "$here/bench.py" --server-python "$server_env/bin/python" "$@"
