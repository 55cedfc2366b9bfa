#!/usr/bin/env bash
# Run the trainer's test suite in its cached environment (created on first use by hack/venv.sh).
# Usage, from anywhere: images/trainer/test.sh [pytest args, default: tests]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=$("$root/hack/venv.sh" trainer "$here/requirements.txt")
export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}"
cd "$here"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning "${@:-tests}"
