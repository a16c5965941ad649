#!/usr/bin/env bash
# Cluster overhead (issue: cluster): `hypertrain run` single-process (--workers 0) against the
# local multi-process sync mode with one trainer and the validator (--workers 1), same
# configuration and seed, run back to back PAIRS times; prints each pair and the medians.
#
#   scripts/bench/cluster_overhead.sh [PAIRS=5] [STEPS=3000] [PRESET=fig5]
#   HT_BIN=.build/release/hypertrain (default)
#
# Run it on a quiet machine (`uptime` load < ~1.5): the cluster needs both cores at once, so
# other jobs hurt it more than the single process. Results are checked to be bit-identical.
set -euo pipefail
PAIRS=${1:-5}
STEPS=${2:-3000}
PRESET=${3:-fig5}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN=${HT_BIN:-$ROOT/.build/release/hypertrain}
[ -x "$BIN" ] || { echo "cluster_overhead: $BIN not built (swift build -c release)" >&2; exit 2; }
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

echo "# $(date -u +%FT%TZ)  preset $PRESET  steps $STEPS  load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-5s %10s %10s %10s %8s %8s\n' pair single cluster after_su ratio ratio_su
for i in $(seq 1 "$PAIRS"); do
    for w in 0 1; do
        "$BIN" run --preset "$PRESET" --steps "$STEPS" --eval-every 0 --workers $w --quiet \
            --summary "$OUT/s$w-$i.json" >/dev/null 2>"$OUT/err$w-$i" || { cat "$OUT/err$w-$i" >&2; exit 1; }
    done
    python3 - "$OUT/s0-$i.json" "$OUT/s1-$i.json" "$i" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
if a["lambda_hat"] != b["lambda_hat"] or a["valid_loss"] != b["valid_loss"]:
    sys.exit("cluster result differs from the single process")
s, c = a["steps_per_second"], b["steps_per_second"]
su = b.get("steps_per_second_after_startup") or c
print(f"{sys.argv[3]:<5} {s:10.1f} {c:10.1f} {su:10.1f} {c / s:7.1%} {su / s:7.1%}")
PY
done | tee "$OUT/table"
python3 - "$OUT/table" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
col = lambda k: statistics.median(float(r[k].rstrip('%')) for r in rows)
print(f"{'med':<5} {col(1):10.1f} {col(2):10.1f} {col(3):10.1f} {col(4):7.1f}% {col(5):7.1f}%")
PY
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
