#!/usr/bin/env bash
# Run the model server's tests in its own environment (created once by hack/venv.sh, then reused).
#
#   images/model-server/test.sh [pytest args...]
#
# Works from any directory; lints with ruff, then runs pytest against real server processes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=$("$repo/hack/venv.sh" model-server "$here/requirements.txt" "$here/requirements-test.txt")

cd "$here"
"$venv/bin/ruff" check src tests
"$venv/bin/ruff" format --check src tests
exec "$venv/bin/python" -m pytest -c "$here/pytest.ini" "$@"
