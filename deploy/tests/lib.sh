# Shared helpers of the deploy tests (sourced, not run).
# shellcheck shell=bash

DEPLOY_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEPLOY_DIR=$(dirname "$DEPLOY_TESTS_DIR")
REPO_DIR=$(dirname "$DEPLOY_DIR")

PASSED=0
FAILED=0
SKIPPED=0

t_pass() { PASSED=$((PASSED + 1)); echo "  ok   $*"; }
t_fail() { FAILED=$((FAILED + 1)); echo "  FAIL $*"; }
t_skip() { SKIPPED=$((SKIPPED + 1)); echo "  skip $*"; }
# check "description" command...: passes when the command succeeds.
check() { local d=$1; shift; if "$@" >/dev/null 2>&1; then t_pass "$d"; else t_fail "$d"; fi; }

# The closing line that `make test`/CI reads: "N passed, M failed".
t_summary() {
    if ((SKIPPED > 0)); then echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
    else echo "$PASSED passed, $FAILED failed"; fi
    ((FAILED == 0))
}

# The hypertrain binary: $HT_BIN, else the release build of `make build`, else the deploy build.
find_hypertrain() {
    local c
    for c in "${HT_BIN:-}" "$REPO_DIR/.build/release/hypertrain" "$REPO_DIR/.build-deploy/release/hypertrain"; do
        if [[ -n "$c" && -x "$c" ]]; then echo "$c"; return 0; fi
    done
    return 1
}

# MNIST: $HYPERTRAIN_DATA or data/mnist (make data).
find_data() {
    local d=${HYPERTRAIN_DATA:-$REPO_DIR/data/mnist}
    [[ -s "$d/train-images.idx3-ubyte" || -s "$d/train-images-idx3-ubyte.gz" || -s "$d/train-images.idx3-ubyte.gz" || -s "$d/train-images-idx3-ubyte" ]] || return 1
    echo "$d"
}

# A free TCP port on this machine (checked with ss; chosen at random to avoid concurrent tests).
free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$((20000 + RANDOM % 20000))
        if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return 0; fi
    done
    return 1
}

# JSON field of a file, e.g. json_field summary.json steps
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2" 2>/dev/null; }

# wait_for SECONDS command...: polls every 0.5 s until the command succeeds.
wait_for() {
    local limit=$1; shift
    local deadline=$((SECONDS + limit))
    while ((SECONDS < deadline)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    return 1
}

# Install Debian packages if a command is missing (root + apt only; HT_DEPLOY_NO_INSTALL=1 disables).
ensure_apt() {  # ensure_apt COMMAND PACKAGE...
    local cmd=$1; shift
    command -v "$cmd" >/dev/null 2>&1 && return 0
    [[ -x "$cmd" ]] && return 0
    [[ "${HT_DEPLOY_NO_INSTALL:-0}" == 1 || $(id -u) != 0 ]] && return 1
    command -v apt-get >/dev/null 2>&1 || return 1
    echo "  installing $* (for $cmd)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 || return 1
    fi
    command -v "$cmd" >/dev/null 2>&1 || [[ -x "$cmd" ]]
}
