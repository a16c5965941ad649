#!/bin/bash
# deploy/slurm/hypertrain.sbatch on a three-node Slurm cluster made of network namespaces.
#
#   ctl 10.200.0.10   slurmctld (and the sbatch/squeue clients)
#   n1  10.200.0.1    slurmd -N n1     } joined by veth pairs to a bridge in a fifth namespace;
#   n2  10.200.0.2    slurmd -N n2     } the 10.200.0.0/24 addresses exist only inside these
#   n3  10.200.0.3    slurmd -N n3     } namespaces and are used only from inside them
#
# munged runs in the machine's namespace (its socket is a file, reachable from every namespace).
# The daemons enter their namespace with `nsenter --net` rather than `ip netns exec`, which would
# remount /sys and hide the cgroup file systems slurmd needs. Checks that the coordinator runs on
# the first node, the workers and the validator on the other two, that they connect to the first
# node's NodeAddr, that the run completes, and that an `scontrol requeue` resumes across nodes.
# Skips when not root or without `ip netns`/nsenter; everything is torn down in a trap.
# Ends with "N passed, M failed".
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T0=$SECONDS
echo "slurm_multinode_test: deploy/slurm/hypertrain.sbatch on 3 Slurm nodes (network namespaces)"

if [[ $(id -u) != 0 ]]; then echo "  skip: needs root"; t_skip "not root"; t_summary; exit 0; fi
if ! command -v ip >/dev/null 2>&1 || ! command -v nsenter >/dev/null 2>&1; then
    echo "  skip: needs ip (iproute2) and nsenter (util-linux)"; t_skip "no ip/nsenter"; t_summary; exit 0
fi
PROBE=htprobe$$
if ! ip netns add "$PROBE" 2>/dev/null; then echo "  skip: 'ip netns add' does not work here"; t_skip "no ip netns"; t_summary; exit 0; fi
ip netns del "$PROBE"
if ! ensure_apt /usr/sbin/slurmctld slurm-wlm munge || ! ensure_apt /usr/sbin/munged munge; then
    echo "  skip: slurm-wlm/munge not installed and could not be installed"; t_skip "no slurm"; t_summary; exit 0
fi
HT=$(find_hypertrain) || { t_fail "no hypertrain binary (swift build -c release, or set HT_BIN)"; t_summary; exit 1; }
DATA=$(find_data) || { t_fail "no MNIST in ${HYPERTRAIN_DATA:-data/mnist} (make data)"; t_summary; exit 1; }

TAG=hts$$
NAMES=(ctl n1 n2 n3)
declare -A ADDR=([ctl]=10.200.0.10 [n1]=10.200.0.1 [n2]=10.200.0.2 [n3]=10.200.0.3)
S=$(mktemp -d /tmp/ht-slurm-mn.XXXXXX); chmod 755 "$S"
PIDS=()

netns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }
in_ns() { local n=$1; shift; nsenter --net="/run/netns/$TAG$n" "$@"; }
sl() { in_ns ctl env SLURM_CONF="$S/slurm.conf" "$@"; }   # Slurm clients, from the controller's namespace
stop_pid() {
    local p=$1 i
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null
    for i in $(seq 1 20); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.5; done
    kill -KILL "$p" 2>/dev/null
}
cleanup() {
    set +e
    if netns_exists "${TAG}ctl" && [[ -f "$S/slurm.conf" ]]; then
        local jobs; jobs=$(sl squeue -h -o %i 2>/dev/null)
        if [[ -n "$jobs" ]]; then
            # shellcheck disable=SC2086
            sl scancel $jobs 2>/dev/null
            wait_for 30 bash -c "[[ -z \"\$(nsenter --net=/run/netns/${TAG}ctl env SLURM_CONF=$S/slurm.conf squeue -h -o %i 2>/dev/null)\" ]]"
        fi
    fi
    local i ns p
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
    for ns in "${NAMES[@]}" br; do
        netns_exists "$TAG$ns" || continue
        for p in $(ip netns pids "$TAG$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        sleep 0.2
        ip netns del "$TAG$ns" 2>/dev/null
    done
    ip netns list 2>/dev/null | grep -q "$TAG" && echo "  WARNING: namespaces left: $(ip netns list | grep "$TAG")"
    if ((FAILED > 0)) || [[ "${HT_DEPLOY_KEEP:-0}" == 1 ]]; then echo "  (state and logs kept in $S)"; else rm -rf "$S"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- network -----------------------------------------------------------------------------------
setup_net() {
    local i=0 n
    ip netns add "${TAG}br" && ip -n "${TAG}br" link add br0 type bridge && ip -n "${TAG}br" link set br0 up || return 1
    for n in "${NAMES[@]}"; do
        ip netns add "$TAG$n" || return 1
        ip -n "${TAG}br" link add "v$i" type veth peer name eth0 netns "$TAG$n" || return 1
        ip -n "${TAG}br" link set "v$i" master br0 && ip -n "${TAG}br" link set "v$i" up || return 1
        ip -n "$TAG$n" addr add "${ADDR[$n]}/24" dev eth0 && ip -n "$TAG$n" link set eth0 up && ip -n "$TAG$n" link set lo up || return 1
        i=$((i + 1))
    done
}
if setup_net; then t_pass "namespaces ctl, n1, n2, n3 on a bridge"; else t_fail "namespaces set up"; t_summary; exit 1; fi

# --- munge + slurm ------------------------------------------------------------------------------
mkdir -p "$S/munge" "$S/state" "$S/spool/n1" "$S/spool/n2" "$S/spool/n3" "$S/log" "$S/submit"
chown munge:munge "$S/munge"; chmod 755 "$S/munge"
dd if=/dev/urandom of="$S/munge/munge.key" bs=1024 count=1 status=none
chown munge:munge "$S/munge/munge.key"; chmod 600 "$S/munge/munge.key"
setsid setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F \
    --key-file="$S/munge/munge.key" --socket="$S/munge/munge.socket.2" --pid-file="$S/munge/munged.pid" \
    --log-file="$S/munge/munged.log" --seed-file="$S/munge/munged.seed" </dev/null >/dev/null 2>&1 &
PIDS+=($!)
wait_for 10 test -S "$S/munge/munge.socket.2" || { t_fail "munged up"; t_summary; exit 1; }
HOST=$(hostname -s)
{
    echo "ClusterName=htmn"
    echo "SlurmctldHost=$HOST(${ADDR[ctl]})"
    cat <<EOF
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge/munge.socket.2,cred_expire=10
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool/%n
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd-%n.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
KillWait=30
EOF
    for n in n1 n2 n3; do
        echo "NodeName=$n NodeAddr=${ADDR[$n]} CPUs=2 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=4000 State=UNKNOWN"
    done
    echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
} > "$S/slurm.conf"
setsid nsenter --net="/run/netns/${TAG}ctl" /usr/sbin/slurmctld -D -i -f "$S/slurm.conf" </dev/null >"$S/log/slurmctld.out" 2>&1 &
PIDS+=($!)
for n in n1 n2 n3; do
    setsid nsenter --net="/run/netns/$TAG$n" /usr/sbin/slurmd -D -N "$n" -f "$S/slurm.conf" </dev/null >"$S/log/slurmd-$n.out" 2>&1 &
    PIDS+=($!)
done
all_idle() { [[ $(sl sinfo -h -N -o '%N %T' 2>/dev/null | grep -cE ' (idle|mixed)$') == 3 ]]; }
if wait_for 40 all_idle; then t_pass "slurmctld + 3 slurmd up, nodes n1 n2 n3 idle ($((SECONDS - T0)) s)"
else t_fail "3 nodes idle"; sl sinfo -N 2>&1 | sed 's/^/    /'; t_summary; exit 1; fi

job_field() { sl scontrol show job "$1" -o 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
wait_job() {
    local deadline=$((SECONDS + $2)) st
    while ((SECONDS < deadline)); do
        st=$(job_field "$1" JobState)
        case "$st" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED) return 0;; esac
        sleep 1
    done
    return 1
}
submit() {  # submit OUTDIR experiment flags...
    local out=$1; shift
    mkdir -p "$out"
    (cd "$S/submit" && sl env HT_BIN="$HT" HT_DATA="$DATA" HT_OUT="$out" HT_GIVE_UP_AFTER=60 "${EXTRA_ENV[@]}" \
        sbatch --parsable --nodes=3 --ntasks=5 --time=15 --output="$out/job.out" "$DEPLOY_DIR/slurm/hypertrain.sbatch" "$@")
}
EXTRA_ENV=()
SMALL=(--n-train 100 --batch-size 50 --valid-batch-size 200 --eval-every 0 --n-valid 1000 --n-test 1000)

# --- 1: placement and a complete run -------------------------------------------------------------
echo "scenario 1: --nodes=3 --ntasks=5: coordinator on n1, 3 workers + validator on n2/n3"
t=$SECONDS
OUT=$S/out1
J=$(submit "$OUT" "${SMALL[@]}" --steps 3000 --checkpoint-every 100)
[[ -n "$J" ]] && t_pass "sbatch accepted job $J" || { t_fail "sbatch accepted the job"; t_summary; exit 1; }
running() { [[ $(grep -c 'registered \(trainer\|validator\)' "$OUT/coordinator.log" 2>/dev/null) -ge 4 ]]; }
if wait_for 90 running; then t_pass "3 trainers + validator registered"; else t_fail "3 trainers + validator registered"; tail -n 5 "$OUT/job.out" "$OUT/coordinator.log"; fi
steps=$(sl squeue -h -s -j "$J" -o '%j %N' 2>/dev/null)
if grep -qx "ht-coordinator n1" <<<"$steps"; then t_pass "step ht-coordinator runs on n1"; else t_fail "step ht-coordinator on n1 (got: $(echo $steps))"; fi
if grep -qx "ht-workers n\[2-3\]" <<<"$steps"; then t_pass "step ht-workers runs on n[2-3]"; else t_fail "step ht-workers on n[2-3] (got: $(echo $steps))"; fi
# Each registered peer's PID, and the network namespace it lives in.
ns_of_registered() {
    local pid out=""
    for pid in $(sed -n 's/.*registered \(trainer\|validator\)-[0-9]* (host [^,]*, pid \([0-9]*\)).*/\2/p' "$OUT/coordinator.log"); do
        out+="$(ip netns identify "$pid" 2>/dev/null | sed "s/^$TAG//") "
    done
    echo "$out"
}
peers_ok() {  # every registered peer in n2 or n3, and both used
    local p seen=""
    for p in "$@"; do [[ "$p" == n2 || "$p" == n3 ]] || return 1; seen+=" $p"; done
    [[ "$seen" == *n2* && "$seen" == *n3* ]]
}
peers=$(ns_of_registered)
# shellcheck disable=SC2086
if [[ $(grep -c 'registered' "$OUT/coordinator.log") == $(wc -w <<<"$peers") ]] && peers_ok $peers; then
    t_pass "workers and validator live in n2/n3 ($peers)"
else t_fail "workers and validator live in n2/n3 (got: '$peers')"; fi
check "workers connect to n1's NodeAddr (tcp://10.200.0.1:5555)" grep -q "coordinator on n1 at tcp://10.200.0.1:5555" "$OUT/job.out"
if wait_job "$J" 240; then t_pass "job $J finished ($((SECONDS - t)) s)"; else t_fail "job $J finished within 240 s"; fi
st=$(job_field "$J" JobState); ec=$(job_field "$J" ExitCode)
if [[ "$st" == COMPLETED && "$ec" == 0:0 ]]; then t_pass "JobState=COMPLETED ExitCode=0:0"; else t_fail "COMPLETED 0:0 (got $st $ec)"; tail -n 8 "$OUT/job.out"; fi
n=$(json_field "$OUT/summary.json" steps)
[[ "$n" == 3000 ]] && t_pass "summary.json steps = 3000" || t_fail "summary.json steps = 3000 (got '$n')"

# --- 2: scontrol requeue across nodes --------------------------------------------------------------
echo "scenario 2: HT_PORT=auto; scontrol requeue mid-run on 3 nodes → resume"
t=$SECONDS
OUT=$S/out2
EXTRA_ENV=(HT_PORT=auto HT_METRICS_PORT=auto)
J=$(submit "$OUT" "${SMALL[@]}" --steps 8000 --checkpoint-every 50)
progress() { [[ -s "$OUT/checkpoint.bin" ]] && [[ $(grep -c . "$OUT/metrics.jsonl" 2>/dev/null || echo 0) -ge 2 ]]; }
if wait_for 120 progress; then t_pass "job $J running, checkpoint written"; else t_fail "job $J wrote a checkpoint"; tail -n 5 "$OUT/job.out"; fi
port=$((20000 + 2 * (J % 10000)))
check "HT_PORT=auto: coordinator on port $port, metrics on $((port + 1))" \
    bash -c "grep -q 'at tcp://10.200.0.1:$port;' '$OUT/job.out' && nsenter --net=/run/netns/${TAG}n2 curl --noproxy '*' -fsS http://10.200.0.1:$((port + 1))/healthz"
sl scontrol requeue "$J" && t_pass "scontrol requeue $J" || t_fail "scontrol requeue $J"
if wait_job "$J" 300; then t_pass "requeued job $J finished ($((SECONDS - t)) s)"; else t_fail "requeued job $J finished within 300 s"; fi
st=$(job_field "$J" JobState)
[[ "$st" == COMPLETED ]] && t_pass "JobState=COMPLETED after requeue" || { t_fail "COMPLETED after requeue (got $st)"; tail -n 8 "$OUT/job.out"; }
check "coordinator resumed from the checkpoint mid-run" grep -q "resumed from .* at step [1-9]" "$OUT/coordinator.log"
n=$(json_field "$OUT/summary.json" steps)
[[ "$n" == 8000 ]] && t_pass "summary.json steps = 8000" || t_fail "summary.json steps = 8000 (got '$n')"

echo "slurm_multinode_test took $((SECONDS - T0)) s"
t_summary
