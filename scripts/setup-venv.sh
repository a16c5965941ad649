#!/usr/bin/env bash
# Creates .venv with the Python tools listed in scripts/python-requirements.txt (plotting,
# TensorBoard reader, reference optimizers). Safe to repeat: does nothing when the installed
# set already matches the requirements file.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
REQ=scripts/python-requirements.txt
STAMP="$VENV/.requirements.sha256"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  exit 0
fi
PY=${PYTHON:-python3}
if ! "$PY" -m venv --help >/dev/null 2>&1; then
  echo "setup-venv: $PY has no venv module; installing python3-venv" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv
fi
echo "setup-venv: creating $VENV from $REQ" >&2
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
echo "$want" > "$STAMP"
