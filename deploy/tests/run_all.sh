#!/bin/bash
# Runs every deploy test and prints one total line "N passed, M failed[, K skipped]".
#   deploy/tests/run_all.sh                 all six
#   deploy/tests/run_all.sh k8s systemd     only these (k8s, systemd, netns, slurm, slurm-multinode, chaos)
# Needs a release build (HT_BIN, else .build/release/hypertrain, else .build-deploy/...) and
# MNIST ($HYPERTRAIN_DATA, else data/mnist). Exit status 1 when any test failed.
set -uo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
declare -A SCRIPT=([k8s]=k8s_validate.sh [systemd]=systemd_test.sh [netns]=netns_test.sh [slurm]=slurm_test.sh [slurm-multinode]=slurm_multinode_test.sh [chaos]=chaos_test.sh)
ORDER=(k8s systemd netns slurm slurm-multinode chaos)
(($# > 0)) && ORDER=("$@")
P=0; F=0; S=0; T0=$SECONDS
LOG=$(mktemp /tmp/ht-deploy-tests.XXXXXX); trap 'rm -f "$LOG"' EXIT
for name in "${ORDER[@]}"; do
    s=${SCRIPT[$name]:-}
    [[ -n "$s" ]] || { echo "unknown test '$name' (k8s, systemd, netns, slurm, slurm-multinode, chaos)"; F=$((F + 1)); continue; }
    t=$SECONDS
    bash "$DIR/$s" 2>&1 | tee "$LOG"
    out=$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$LOG" | tail -n 1)
    if [[ "$out" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
        P=$((P + BASH_REMATCH[1])); F=$((F + BASH_REMATCH[2])); S=$((S + ${BASH_REMATCH[4]:-0}))
    else
        echo "$s: no summary line (crashed?)"; F=$((F + 1))
    fi
    echo "[$s: $((SECONDS - t)) s]"
done
echo "deploy tests took $((SECONDS - T0)) s"
if ((S > 0)); then echo "$P passed, $F failed, $S skipped"; else echo "$P passed, $F failed"; fi
((F == 0))
