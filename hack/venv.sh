#!/usr/bin/env bash
# Create (once) and print the path of a Python virtual environment for one deliverable.
#
#   hack/venv.sh NAME REQUIREMENTS_FILE...
#
# Each image has its own environment (see shared ARCHITECTURE.md: torch never enters the
# operator's, seldon-core never shares one with kfp). Environments live in a cache outside the
# clone, keyed by the requirements' content and the interpreter version, so a large install such as
# torch happens once per machine and is reused by every later run, clone and CI job.
set -euo pipefail

name=$1; shift
python=${SLIPWAY_PYTHON:-python3.11}
cache=${SLIPWAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slipway}
key=$( { "$python" --version; cat "$@"; } | sha256sum | cut -c1-12)
venv=$cache/venvs/$name-$key

if [ ! -f "$venv/.complete" ]; then
  echo "==> creating the '$name' environment in $venv (first run only)" >&2
  rm -rf "$venv"
  mkdir -p "$cache/venvs"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  for req in "$@"; do
    "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off -r "$req" >&2
  done
  touch "$venv/.complete"
fi
echo "$venv"
