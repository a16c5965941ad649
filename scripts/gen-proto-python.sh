#!/usr/bin/env bash
# Regenerate the Python protobuf code of the worker SDK from proto/hypertrain.proto:
#   proto/hypertrain.proto -> python/hypertrain_sdk/hypertrain_pb2.py   (committed; never edit)
#
#   scripts/gen-proto-python.sh           regenerate and install
#   scripts/gen-proto-python.sh --check   regenerate into a temp dir and compare; exit 1 when stale
#
# Uses grpcio-tools' bundled protoc (`python -m grpc_tools.protoc`; no system protoc needed) from
# $PYTHON (default: .venv/bin/python, else python3), installing the pinned grpcio-tools of
# scripts/python-requirements.txt into that interpreter's environment when it is missing. The
# committed file was made by that version; another version may differ cosmetically, which
# --check reports as stale. The import line is rewritten to a package-relative one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHECK=0
case "${1:-}" in
    --check) CHECK=1 ;;
    "") ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gen-proto-python: unknown argument '$1' (use --check or nothing)" >&2; exit 2 ;;
esac
PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
want=$(grep -E '^grpcio-tools' "$ROOT/scripts/python-requirements.txt" | head -1)
if ! "$PY" -c 'import grpc_tools.protoc' 2>/dev/null; then
    echo "gen-proto-python: installing ${want:-grpcio-tools} into $("$PY" -c 'import sys; print(sys.prefix)')" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check "${want:-grpcio-tools}" >&2
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$ROOT" && "$PY" -m grpc_tools.protoc --proto_path=proto --python_out="$tmp" proto/hypertrain.proto)
OUT="python/hypertrain_sdk/hypertrain_pb2.py"
if [[ "$CHECK" -eq 1 ]]; then
    if ! diff -u "$ROOT/$OUT" "$tmp/hypertrain_pb2.py"; then
        echo "gen-proto-python: $OUT is stale; run scripts/gen-proto-python.sh and commit the result" >&2
        exit 1
    fi
    echo "gen-proto-python: generated code is up to date"
    exit 0
fi
install -m 0644 "$tmp/hypertrain_pb2.py" "$ROOT/$OUT"
echo "gen-proto-python: wrote $OUT"
