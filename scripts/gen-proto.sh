#!/usr/bin/env bash
# Regenerate the protobuf-c code for proto/hypertrain.proto and install it into the
# CHypertrainProto C target (header into include/, source beside it). SwiftPM does not run
# protoc-c, so the output is committed; never edit it by hand.
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
PROTO_DIR="$ROOT/proto"
NAME=hypertrain
TARGET="$ROOT/Sources/CHypertrainProto"

CHECK=0
case "${1:-}" in
    --check) CHECK=1 ;;
    "") ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gen-proto: unknown argument '$1' (use --check or nothing)" >&2; exit 2 ;;
esac

if ! command -v protoc-c >/dev/null 2>&1; then
    echo "gen-proto: protoc-c not found (apt-get install protobuf-c-compiler)" >&2
    exit 2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Run from the package root so the paths protoc-c writes into comments are relative
# (and therefore the same on every machine).
(cd "$ROOT" && protoc-c --proto_path=proto --c_out="$tmp" "proto/$NAME.proto")

if [ "$CHECK" -eq 1 ]; then
    stale=0
    diff -u "$TARGET/include/$NAME.pb-c.h" "$tmp/$NAME.pb-c.h" || stale=1
    diff -u "$TARGET/$NAME.pb-c.c" "$tmp/$NAME.pb-c.c" || stale=1
    if [ "$stale" -ne 0 ]; then
        echo "gen-proto: generated code is stale; run scripts/gen-proto.sh and commit the result" >&2
        exit 1
    fi
    echo "gen-proto: generated code is up to date"
    exit 0
fi

mkdir -p "$TARGET/include"
install -m 0644 "$tmp/$NAME.pb-c.h" "$TARGET/include/$NAME.pb-c.h"
install -m 0644 "$tmp/$NAME.pb-c.c" "$TARGET/$NAME.pb-c.c"
echo "gen-proto: wrote Sources/CHypertrainProto/include/$NAME.pb-c.h and Sources/CHypertrainProto/$NAME.pb-c.c"
