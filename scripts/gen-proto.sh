#!/usr/bin/env bash
# Regenerate the protobuf-c code and install it into the C targets (headers into include/,
# sources beside it). SwiftPM does not run protoc-c, so the output is committed; never edit it
# by hand.
#   proto/hypertrain.proto      -> Sources/CHypertrainProto   (the cluster's wire format)
#   proto/tensorboard/*.proto   -> Sources/CTensorBoardProto  (a subset of TensorBoard's own
#                                  event/summary/histogram protos, for event files)
#
#   scripts/gen-proto.sh           regenerate and install
#   scripts/gen-proto.sh --check   regenerate into a temp dir and compare with the committed
#                                  files; exit 1 (with a diff) when they are stale
#
# Needs protoc-c (Debian: protobuf-c-compiler). The committed files were produced by
# protoc-c 1.4.1 / libprotoc 3.21.12; another version may produce cosmetic differences,
# which --check reports as stale.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

CHECK=0
case "${1:-}" in
    --check) CHECK=1 ;;
    "") ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gen-proto: unknown argument '$1' (use --check or nothing)" >&2; exit 2 ;;
esac

if ! command -v protoc-c >/dev/null 2>&1; then
    echo "gen-proto: protoc-c not found (apt-get install protobuf-c-compiler)" >&2
    exit 2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Generated file (relative to the protoc-c output dir) -> committed location.
declare -a PAIRS=(
    "hypertrain.pb-c.h:Sources/CHypertrainProto/include/hypertrain.pb-c.h"
    "hypertrain.pb-c.c:Sources/CHypertrainProto/hypertrain.pb-c.c"
)
TB_PROTOS=(histogram summary event)
for name in "${TB_PROTOS[@]}"; do
    PAIRS+=("tensorboard/$name.pb-c.h:Sources/CTensorBoardProto/include/tensorboard/$name.pb-c.h")
    PAIRS+=("tensorboard/$name.pb-c.c:Sources/CTensorBoardProto/tensorboard/$name.pb-c.c")
done

# Run from the package root so the paths protoc-c writes into comments are relative
# (and therefore the same on every machine).
(cd "$ROOT" && protoc-c --proto_path=proto --c_out="$tmp" proto/hypertrain.proto \
    $(for name in "${TB_PROTOS[@]}"; do echo "proto/tensorboard/$name.proto"; done))

if [ "$CHECK" -eq 1 ]; then
    stale=0
    for pair in "${PAIRS[@]}"; do
        diff -u "$ROOT/${pair#*:}" "$tmp/${pair%%:*}" || stale=1
    done
    if [ "$stale" -ne 0 ]; then
        echo "gen-proto: generated code is stale; run scripts/gen-proto.sh and commit the result" >&2
        exit 1
    fi
    echo "gen-proto: generated code is up to date"
    exit 0
fi

for pair in "${PAIRS[@]}"; do
    mkdir -p "$(dirname "$ROOT/${pair#*:}")"
    install -m 0644 "$tmp/${pair%%:*}" "$ROOT/${pair#*:}"
    echo "gen-proto: wrote ${pair#*:}"
done
