#!/bin/bash
# Chaos test (issue 14, "nothing lost, nothing hung"): faults injected into real hypertrain
# processes on this machine, and what must survive them. Seeded (CHAOS_SEED, default 14), so a
# failure reproduces with the same moments. About 1–3 minutes with a release build.
#   1. kill -9 of the coordinator at a random step (sync mode), restarted with --resume:
#      the final λ̂ equals an uninterrupted run's bit for bit
#   2. kill -9 of a trainer and of the validator mid-run, SIGSTOP of a trainer past the
#      heartbeat timeout then SIGCONT: the run completes
#   3. the study database write-locked by another process (BEGIN EXCLUSIVE, 5 s): the study
#      completes with every trial stored, the lock logged once
#   4. a full disk under the checkpoint (small tmpfs; root only, skipped otherwise): the run
#      exits non-zero naming the file, the failure is logged once
#   5. a corrupt checkpoint: --resume falls back to .prev; both corrupt: a clear error
#   6. SIGTERM → 143 (peers told, exit 75), SIGINT → 130; no ipc socket file left behind
#   7. security defaults: a group/world-readable secret key is refused (chmod 600), --insecure
#      on 0.0.0.0 warns, an empty authorized-keys file warns, a bad Z85 character is named,
#      Prometheus binds the coordinator's host
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
T0=$SECONDS
SEED=${CHAOS_SEED:-14}
RANDOM=$SEED
INJECTED=0
SURVIVED=0
fault() { INJECTED=$((INJECTED + 1)); }
survived() { SURVIVED=$((SURVIVED + 1)); t_pass "$@"; }

echo "== chaos (seed $SEED)"
HT=$(find_hypertrain) || { t_skip "no hypertrain binary (make build, or HT_BIN)"; t_summary; exit; }
DATA=$(find_data) || { t_skip "no MNIST (make data, or HYPERTRAIN_DATA)"; t_summary; exit; }
W=$(mktemp -d /tmp/ht-chaos.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do { kill -KILL "$p" && wait "$p"; } 2>/dev/null; done
    mountpoint -q "$W/tmpfs" 2>/dev/null && umount -l "$W/tmpfs"
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FLAGS=(--n-train 100 --n-valid 1000 --n-test 1000 --batch-size 50 --valid-batch-size 200 --eval-every 0 --seed 7 --data "$DATA")
STEPS=300
start() {  # start NAME ARGS...: background hypertrain, log in $W/NAME.log; pid in LAST_PID
    local name=$1; shift
    "$HT" "$@" >"$W/$name.log" 2>&1 &
    LAST_PID=$!; PIDS+=("$LAST_PID")
}
wait_pid() {  # wait_pid PID SECONDS: exit status, 124 (and SIGKILL) when it ran too long
    local deadline=$((SECONDS + $2))
    while kill -0 "$1" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$1" 2>/dev/null; then kill -KILL "$1" 2>/dev/null; wait "$1" 2>/dev/null; return 124; fi
    wait "$1"
}
last_step() { tail -n 1 "$1" 2>/dev/null | python3 -c 'import json,sys; print(json.loads(sys.stdin.read() or "{}").get("step", 0))' 2>/dev/null || echo 0; }
at_step() { (( $(last_step "$1") >= $2 )); }
lambda_bits() { python3 -c 'import json,struct,sys; print(" ".join("%08x" % struct.unpack("<I", struct.pack("<f", x))[0] for x in json.load(open(sys.argv[1]))["lambda_hat"]))' "$1" 2>/dev/null; }
peers() {  # peers ENDPOINT PREFIX: two trainers and a validator, pids in P_W1 P_W2 P_V
    start "$2-w1" worker --connect "$1" --insecure --data "$DATA"; P_W1=$LAST_PID
    start "$2-w2" worker --connect "$1" --insecure --data "$DATA"; P_W2=$LAST_PID
    start "$2-v" validator --connect "$1" --insecure --data "$DATA"; P_V=$LAST_PID
}

# --- reference: the uninterrupted run --------------------------------------------------------
"$HT" run "${FLAGS[@]}" --steps $STEPS --summary "$W/ref.json" --quiet >"$W/ref.log" 2>&1
REF=$(lambda_bits "$W/ref.json")
[[ -n "$REF" ]] || { t_fail "reference run"; tail -5 "$W/ref.log"; }

# --- 1. kill -9 of the coordinator at a random step, --resume ------------------------------
fault
KILL_AT=$((30 + RANDOM % 240))
E="ipc://$W/c1.sock"
COORD=(coordinator --bind "$E" --insecure "${FLAGS[@]}" --steps $STEPS --checkpoint "$W/c1.bin" --checkpoint-every 10
       --metrics "$W/c1.jsonl" --log-every 1 --heartbeat-ms 200)
start c1a "${COORD[@]}"; C=$LAST_PID
peers "$E" c1
if wait_for 60 at_step "$W/c1.jsonl" $KILL_AT; then
    { kill -KILL "$C"; wait "$C"; } 2>/dev/null
    start c1b "${COORD[@]}" --resume --summary "$W/c1.json"; C=$LAST_PID
    wait_pid "$C" 90; rc=$?
    got=$(lambda_bits "$W/c1.json")
    if [[ $rc == 0 && -n "$got" && "$got" == "$REF" ]]; then
        survived "coordinator kill -9 at step ≥ $KILL_AT, --resume: final λ̂ [$got] = the uninterrupted run's"
    else t_fail "coordinator kill -9 at step $KILL_AT + --resume (exit $rc, λ̂ [$got] vs [$REF])"; tail -3 "$W/c1b.log"; fi
    for p in $P_W1 $P_W2 $P_V; do wait_pid "$p" 15 >/dev/null; done
else t_fail "coordinator reached step $KILL_AT"; tail -3 "$W/c1a.log"; fi

# --- 2. peers killed and stopped mid-run ------------------------------------------------------
E="ipc://$W/c2.sock"
start c2 coordinator --bind "$E" --insecure "${FLAGS[@]}" --steps 1500 --metrics "$W/c2.jsonl" --log-every 1 \
    --heartbeat-ms 200 --summary "$W/c2.json"; C=$LAST_PID
peers "$E" c2
T1=$((50 + RANDOM % 100)); T2=$((T1 + 100 + RANDOM % 100)); T3=$((T2 + 100 + RANDOM % 100))
if wait_for 60 at_step "$W/c2.jsonl" $T1; then
    fault; kill -KILL "$P_W1"; wait "$P_W1" 2>/dev/null                # a trainer dies
    start c2-w3 worker --connect "$E" --insecure --data "$DATA"
    wait_for 60 at_step "$W/c2.jsonl" $T2
    fault; kill -KILL "$P_V"; wait "$P_V" 2>/dev/null                  # the validator dies
    sleep 1.5
    start c2-v2 validator --connect "$E" --insecure --data "$DATA"
    wait_for 60 at_step "$W/c2.jsonl" $T3
    fault; kill -STOP "$P_W2"; sleep 2.5; kill -CONT "$P_W2"           # a trainer frozen past 5 × 200 ms
fi
wait_pid "$C" 120; rc=$?
steps=$(json_field "$W/c2.json" steps)
if [[ $rc == 0 && "$steps" == 1500 ]]; then
    SURVIVED=$((SURVIVED + 3))
    t_pass "trainer kill -9 at step $T1, validator kill -9 at $T2, trainer SIGSTOP 2.5 s at $T3: the run completed (1500 steps)"
else t_fail "run with killed/stopped peers completed (exit $rc, steps '$steps')"; tail -5 "$W/c2.log"; fi

# --- 3. the study database locked by another process -----------------------------------------
# Trials of 30,000 steps (≈ 1.5 s each): the study outlasts the moment the lock is taken, so
# results arrive while it is held (at 2,000 steps an unloaded machine finished first).
fault
E="ipc://$W/s.sock"
start study coordinator --study-mode --bind "$E" --insecure --heartbeat-ms 200 "${FLAGS[@]}" \
    --trials 12 --trial-steps 30000 --box=-6:2 --study "$W/study.sqlite"; C=$LAST_PID
start s-w1 worker --connect "$E" --insecure --data "$DATA"
start s-w2 worker --connect "$E" --insecure --data "$DATA"
trials_where() {
    python3 - "$W/study.sqlite" "$1" <<'PY' 2>/dev/null || echo 0
import sqlite3, sys
# Read-only: opening must not create the file before the coordinator does.
print(sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30).execute(f"select count(*) from trials where status {sys.argv[2]}").fetchone()[0])
PY
}
done_trials() { trials_where "= 'done'"; }
# The lock is taken as soon as the first trial is handed out, so results arrive while it is held.
some_trial_issued() { (( $(trials_where "!= 'pending'") >= 1 )); }
if wait_for 60 some_trial_issued; then
    python3 - "$W/study.sqlite" <<'PY'
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
c.execute("BEGIN EXCLUSIVE"); time.sleep(5); c.execute("COMMIT")
PY
fi
wait_pid "$C" 120; rc=$?
n=$(done_trials); locks=$(grep -c "locked by another process" "$W/study.log")
during=$(sed -n '/locked by another process/,/writable again/p' "$W/study.log" | grep -c "done: valid")
if [[ $rc == 0 && "$n" == 12 && "$locks" == 1 && "$during" -ge 1 ]] && grep -q "writable again" "$W/study.log"; then
    survived "study database locked 5 s (BEGIN EXCLUSIVE): $during result(s) arrived while locked; all 12 trials stored, the lock logged once"
else t_fail "locked study database (exit $rc, $n/12 done, lock logged $locks times, $during result(s) during the lock)"; tail -5 "$W/study.log"; fi

# --- 4. a full disk under the checkpoint -------------------------------------------------------
if [[ $(id -u) == 0 ]] && mkdir -p "$W/tmpfs" && mount -t tmpfs -o size=256k tmpfs "$W/tmpfs" 2>/dev/null; then
    fault
    head -c 131072 /dev/zero >"$W/tmpfs/filler"
    start full run --workers 1 "${FLAGS[@]}" --steps 200 --checkpoint "$W/tmpfs/c.bin" --checkpoint-every 10 --quiet; P=$LAST_PID
    wait_pid "$P" 90; rc=$?
    n=$(grep -c "checkpoint at step .* failed" "$W/full.log")
    if [[ $rc != 0 && $rc != 124 && "$n" == 1 ]] && grep -q "final checkpoint $W/tmpfs/c.bin could not be written" "$W/full.log"; then
        survived "disk full: checkpoint failure logged once ($(grep -o 'failed [0-9]* times' "$W/full.log")), exit $rc naming the file"
    else t_fail "disk full (exit $rc, logged $n times)"; tail -5 "$W/full.log"; fi
    umount -l "$W/tmpfs"
else
    t_skip "disk full: mounting a small tmpfs needs root"
fi

# --- 5. a corrupt checkpoint --------------------------------------------------------------------
fault
"$HT" run --workers 1 "${FLAGS[@]}" --steps 100 --checkpoint "$W/c5.bin" --checkpoint-every 20 --quiet >"$W/c5a.log" 2>&1
corrupt() { truncate -s 1000 "$1"; }   # a torn write: the header promises more than is there
corrupt "$W/c5.bin"
"$HT" run --workers 1 "${FLAGS[@]}" --steps 100 --checkpoint "$W/c5.bin" --resume >"$W/c5b.log" 2>&1; rc=$?
if [[ $rc == 0 ]] && grep -q "resuming from the previous one" "$W/c5b.log"; then
    survived "corrupt checkpoint: --resume fell back to .prev and finished"
else t_fail "corrupt checkpoint → .prev (exit $rc)"; tail -3 "$W/c5b.log"; fi
corrupt "$W/c5.bin"; corrupt "$W/c5.bin.prev"
"$HT" run --workers 1 "${FLAGS[@]}" --steps 100 --checkpoint "$W/c5.bin" --resume --quiet >"$W/c5c.log" 2>&1; rc=$?
if [[ $rc != 0 ]] && grep -qi "checkpoint" "$W/c5c.log"; then t_pass "both checkpoints corrupt: exit $rc with a clear error ($(grep -m1 -o 'Error: .\{0,80\}' "$W/c5c.log"))"
else t_fail "both checkpoints corrupt: a clear error (exit $rc)"; tail -3 "$W/c5c.log"; fi

# --- 6. signals: SIGTERM → 143 (peers exit 75), SIGINT → 130, no socket file left ------------
for sig in TERM INT; do
    fault
    E="$W/sig-$sig.sock"
    start "sig-$sig" coordinator --bind "ipc://$E" --insecure "${FLAGS[@]}" --steps 1000000 --metrics "$W/sig-$sig.jsonl" \
        --log-every 1 --heartbeat-ms 200 --checkpoint "$W/sig-$sig.bin" --checkpoint-every 0; C=$LAST_PID
    peers "ipc://$E" "sig-$sig"
    wait_for 60 at_step "$W/sig-$sig.jsonl" 20
    kill -$sig "$C"; wait_pid "$C" 30; rc=$?
    want=$([[ $sig == TERM ]] && echo 143 || echo 130)
    prc=(); for p in $P_W1 $P_W2 $P_V; do wait_pid "$p" 15; prc+=($?); done
    if [[ $rc == "$want" && ! -e "$E" && -s "$W/sig-$sig.bin" && "${prc[*]}" == "75 75 75" ]]; then
        survived "SIG$sig: coordinator checkpointed and exited $rc, peers exited 75 (told it stopped), socket file removed"
    else t_fail "SIG$sig: exit $rc (want $want), peers ${prc[*]} (want 75), socket $([[ -e $E ]] && echo left || echo removed)"; tail -3 "$W/sig-$sig.log"; fi
done

# --- 7. security defaults -------------------------------------------------------------------------
"$HT" keygen --out "$W/keys" --name coord >/dev/null
"$HT" keygen --out "$W/keys" --name w1 --authorize "$W/keys/ak" >/dev/null
fault; chmod 644 "$W/keys/coord.key"
out=$(timeout 30 "$HT" coordinator --bind tcp://127.0.0.1:0 --server-key "$W/keys/coord.key" --authorized-keys "$W/keys/ak" "${FLAGS[@]}" --steps 1 2>&1); rc=$?
if [[ $rc != 0 ]] && grep -q "chmod 600 $W/keys/coord.key" <<<"$out"; then survived "world-readable server key refused: says chmod 600"
else t_fail "world-readable server key refused (exit $rc)"; echo "$out" | tail -2; fi
chmod 600 "$W/keys/coord.key"
fault; : >"$W/keys/empty"
out=$(timeout 30 "$HT" coordinator --bind tcp://127.0.0.1:0 --server-key "$W/keys/coord.key" --authorized-keys "$W/keys/empty" "${FLAGS[@]}" --steps 0 2>&1)
if grep -q "holds no key" <<<"$out"; then survived "empty authorized-keys file: warned"; else t_fail "empty authorized-keys warning"; fi
fault
out=$(timeout 30 "$HT" coordinator --bind tcp://0.0.0.0:0 --insecure "${FLAGS[@]}" --steps 0 2>&1)
if grep -q "warning: --insecure on tcp://0.0.0.0" <<<"$out"; then survived "--insecure on 0.0.0.0: warned"; else t_fail "--insecure on 0.0.0.0 warning"; fi
fault; echo "public=abcdefghij~lmnopqrstuvwxyzABCDEFGHIJKLMN" >"$W/keys/bad.pub"
out=$(timeout 30 "$HT" worker --connect tcp://127.0.0.1:9 --key "$W/keys/w1.key" --server-public-key "$W/keys/bad.pub" 2>&1)
if grep -q "character '~' at position 11" <<<"$out"; then survived "bad Z85 key: the character and its position are named"; else t_fail "bad Z85 message: $out"; fi
fault
out=$(timeout 30 "$HT" coordinator --bind tcp://127.0.0.1:0 --insecure --metrics-port 0 "${FLAGS[@]}" --steps 0 2>&1)
if grep -q "Prometheus metrics on http://127.0.0.1:" <<<"$out"; then survived "Prometheus binds 127.0.0.1 like the coordinator"; else t_fail "metrics bind: $(grep -i prometheus <<<"$out")"; fi

echo "faults injected: $INJECTED, survived: $SURVIVED (seed $SEED)"
echo "chaos_test took $((SECONDS - T0)) s"
t_summary
