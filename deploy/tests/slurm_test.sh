#!/bin/bash
# Runs deploy/slurm/hypertrain.sbatch on a throw-away one-node Slurm cluster on this machine.
#
# munged, slurmctld and slurmd are started without systemd (as root, each by its PID, with all
# state in a temporary directory and free random ports) and stopped in a trap. Scenarios:
#   1. a small run (coordinator + 2 training workers + validator, CURVE on, --overcommit):
#      job COMPLETED, summary has the configured steps, keys/checkpoint/metrics in one folder;
#   2. the time-limit path: SIGUSR1 to the batch shell (what --signal=B:USR1@180 sends) makes
#      the coordinator checkpoint, the script requeues the job, the job resumes and completes;
#   3. an operator's `scontrol requeue` mid-run: the requeued job resumes from the checkpoint
#      with the same keys and completes.
# Ends with "N passed, M failed". Needs root (skips otherwise); installs slurm-wlm and munge
# with apt when they are missing (HT_DEPLOY_NO_INSTALL=1 to skip instead).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T0=$SECONDS
echo "slurm_test: deploy/slurm/hypertrain.sbatch on a local one-node Slurm"

if [[ $(id -u) != 0 ]]; then
    echo "  skip: needs root (starts munged, slurmctld and slurmd)"; t_skip "not root"; t_summary; exit 0
fi
if ! ensure_apt /usr/sbin/slurmctld slurm-wlm munge || ! ensure_apt /usr/sbin/munged munge; then
    echo "  skip: slurm-wlm/munge not installed and could not be installed"; t_skip "no slurm"; t_summary; exit 0
fi
HT=$(find_hypertrain) || { t_fail "no hypertrain binary (swift build -c release, or set HT_BIN)"; t_summary; exit 1; }
DATA=$(find_data) || { t_fail "no MNIST in ${HYPERTRAIN_DATA:-data/mnist} (make data)"; t_summary; exit 1; }
id munge >/dev/null 2>&1 || { t_fail "no munge user (apt-get install munge)"; t_summary; exit 1; }

S=$(mktemp -d /tmp/ht-slurm-test.XXXXXX)
chmod 755 "$S"
PIDS=()          # daemons we started, stopped in reverse order
KEEP=${HT_DEPLOY_KEEP:-0}

stop_pid() {  # stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL
    local p=$1 i
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null
    for i in $(seq 1 20); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.5; done
    kill -KILL "$p" 2>/dev/null
}
cleanup() {
    set +e
    if [[ -n "${SLURM_CONF:-}" && -x /usr/bin/squeue ]] && kill -0 "${PIDS[1]:-0}" 2>/dev/null; then
        local jobs; jobs=$(squeue -h -o %i 2>/dev/null)
        if [[ -n "$jobs" ]]; then
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null
            wait_for 30 bash -c '[[ -z "$(squeue -h -o %i 2>/dev/null)" ]]'
        fi
    fi
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
    if [[ "$KEEP" == 1 || $FAILED -gt 0 ]]; then
        echo "  (state, logs and job output kept in $S)"
    else
        rm -rf "$S"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- munge: its own key, socket, pid and log under $S ------------------------------------------
mkdir -p "$S/munge" "$S/state" "$S/spool" "$S/log" "$S/submit"
chown munge:munge "$S/munge"; chmod 755 "$S/munge"   # the socket dir must be searchable by all
dd if=/dev/urandom of="$S/munge/munge.key" bs=1024 count=1 status=none
chown munge:munge "$S/munge/munge.key"; chmod 600 "$S/munge/munge.key"
setsid setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F \
    --key-file="$S/munge/munge.key" --socket="$S/munge/munge.socket.2" --pid-file="$S/munge/munged.pid" \
    --log-file="$S/munge/munged.log" --seed-file="$S/munge/munged.seed" </dev/null >/dev/null 2>&1 &
PIDS+=($!)
if wait_for 10 test -S "$S/munge/munge.socket.2"; then t_pass "munged up"; else
    t_fail "munged up"; cat "$S/munge/munged.log" 2>/dev/null | tail -5; t_summary; exit 1; fi

# --- slurm.conf (NOTES-env.md), free ports so a concurrent test cannot collide -------------------
HOST=$(hostname -s)
CTLD_PORT=$(free_port); SLURMD_PORT=$(free_port)
cat > "$S/slurm.conf" <<EOF
ClusterName=httest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge/munge.socket.2,cred_expire=10
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SchedulerType=sched/backfill
MinJobAge=600
KillWait=30
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=2 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=20000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$S/slurm.conf
setsid /usr/sbin/slurmctld -D -i -f "$S/slurm.conf" </dev/null >"$S/log/slurmctld.out" 2>&1 &
PIDS+=($!)
setsid /usr/sbin/slurmd -D -f "$S/slurm.conf" </dev/null >"$S/log/slurmd.out" 2>&1 &
PIDS+=($!)
node_idle() { sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed)'; }
if wait_for 30 node_idle; then t_pass "slurmctld + slurmd up, node idle ($((SECONDS - T0)) s)"; else
    t_fail "slurm node idle"; sinfo 2>&1 | tail -3; tail -5 "$S/log/slurmctld.log" "$S/log/slurmd.log"; t_summary; exit 1; fi

# --- helpers -----------------------------------------------------------------------------------
job_field() { scontrol show job "$1" -o 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
job_done() {  # job_done JOBID → true once the job left the queue for good
    case "$(job_field "$1" JobState)" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED) return 0;; esac
    return 1
}
wait_job() {  # wait_job JOBID SECONDS
    local deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        echo "$(date +%T) job $1: $(job_field "$1" JobState) $(job_field "$1" Reason) restarts=$(job_field "$1" Restarts)" >> "$S/job-states.log"
        job_done "$1" && return 0
        sleep 1
    done
    return 1
}
submit() {  # submit OUTDIR NTASKS sbatch-args... -- experiment flags...
    local out=$1 ntasks=$2; shift 2
    local sargs=()
    while [[ $# -gt 0 && "$1" != "--" ]]; do sargs+=("$1"); shift; done
    shift
    mkdir -p "$out"
    (cd "$S/submit" && HT_BIN=$HT HT_DATA=$DATA HT_OUT=$out HT_PORT=$(free_port) HT_METRICS_PORT=$(free_port) \
        HT_GIVE_UP_AFTER=60 \
        sbatch --parsable --nodes=1 --ntasks="$ntasks" --overcommit --time=15 \
               --output="$out/job.out" "${sargs[@]}" "$DEPLOY_DIR/slurm/hypertrain.sbatch" "$@")
}
show_logs() {
    local out=$1
    echo "  --- $out/job.out"; tail -15 "$out/job.out" 2>/dev/null | sed 's/^/  | /'
    echo "  --- $out/coordinator.log"; tail -8 "$out/coordinator.log" 2>/dev/null | sed 's/^/  | /'
    echo "  --- $out/workers.log"; tail -8 "$out/workers.log" 2>/dev/null | sed 's/^/  | /'
}
SMALL=(--n-train 100 --batch-size 50 --valid-batch-size 200 --eval-every 0 --n-valid 1000 --n-test 1000)

ckpt_progress() { [[ -s "$1/checkpoint.bin" ]] && [[ $(wc -l < "$1/metrics.jsonl" 2>/dev/null || echo 0) -ge 2 ]]; }
resumed_mid_run() {  # the coordinator log says "resumed from … at step N" with 0 < N < total
    local n; n=$(sed -n 's/.*resumed from .* at step \([0-9]*\).*/\1/p' "$1/coordinator.log" | head -1)
    [[ -n "$n" ]] && ((n > 0 && n < $2))
}

# --- 1: a small run to completion -------------------------------------------------------------
scenario1() {
    echo "scenario 1: 300 steps, 2 training workers + validator, CURVE, --overcommit"
    local t=$SECONDS out=$S/out1 j
    j=$(submit "$out" 4 -- "${SMALL[@]}" --steps 300)
    if [[ -n "$j" ]]; then t_pass "sbatch accepted job $j"; else t_fail "sbatch accepted the job"; return; fi
    if wait_job "$j" 240; then t_pass "job $j finished ($((SECONDS - t)) s)"; else t_fail "job $j finished within 240 s"; fi
    local state exitc steps
    state=$(job_field "$j" JobState); exitc=$(job_field "$j" ExitCode)
    if [[ "$state" == COMPLETED && "$exitc" == 0:0 ]]; then t_pass "JobState=COMPLETED ExitCode=0:0"
    else t_fail "JobState=COMPLETED ExitCode=0:0 (got $state $exitc)"; show_logs "$out"; fi
    steps=$(json_field "$out/summary.json" steps)
    if [[ "$steps" == 300 ]]; then t_pass "summary.json steps = 300"; else t_fail "summary.json steps = 300 (got '${steps}')"; fi
    check "metrics.jsonl has lines" test -s "$out/metrics.jsonl"
    check "checkpoint.bin written" test -s "$out/checkpoint.bin"
    check "keys generated (coordinator, validator, worker1, worker2, authorized_keys)" \
        test -s "$out/keys/coordinator.key" -a -s "$out/keys/validator.key" -a -s "$out/keys/worker1.key" -a -s "$out/keys/worker2.key" -a -s "$out/keys/authorized_keys"
    check "secret keys are mode 0600" bash -c "[[ \$(stat -c %a '$out/keys/coordinator.key') == 600 && \$(stat -c %a '$out/keys/worker1.key') == 600 ]]"
    check "authorized_keys lists 3 clients" bash -c "[[ \$(grep -c . '$out/keys/authorized_keys') == 3 ]]"
    check "coordinator listened with CURVE" grep -q "(CURVE" "$out/coordinator.log"
    check "coordinator started fresh (no --resume)" bash -c "! grep -q 'resuming from' '$out/job.out'"
    check "2 trainers + validator got Shutdown (run complete)" \
        bash -c "[[ \$(grep -c 'shutdown (run complete)' '$out/workers.log') == 3 ]]"
    check "workers step ended by itself" bash -c "! grep -q 'still running' '$out/job.out'"
}

# --- 2: time limit (SIGUSR1 to the batch shell) → checkpoint, self-requeue, resume -----------------
LONG=(--steps 8000)
scenario2() {
    echo "scenario 2: SIGUSR1 (the time-limit warning) mid-run → checkpoint, requeue by the script, resume"
    local t=$SECONDS out=$S/out2 j pub state restarts steps
    j=$(submit "$out" 3 -- "${SMALL[@]}" "${LONG[@]}" --checkpoint-every 50)
    if [[ -n "$j" ]]; then t_pass "sbatch accepted job $j"; else t_fail "sbatch accepted the job"; return; fi
    if wait_for 120 ckpt_progress "$out"; then t_pass "job $j running, first checkpoint written"
    else t_fail "job $j wrote a checkpoint within 120 s"; show_logs "$out"; return; fi
    pub=$(cat "$out/keys/coordinator.pub" 2>/dev/null)
    scancel --batch --signal=USR1 "$j"
    if wait_for 60 grep -q "requeueing job" "$out/job.out"; then t_pass "batch script checkpointed and requeued the job"
    else t_fail "batch script checkpointed and requeued the job"; show_logs "$out"; return; fi
    if wait_job "$j" 300; then t_pass "requeued job $j finished ($((SECONDS - t)) s)"; else t_fail "requeued job $j finished within 300 s"; fi
    state=$(job_field "$j" JobState); restarts=$(job_field "$j" Restarts)
    if [[ "$state" == COMPLETED ]]; then t_pass "JobState=COMPLETED after requeue"; else t_fail "JobState=COMPLETED after requeue (got $state)"; show_logs "$out"; fi
    if [[ "${restarts:-0}" -ge 1 ]]; then t_pass "Restarts=$restarts"; else t_fail "Restarts ≥ 1 (got '${restarts}')"; fi
    check "coordinator checkpointed on SIGTERM and exited 143" grep -q "coordinator exited with 143" "$out/job.out"
    check "requeued run passed --resume" grep -q "resuming from" "$out/job.out"
    check "coordinator resumed mid-run (0 < step < 8000)" resumed_mid_run "$out" 8000
    check "CURVE keys reused on requeue" bash -c "[[ -n '$pub' && \"\$(cat '$out/keys/coordinator.pub')\" == '$pub' ]]"
    steps=$(json_field "$out/summary.json" steps)
    if [[ "$steps" == 8000 ]]; then t_pass "summary.json steps = 8000"; else t_fail "summary.json steps = 8000 (got '${steps}')"; fi
}

# --- 3: scontrol requeue (operator / preemption) mid-run → resume ----------------------------------
scenario3() {
    echo "scenario 3: scontrol requeue mid-run → resume"
    local t=$SECONDS out=$S/out3 j state steps
    j=$(submit "$out" 3 -- "${SMALL[@]}" "${LONG[@]}" --checkpoint-every 50)
    if [[ -n "$j" ]]; then t_pass "sbatch accepted job $j"; else t_fail "sbatch accepted the job"; return; fi
    if wait_for 120 ckpt_progress "$out"; then t_pass "job $j running, first checkpoint written"
    else t_fail "job $j wrote a checkpoint within 120 s"; show_logs "$out"; return; fi
    if scontrol requeue "$j" >/dev/null 2>&1; then t_pass "scontrol requeue $j"; else t_fail "scontrol requeue $j"; return; fi
    if wait_job "$j" 300; then t_pass "requeued job $j finished ($((SECONDS - t)) s)"; else t_fail "requeued job $j finished within 300 s"; fi
    state=$(job_field "$j" JobState)
    if [[ "$state" == COMPLETED ]]; then t_pass "JobState=COMPLETED after requeue"; else t_fail "JobState=COMPLETED after requeue (got $state)"; show_logs "$out"; fi
    check "coordinator resumed mid-run (0 < step < 8000)" resumed_mid_run "$out" 8000
    steps=$(json_field "$out/summary.json" steps)
    if [[ "$steps" == 8000 ]]; then t_pass "summary.json steps = 8000"; else t_fail "summary.json steps = 8000 (got '${steps}')"; fi
}

scenario1
scenario2
scenario3

echo "slurm_test took $((SECONDS - T0)) s"
t_summary
