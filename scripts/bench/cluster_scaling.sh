#!/usr/bin/env bash
# Cluster scaling (issue 13), in one command: for fig4, fig7, fig5 and deep, one real coordinator
# against K = 1 … 64 synthetic workers (sync, data-parallel, async), the components of the
# speed-up model and real `run --workers 0|1|2` runs for its check; then the study coordinator
# (GP-BO, 64 synthetic trial workers, 1,000 observations); then tables, model and PNG.
#
#   swift build -c release
#   scripts/bench/cluster_scaling.sh [OUT_DIR]        # default bench-out/cluster (≈ 15 min)
#
# Env: HT_BIN (default .build/release/hypertrain), HYPERTRAIN_DATA (MNIST), PRESETS, WORKERS,
# SECONDS_PER_POINT, STUDY_TRIAL_STEPS (16000: the fig7 reproduction's trials), PYTHON, PNG.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-bench-out/cluster}
HT=${HT_BIN:-.build/release/hypertrain}
DATA=${HYPERTRAIN_DATA:-data/mnist}
PRESETS=${PRESETS:-fig4 fig7 fig5 deep}
WORKERS=${WORKERS:-1,2,4,8,16,32,64}
SECS=${SECONDS_PER_POINT:-3}
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
PNG=${PNG:-$OUT/cluster_scaling.png}
mkdir -p "$OUT"
rm -f "$OUT"/study_summary.csv
for p in $PRESETS; do
  echo "== $p $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  "$HT" bench cluster --preset "$p" --workers "$WORKERS" --seconds "$SECS" --data "$DATA" --out "$OUT"
done
echo "== study $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$HT" bench study --latency-only 100,300,1000 --workers 64 | tee "$OUT/study_latency_refit.txt"
"$HT" bench study --latency-only 100,300,1000 --workers 64 --no-refit | tee "$OUT/study_latency_norefit.txt"
"$HT" bench study --workers 64 --observations 1000 --trial-steps "${STUDY_TRIAL_STEPS:-16000}" --data "$DATA" --name fig7-64 --out "$OUT"
"$PY" scripts/bench/cluster_scaling.py "$OUT" --png "$PNG"
