#!/usr/bin/env bash
# Run the pipelines' test suite (unit tests, compilation, kfp.local end-to-end runs) in the cached
# pipelines environment: the trainer's requirements plus kfp, since kfp.local's subprocess runner
# executes components in this interpreter. Usage, from anywhere: pipelines/test.sh [pytest args, default: tests]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
venv=$("$root/hack/venv.sh" pipelines "$root/images/trainer/requirements.txt" "$here/requirements.txt")
export PYTHONPATH="$root/images/trainer/src:$here${PYTHONPATH:+:$PYTHONPATH}"
unset SLIPWAY_TRAINER_IMAGE
cd "$here"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning "${@:-tests}"
