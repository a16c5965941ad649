#!/usr/bin/env bash
# CPU time per step, all processes and threads together (perf stat task-clock), of the single
# process and of the local cluster: measured at two run lengths and differenced, so start-up
# (loading MNIST in every process) cancels out. Ceiling of the cluster's speed-up on C cores:
# C × (single CPU/step) / (cluster CPU/step).
#
#   scripts/bench/cpu_per_step.sh [PRESET=deep] [SHORT=200] [LONG=600] [LAYOUT="--workers 2"]
set -euo pipefail
PRESET=${1:-deep}; SHORT=${2:-200}; LONG=${3:-600}; LAYOUT=${4:---workers 2}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN=${HT_BIN:-$ROOT/.build/release/hypertrain}
command -v perf >/dev/null || { echo "cpu_per_step: needs perf (linux-tools)" >&2; exit 2; }
cpu() {  # steps, layout args...
    local steps=$1; shift
    perf stat -x, -e task-clock "$BIN" run --preset "$PRESET" --steps "$steps" --eval-every 0 --quiet "$@" 2>&1 >/dev/null \
        | awk -F, '/task-clock/ {print $1}'
}
# shellcheck disable=SC2086
s1=$(cpu "$SHORT" --workers 0); s2=$(cpu "$LONG" --workers 0); c1=$(cpu "$SHORT" $LAYOUT); c2=$(cpu "$LONG" $LAYOUT)
python3 - "$s1" "$s2" "$c1" "$c2" "$SHORT" "$LONG" "$PRESET" "$LAYOUT" "$(nproc)" <<'PY'
import sys
s1, s2, c1, c2 = map(float, sys.argv[1:5]); short, long_ = int(sys.argv[5]), int(sys.argv[6])
single = (s2 - s1) / (long_ - short); cluster = (c2 - c1) / (long_ - short); cores = int(sys.argv[9])
print(f"{sys.argv[7]} ({sys.argv[8]}): CPU per step single {single:.3f} ms, cluster {cluster:.3f} ms "
      f"(+{cluster / single - 1:.0%}); ceiling on {cores} cores at full use: {cores * single / cluster:.2f}× the single process")
PY
