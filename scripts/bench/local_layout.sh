#!/usr/bin/env bash
# Local-mode layouts against the single process (issue 13): for each preset, `hypertrain run`
# single-process, then the local cluster with 1 and 2 training workers (the validator a thread
# of the coordinator, the default) and with 2 trainers and the validator as a process (the old
# layout), with 1 and 2 trainers as threads of the coordinator (`--trainers thread`, what
# `--workers auto` runs), then the pipelined schedule (`--pipelined on`) single-process and with
# 2 trainers (processes, threads),
# ROUNDS times interleaved; every cluster result is checked bit-identical to the single process
# of its schedule. Prints steps/s (whole run, and after the workers' start-up) and medians, each
# against the lockstep single process (the default run) and against its own schedule's.
#
#   scripts/bench/local_layout.sh [ROUNDS=3] [PRESETS="fig5:4000 deep:400"]
#   HT_BIN=.build/release/hypertrain (default)
#
# Run it on a quiet machine: `uptime` load well under 1 before starting.
set -euo pipefail
ROUNDS=${1:-3}
PRESETS=${2:-"fig5:4000 deep:400"}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN=${HT_BIN:-$ROOT/.build/release/hypertrain}
[ -x "$BIN" ] || { echo "local_layout: $BIN not built (swift build -c release)" >&2; exit 2; }
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
LAYOUTS=("single:--workers 0" "w1:--workers 1" "w2:--workers 2" "w2-process:--workers 2 --validator process"
         "w1-threads:--workers 1 --trainers thread" "w2-threads:--workers 2 --trainers thread"
         "single-pipelined:--workers 0 --pipelined on" "w2-pipelined:--workers 2 --pipelined on"
         "w2-threads-pipelined:--workers 2 --trainers thread --pipelined on")
echo "# $(date -u +%FT%TZ)  $(nproc) cores  load: $(cut -d' ' -f1-3 /proc/loadavg)"
for spec in $PRESETS; do
    preset=${spec%%:*}; steps=${spec##*:}
    for r in $(seq 1 "$ROUNDS"); do
        for l in "${LAYOUTS[@]}"; do
            name=${l%%:*}; args=${l#*:}
            # shellcheck disable=SC2086
            "$BIN" run --preset "$preset" --steps "$steps" --eval-every 0 --quiet $args \
                --summary "$OUT/$preset-$name-$r.json" >/dev/null 2>"$OUT/err" || { cat "$OUT/err" >&2; exit 1; }
        done
    done
    python3 - "$OUT" "$preset" "$ROUNDS" "$steps" <<'PY'
import json, statistics, sys
out, preset, rounds, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
names = ["single", "w1", "w2", "w2-process", "w1-threads", "w2-threads", "single-pipelined", "w2-pipelined", "w2-threads-pipelined"]
runs = {n: [json.load(open(f"{out}/{preset}-{n}-{r}.json")) for r in range(1, rounds + 1)] for n in names}
def base(n): return "single-pipelined" if n.endswith("pipelined") else "single"
for n in names:
    for a, b in zip(runs[base(n)], runs[n]):
        if a["lambda_hat"] != b["lambda_hat"] or a["valid_loss"] != b["valid_loss"]:
            sys.exit(f"{preset} {n}: result differs from the single process ({base(n)})")
single = statistics.median(r["steps_per_second"] for r in runs["single"])
print(f"{preset} ({steps} steps, {rounds} rounds, medians; every cluster run bit-identical to the single process of its schedule)")
print(f"  {'layout':<17} {'steps/s':>9} {'after start-up':>15} {'× single':>9} {'× (after)':>10} {'× own single':>13}")
for n in names:
    s = statistics.median(r["steps_per_second"] for r in runs[n])
    a = statistics.median(r.get("steps_per_second_after_startup") or r["steps_per_second"] for r in runs[n])
    own = statistics.median(r["steps_per_second"] for r in runs[base(n)])
    print(f"  {n:<17} {s:9.1f} {a:15.1f} {s / single:9.2f} {a / single:10.2f} {s / own:13.2f}")
PY
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
