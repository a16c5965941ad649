#!/usr/bin/env bash
# Creates .venv with the Python tools listed in scripts/python-requirements.txt (plotting,
# TensorBoard reader, reference optimizers). Safe to repeat: does nothing when the installed
# set already matches the requirements file.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
REQ=scripts/python-requirements.txt
STAMP="$VENV/.requirements.sha256"
# The stamp covers the requirements and the SDK's sources (python/), so either change reinstalls.
want=$( { sha256sum "$REQ"; find python -type f \( -name '*.py' -o -name '*.toml' \) ! -path '*/examples/*' | sort | xargs sha256sum; } | sha256sum | cut -d' ' -f1)
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
# PyTorch's CPU build first (PyPI's default torch pulls gigabytes of CUDA libraries): a local
# wheel (PIP_FIND_LINKS, e.g. /opt/wheels) when there is one, else PyTorch's CPU index.
if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  wheel=""
  for d in ${PIP_FIND_LINKS:-}; do
    w=$(ls "$d"/torch-*cpu*.whl 2>/dev/null | sort -V | tail -1 || true)
    [[ -n "$w" ]] && wheel=$w
  done
  if [[ -n "$wheel" ]]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel"
  else
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check torch \
      --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
  fi
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
# The worker SDK itself, as a user installs it.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ./python
echo "$want" > "$STAMP"
