#!/usr/bin/env bash
# Wall time of a random-search study with --parallel 1 against --parallel 2 (alternating, REPEATS
# times each), with the machine's load average before every study. Writes OUT/parallel.csv.
#   scripts/baselines/parallel.sh [REPEATS=2] [TRIALS=32] [STEPS=2000]
# Env: HT_BIN (default .build-base/release/hypertrain), HYPERTRAIN_DATA, OUT (runs/baselines/parallel).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPEATS=${1:-2}; TRIALS=${2:-32}; STEPS=${3:-2000}
BIN=${HT_BIN:-.build-base/release/hypertrain}
DATA=${HYPERTRAIN_DATA:-data/mnist}
OUT=${OUT:-runs/baselines/parallel}
mkdir -p "$OUT"
CSV="$OUT/parallel.csv"
echo "repeat,parallel,trials,trial_steps,wall_seconds,best_valid_loss,load1_before,load5_before,nproc" > "$CSV"
for r in $(seq 1 "$REPEATS"); do
  for p in 1 2; do
    stem="$OUT/p$p-r$r"
    rm -f "$stem.sqlite" "$stem.jsonl" "$stem.json"
    read -r l1 l5 _ < /proc/loadavg
    "$BIN" search --layers 784-10 --scope per-class --n-train 10000 --batch-size 100 --strategy random \
      --trials "$TRIALS" --trial-steps "$STEPS" --trial-lr 1e-3 --box=-12:0 --parallel "$p" --seed "$r" \
      --study "$stem.sqlite" --metrics "$stem.jsonl" --summary "$stem.json" --data "$DATA" 2>/dev/null >/dev/null
    python3 - "$stem.json" "$r" "$p" "$TRIALS" "$STEPS" "$l1" "$l5" "$(nproc)" >> "$CSV" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
r, p, t, st, l1, l5, n = sys.argv[2:]
print(f"{r},{p},{t},{st},{s['wall_seconds']:.2f},{s['best_valid_loss']:.5f},{l1},{l5},{n}")
EOF
    tail -1 "$CSV"
  done
done
