#!/bin/bash
# Checks deploy/systemd/*.service:
#   1. required keys (User=, EnvironmentFile=, Restart=on-failure, KillSignal=SIGTERM,
#      TimeoutStopSec long enough, SuccessExitStatus=130, LoadCredential=, [Install]) with a small
#      parser (deploy/tests/unit_exec.py) — always;
#   2. `systemd-analyze verify` in a throw-away root tree (--root) when systemd-analyze exists;
#      any warning it prints counts as a failure (it exits 0 on unknown keys);
#   3. the units' command lines, expanded the way systemd expands them (EnvironmentFile,
#      ${VAR}/$VAR, %i, %d with LoadCredential=), actually run on loopback: coordinator,
#      worker@1, worker@2 and the validator with CURVE; SIGTERM to the coordinator (what
#      `systemctl stop/restart` sends) gives exit 130 ∈ SuccessExitStatus, the restarted
#      coordinator resumes, the run completes with exit 0 and the workers exit 0 (no restart
#      under Restart=on-failure). systemd itself is not PID 1 in this container, so this part
#      runs the processes directly.
# Ends with "N passed, M failed".
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T0=$SECONDS
UNITS=$DEPLOY_DIR/systemd
echo "systemd_test: deploy/systemd units"

# --- 1: required keys ---------------------------------------------------------------------------
for u in hypertrain-coordinator.service hypertrain-worker@.service hypertrain-validator.service; do
    if out=$(python3 "$DEPLOY_TESTS_DIR/unit_exec.py" check "$UNITS/$u" 2>&1); then t_pass "$u: required keys"
    else t_fail "$u: required keys"; echo "$out" | sed 's/^/    /'; fi
done
check "env example defines every \${VAR} the units use" bash -c '
    for v in $(grep -ho "\${[A-Z_]*}" "'"$UNITS"'"/*.service | sort -u | tr -d "\${}"); do
        grep -q "^$v=" "'"$UNITS"'/hypertrain.env.example" || { echo "missing $v"; exit 1; }
    done'
check "sysusers.d entry creates the hypertrain user" grep -qE '^u +hypertrain ' "$UNITS/hypertrain.sysusers.conf"

# --- 2: systemd-analyze verify -------------------------------------------------------------------
SA=$(command -v systemd-analyze || true)
if [[ -z "$SA" ]]; then
    t_skip "systemd-analyze not installed: only the parser checks above ran"
elif [[ ! -d /lib/systemd/system && ! -d /usr/lib/systemd/system ]]; then
    t_skip "systemd-analyze present but no system unit directory to verify against"
else
    R=$(mktemp -d /tmp/ht-systemd-root.XXXXXX)
    mkdir -p "$R/etc/systemd/system" "$R/usr/local/bin" "$R/etc/hypertrain/keys" "$R/bin" "$R/usr/lib/systemd"
    cp -r "$( [[ -d /usr/lib/systemd/system ]] && echo /usr/lib/systemd/system || echo /lib/systemd/system)" "$R/usr/lib/systemd/"
    cp /bin/mkdir "$R/bin/"
    cp "$UNITS"/*.service "$R/etc/systemd/system/"
    cp "$UNITS/hypertrain.env.example" "$R/etc/hypertrain/hypertrain.env"
    printf '#!/bin/sh\nexit 0\n' > "$R/usr/local/bin/hypertrain"; chmod 755 "$R/usr/local/bin/hypertrain"
    for u in hypertrain-coordinator.service hypertrain-worker@1.service hypertrain-validator.service; do
        out=$("$SA" --root="$R" verify "$u" 2>&1); rc=$?
        if [[ $rc == 0 && -z "$out" ]]; then t_pass "systemd-analyze verify $u (systemd $("$SA" --version | awk 'NR==1{print $2}'))"
        else t_fail "systemd-analyze verify $u (rc $rc)"; echo "$out" | sed 's/^/    /'; fi
    done
    rm -rf "$R"
fi

# --- 3: the expanded command lines, run for real on loopback ---------------------------------------
HT=$(find_hypertrain) || { t_fail "no hypertrain binary (swift build -c release, or set HT_BIN)"; t_summary; exit 1; }
DATA=$(find_data) || { t_fail "no MNIST in ${HYPERTRAIN_DATA:-data/mnist} (make data)"; t_summary; exit 1; }
W=$(mktemp -d /tmp/ht-systemd-run.XXXXXX)
PIDS=()
cleanup() {
    local p; for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if ((FAILED > 0)) || [[ "${HT_DEPLOY_KEEP:-0}" == 1 ]]; then echo "  (logs kept in $W)"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$W/etc/keys" "$W/state"
for n in coordinator worker1 worker2 validator; do
    extra=(); [[ $n != coordinator ]] && extra=(--authorize "$W/etc/keys/authorized_keys")
    "$HT" keygen --out "$W/etc/keys" --name "$n" "${extra[@]}" >/dev/null || t_fail "keygen $n"
done
PORT=$(free_port); MPORT=$(free_port)
# The example env file with loopback addresses and a small run; everything else unchanged.
sed -e "s|^HT_BIND=.*|HT_BIND=tcp://127.0.0.1:$PORT|" \
    -e "s|^HT_CONNECT=.*|HT_CONNECT=tcp://127.0.0.1:$PORT|" \
    -e "s|^HT_METRICS_PORT=.*|HT_METRICS_PORT=$MPORT|" \
    -e "s|^HT_RUN_DIR=.*|HT_RUN_DIR=$W/state/run|" \
    -e "s|^HT_DATA=.*|HT_DATA=$DATA|" \
    -e "s|^HT_CHECKPOINT_EVERY=.*|HT_CHECKPOINT_EVERY=50|" \
    -e "s|^HT_GIVE_UP_AFTER=.*|HT_GIVE_UP_AFTER=120|" \
    -e "s|^HT_EXPERIMENT_FLAGS=.*|HT_EXPERIMENT_FLAGS=\"--n-train 100 --batch-size 50 --valid-batch-size 200 --eval-every 0 --n-valid 1000 --n-test 1000 --steps 6000 --quiet\"|" \
    "$UNITS/hypertrain.env.example" > "$W/hypertrain.env"

unit_argv() {  # unit_argv UNIT INSTANCE CRED-DIR [--key K] → NUL-separated argv on stdout
    local unit=$1 inst=$2 cred=$3; shift 3
    local ia=(); [[ -n "$inst" ]] && ia=(--instance "$inst")
    python3 "$DEPLOY_TESTS_DIR/unit_exec.py" argv "$UNITS/$unit" "${ia[@]}" --env-file "$W/hypertrain.env" \
        --cred-dir "$cred" --map "/etc/hypertrain/keys=$W/etc/keys" --map "/usr/local/bin/hypertrain=$HT" "$@"
}
start_unit() {  # start_unit NAME UNIT INSTANCE: runs the expanded ExecStart in the background
    local name=$1 unit=$2 inst=$3 argv=()
    mapfile -d '' argv < <(unit_argv "$unit" "$inst" "$W/cred/$name")
    ((${#argv[@]} > 0)) || { t_fail "$name: could not expand ExecStart"; return 1; }
    printf '%q ' "${argv[@]}" > "$W/$name.cmd"
    (set -a; source "$W/hypertrain.env"; set +a; exec "${argv[@]}") >>"$W/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# ExecStartPre (mkdir -p the run dir), as systemd would run it first.
mapfile -d '' pre < <(unit_argv hypertrain-coordinator.service "" "$W/cred/coordinator" --key ExecStartPre)
if "${pre[@]}" && [[ -d "$W/state/run" ]]; then t_pass "ExecStartPre creates HT_RUN_DIR"; else t_fail "ExecStartPre creates HT_RUN_DIR"; fi

start_unit coordinator hypertrain-coordinator.service ""; COORD=$LAST_PID
start_unit worker1 'hypertrain-worker@.service' 1; W1=$LAST_PID
start_unit worker2 'hypertrain-worker@.service' 2; W2=$LAST_PID
start_unit validator hypertrain-validator.service ""; VAL=$LAST_PID
check "LoadCredential copies worker%i.key for instance 2 to %d/worker.key" cmp -s "$W/cred/worker2/worker.key" "$W/etc/keys/worker2.key"
check "coordinator command line has --resume" grep -q -- "--resume" "$W/coordinator.cmd"
check "coordinator reads its key from the credentials directory (%d)" grep -q -- "--server-key $W/cred/coordinator/coordinator.key" "$W/coordinator.cmd"

ckpt_progress() { [[ -s "$W/state/run/checkpoint.bin" ]] && grep -q "step" "$W/state/run/metrics.jsonl" 2>/dev/null; }
if wait_for 90 ckpt_progress; then t_pass "coordinator from the unit runs with CURVE and checkpoints"; else t_fail "coordinator from the unit runs and checkpoints"; tail -5 "$W"/*.log; fi
if wait_for 10 bash -c "curl --noproxy "*" -fsS http://127.0.0.1:$MPORT/healthz 2>/dev/null | grep -q ok"; then t_pass "GET /healthz on HT_METRICS_PORT"; else t_fail "GET /healthz on HT_METRICS_PORT"; fi

# wait_pid PID SECONDS: the exit status, or 124 after SIGKILL when it ran too long.
wait_pid() {
    local deadline=$((SECONDS + $2))
    while kill -0 "$1" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
    if kill -0 "$1" 2>/dev/null; then kill -KILL "$1" 2>/dev/null; wait "$1" 2>/dev/null; return 124; fi
    wait "$1"
}

# systemctl stop/restart: SIGTERM to the main process (KillSignal=SIGTERM, KillMode=mixed).
kill -TERM "$COORD"; wait_pid "$COORD" 60; rc=$?
if [[ $rc == 143 ]]; then t_pass "SIGTERM → coordinator checkpoints and exits 143 (SuccessExitStatus)"; else t_fail "SIGTERM → exit 143 (got $rc)"; fi
# What systemd does with the peers now: a peer still running keeps reconnecting; one that exited
# non-zero is restarted (Restart=on-failure); one that exited 0 stays stopped, so the operator
# restarts it (`systemctl restart 'hypertrain-worker@*' hypertrain-validator`, deploy/README.md).
sleep 3
declare -A PEER=([worker1]=$W1 [worker2]=$W2 [validator]=$VAL)
declare -A UNIT=([worker1]='hypertrain-worker@.service' [worker2]='hypertrain-worker@.service' [validator]=hypertrain-validator.service)
declare -A INST=([worker1]=1 [worker2]=2 [validator]="")
for name in worker1 worker2 validator; do
    pid=${PEER[$name]}
    wait_pid "$pid" 15; rc=$?
    if [[ $rc == 75 ]]; then t_pass "$name told the coordinator stopped: exit 75 (Restart=on-failure restarts it)"
    else t_fail "$name exit 75 after the coordinator's SIGTERM (got $rc)"; tail -3 "$W/$name.log"; fi
    if [[ $rc == 0 ]]; then
        echo "  note: $name exited 0 ($(grep -o 'shutdown ([^)]*)' "$W/$name.log" | tail -1)): Restart=on-failure leaves it stopped; restarting it as the operator would"
    else
        echo "  note: $name exited $rc: Restart=on-failure restarts it"
    fi
    start_unit "$name" "${UNIT[$name]}" "${INST[$name]}"; PEER[$name]=$LAST_PID
done
start_unit coordinator hypertrain-coordinator.service ""; COORD=$LAST_PID
wait_pid "$COORD" 240; rc=$?
if [[ $rc == 0 ]]; then t_pass "restarted coordinator completed with exit 0"; else t_fail "restarted coordinator completed with exit 0 (got $rc)"; tail -5 "$W/coordinator.log"; fi
check "restarted coordinator resumed from the checkpoint" grep -q "resumed from .* at step [1-9]" "$W/coordinator.log"
steps=$(json_field "$W/state/run/summary.json" steps)
if [[ "$steps" == 6000 ]]; then t_pass "summary.json steps = 6000"; else t_fail "summary.json steps = 6000 (got '$steps')"; fi
for name in worker1 worker2 validator; do
    wait_pid "${PEER[$name]}" 30; rc=$?
    if [[ $rc == 0 ]] && tail -1 "$W/$name.log" | grep -q "shutdown (run complete)"; then
        t_pass "$name exited 0 after 'run complete' (Restart=on-failure: stays stopped)"
    else t_fail "$name exited 0 after 'run complete' (got $rc)"; tail -3 "$W/$name.log"; fi
done

echo "systemd_test took $((SECONDS - T0)) s"
t_summary
