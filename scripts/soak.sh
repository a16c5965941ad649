#!/usr/bin/env bash
# Soak benchmark (not a test): one coordinator, N standalone trainers and a validator over
# ipc:// for M minutes with churn — every CHURN seconds a random trainer is killed (kill -9 or
# SIGTERM, alternately) and a new one started — the resident memory of every process sampled
# every 5 s, and at the end every result the coordinator received accounted for:
# results received = gradients applied + hypergradients applied + results refused (by reason).
#
#   HT_BIN=.build/release/hypertrain scripts/soak.sh [--minutes 10] [--workers 16] [--churn 20] [--out runs/soak]
#
# Prints a table and writes DIR/soak.json; exits 1 when the accounting does not add up or the
# coordinator's RSS grew by more than 20 % between the second minute and the end.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=10 WORKERS=16 CHURN=20 OUT=runs/soak SEED=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --minutes) MINUTES=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        --churn) CHURN=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
BIN=${HT_BIN:-.build/release/hypertrain}
DATA=${HYPERTRAIN_DATA:-data/mnist}
[[ -x $BIN ]] || { echo "soak.sh: no binary at $BIN (swift build -c release, or set HT_BIN)" >&2; exit 2; }
mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/rss.tsv "$OUT"/summary.json
SOCK=/tmp/hypertrain-soak-$$.sock
EP=ipc://$SOCK
RANDOM=$SEED

# A run long enough to outlast the soak; the coordinator is stopped with SIGTERM at the end.
"$BIN" coordinator --bind "$EP" --preset fig4 --steps 100000000 --eval-every 0 --quiet \
    --summary "$OUT/summary.json" --heartbeat-ms 500 > "$OUT/coordinator.log" 2>&1 &
COORD=$!
declare -A ROLE
ROLE[$COORD]=coordinator
start_peer() {  # role name; sets LAST (not in a subshell: ROLE must see the pid)
    "$BIN" "$1" --connect "$EP" --data "$DATA" --give-up-after 60 > "$OUT/$2.log" 2>&1 &
    LAST=$!
    disown "$LAST"      # killed on purpose: no "Killed" notices from bash
    ROLE[$LAST]=$1
}
TRAINERS=()
for i in $(seq 1 "$WORKERS"); do start_peer worker "trainer-$i"; TRAINERS+=("$LAST"); done
start_peer validator validator
cleanup() { kill -9 "${!ROLE[@]}" 2>/dev/null || true; rm -f "$SOCK"; }
trap cleanup EXIT

echo "soak: coordinator $COORD, $WORKERS trainers, a validator; $MINUTES min, churn every $CHURN s (seed $SEED)"
START=$(date +%s)
END=$((START + MINUTES * 60))
NEXT_CHURN=$((START + CHURN))
KILLS=0 TERMS=0 STARTED=$WORKERS
printf 't\tpid\trole\trss_kb\n' > "$OUT/rss.tsv"
while (( $(date +%s) < END )); do
    now=$(date +%s)
    for pid in "${!ROLE[@]}"; do
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        [[ -n $rss ]] && printf '%s\t%s\t%s\t%s\n' $((now - START)) "$pid" "${ROLE[$pid]}" "$rss" >> "$OUT/rss.tsv"
    done
    if (( now >= NEXT_CHURN )); then
        i=$((RANDOM % ${#TRAINERS[@]}))
        victim=${TRAINERS[$i]}
        if (( (KILLS + TERMS) % 2 == 0 )); then kill -9 "$victim" 2>/dev/null || true; KILLS=$((KILLS + 1))
        else kill -TERM "$victim" 2>/dev/null || true; TERMS=$((TERMS + 1)); fi
        unset "ROLE[$victim]"
        STARTED=$((STARTED + 1))
        start_peer worker "trainer-r$STARTED"
        TRAINERS[$i]=$LAST
        NEXT_CHURN=$((now + CHURN))
    fi
    kill -0 "$COORD" 2>/dev/null || { echo "soak: the coordinator died" >&2; tail -20 "$OUT/coordinator.log" >&2; exit 1; }
    sleep 5
done
kill -TERM "$COORD"
for _ in $(seq 1 60); do kill -0 "$COORD" 2>/dev/null || break; sleep 1; done
wait "$COORD" || true
sleep 2

python3 - "$OUT" "$MINUTES" "$WORKERS" "$KILLS" "$TERMS" <<'EOF'
import csv, json, sys
out, minutes, workers, kills, terms = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = json.load(open(f"{out}/summary.json"))
rows = list(csv.DictReader(open(f"{out}/rss.tsv"), delimiter="\t"))
coord = [(int(r["t"]), int(r["rss_kb"])) for r in rows if r["role"] == "coordinator"]
late = [kb for t, kb in coord if t >= 120] or [kb for _, kb in coord]
peers = {}
for r in rows:
    if r["role"] != "coordinator":
        peers.setdefault(r["pid"], []).append(int(r["rss_kb"]))
growth = (late[-1] - late[0]) / late[0] if late else 0.0
refused = s.get("results_refused", {})
received = s.get("results_received", 0)
accounted = s["gradients_applied"] + s["hypergradients_applied"] + sum(refused.values())
report = {
    "minutes": minutes, "trainers": workers, "killed_9": kills, "terminated": terms,
    "steps": s["steps"], "results_received": received, "gradients_applied": s["gradients_applied"],
    "hypergradients_applied": s["hypergradients_applied"], "results_refused": refused,
    "messages_rejected": s.get("gradients_rejected", {}), "tasks_reissued": s.get("tasks_reissued"),
    "peers_lost": s.get("peers_lost"), "registrations": s.get("registrations"),
    "coordinator_rss_kb": {"first": coord[0][1], "at_2_min": late[0], "last": coord[-1][1], "max": max(kb for _, kb in coord)},
    "coordinator_rss_growth_after_2_min": round(growth, 4),
    "peer_rss_kb_max": max(max(v) for v in peers.values()), "peer_rss_kb_median_last": sorted(v[-1] for v in peers.values())[len(peers) // 2],
    "accounting_ok": received == accounted,
}
json.dump(report, open(f"{out}/soak.json", "w"), indent=2)
for k, v in report.items():
    print(f"{k:38} {v}")
if received != accounted:
    print(f"soak: {received} results received but {accounted} accounted for", file=sys.stderr)
    sys.exit(1)
if growth > 0.2:
    print(f"soak: coordinator RSS grew {growth:.0%} after the second minute", file=sys.stderr)
    sys.exit(1)
EOF
