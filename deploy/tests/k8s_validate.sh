#!/bin/bash
# Validates deploy/k8s against the official Kubernetes JSON schemas and checks deploy/docker.
#
#   * every manifest file, and the kustomize-rendered whole (`kubectl kustomize`, when kubectl
#     is installed), with kubernetes-validate from PyPI (it ships the schemas generated from
#     the Kubernetes OpenAPI specs; --strict rejects unknown fields) for each version in
#     $K8S_VERSIONS (default: 1.29.0 and 1.37.0);
#   * kustomization.yaml lists exactly the manifest files of the folder;
#   * consistency checks a schema cannot express (deploy/tests/k8s_checks.py): ports, probes,
#     Service ↔ --connect, Secret items ↔ key flags, PVC ↔ checkpoint paths, the workers' exec
#     probe run on sample /proc/net/tcp contents;
#   * the containers' args from the rendered manifests run for real (root only) in a private
#     network namespace with the manifests' own ports: the coordinator's HTTP probe and the
#     workers' exec probe are run verbatim there, the run completes;
#   * the Dockerfile: builder is the official swift:6.x image running `swift build -c release`,
#     runtime is Debian slim, and its apt list covers every shared library the hypertrain binary
#     needs (readelf NEEDED → dpkg -S), ENTRYPOINT in exec form.
# Installs kubernetes-validate with pip when missing (HT_DEPLOY_NO_INSTALL=1: skip instead).
# The image itself is not built (no Docker engine here). Ends with "N passed, M failed".
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T0=$SECONDS
K8S=$DEPLOY_DIR/k8s
DOCKERFILE=$DEPLOY_DIR/docker/Dockerfile
VERSIONS=${K8S_VERSIONS:-1.29.0 1.37.0}
echo "k8s_validate: deploy/k8s manifests and deploy/docker/Dockerfile"

# --- the validator ---------------------------------------------------------------------------------
KV=$(command -v kubernetes-validate || true)
if [[ -z "$KV" && "${HT_DEPLOY_NO_INSTALL:-0}" != 1 ]]; then
    echo "  installing kubernetes-validate from PyPI"
    if python3 -m pip install -q kubernetes-validate >/dev/null 2>&1; then
        KV=$(command -v kubernetes-validate || true)
        [[ -z "$KV" ]] && python3 -c 'import kubernetes_validate' 2>/dev/null && KV="python3 -m kubernetes_validate"
    else
        # Debian's python refuses system-wide pip installs (PEP 668): use a cached venv.
        VENV=${XDG_CACHE_HOME:-$HOME/.cache}/hypertrain-deploy/venv
        if [[ -x "$VENV/bin/kubernetes-validate" ]] || { python3 -m venv "$VENV" >/dev/null 2>&1 && "$VENV/bin/pip" install -q kubernetes-validate >/dev/null 2>&1; }; then
            KV=$VENV/bin/kubernetes-validate
        fi
    fi
fi
if [[ -z "$KV" ]]; then
    echo "  skip: kubernetes-validate is not installed and could not be installed (pip install kubernetes-validate)"
    t_skip "no kubernetes-validate"; t_summary; exit 0
fi
PY=python3
[[ "$KV" == */venv/bin/kubernetes-validate ]] && PY=$(dirname "$KV")/python3
echo "  validator: kubernetes-validate $($KV --version 2>/dev/null), Kubernetes schema versions: $VERSIONS"

W=$(mktemp -d /tmp/ht-k8s-validate.XXXXXX)
trap 'rm -rf "$W"' EXIT

validate() {  # validate FILE LABEL: strict validation against every version
    local f=$1 label=$2 v out
    for v in $VERSIONS; do
        if out=$($KV --strict --no-warn -k "$v" "$f" 2>&1) && ! grep -q ERROR <<<"$out"; then
            t_pass "$label valid against Kubernetes $v ($(grep -c passed <<<"$out") resources)"
        else
            t_fail "$label valid against Kubernetes $v"; grep -v '^INFO' <<<"$out" | sed 's/^/    /' | head -10
        fi
    done
}

# --- each manifest file ------------------------------------------------------------------------------
MANIFESTS=()
for f in "$K8S"/*.yaml; do
    [[ $(basename "$f") == kustomization.yaml ]] && continue
    MANIFESTS+=("$f")
    validate "$f" "$(basename "$f")"
done

# --- kustomization.yaml lists exactly these files ----------------------------------------------------
listed=$($PY -c 'import sys,yaml; print("\n".join(sorted(yaml.safe_load(open(sys.argv[1]))["resources"])))' "$K8S/kustomization.yaml" 2>&1)
present=$(for f in "${MANIFESTS[@]}"; do basename "$f"; done | sort)
if [[ "$listed" == "$present" ]]; then t_pass "kustomization.yaml resources = the manifest files ($(echo $listed))"
else t_fail "kustomization.yaml resources = the manifest files (listed: $(echo $listed); present: $(echo $present))"; fi

# --- the rendered kustomization --------------------------------------------------------------------------
RENDERED=$W/rendered.yaml
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize "$K8S" > "$RENDERED" 2>"$W/kustomize.err"; then
    t_pass "kubectl kustomize deploy/k8s renders ($(grep -c '^kind:' "$RENDERED") resources)"
    validate "$RENDERED" "rendered kustomization"
    check "rendered: every namespaced resource is in namespace hypertrain" \
        $PY -c 'import sys,yaml
d=[x for x in yaml.safe_load_all(open(sys.argv[1])) if x]
sys.exit(0 if all(x["metadata"].get("namespace")=="hypertrain" for x in d if x["kind"]!="Namespace") else 1)' "$RENDERED"
else
    if command -v kubectl >/dev/null 2>&1; then t_fail "kubectl kustomize deploy/k8s renders"; sed 's/^/    /' "$W/kustomize.err" | head -5
    else t_skip "kubectl not installed: kustomization not rendered (files validated one by one)"; fi
    for f in "${MANIFESTS[@]}"; do cat "$f"; echo "---"; done > "$RENDERED"
fi

# --- consistency checks ------------------------------------------------------------------------------------
out=$($PY "$DEPLOY_TESTS_DIR/k8s_checks.py" "$RENDERED" 2>&1)
echo "$out"
PASSED=$((PASSED + $(grep -c '^  ok ' <<<"$out")))
FAILED=$((FAILED + $(grep -c '^  FAIL ' <<<"$out")))
if ! grep -qE '^  (ok|FAIL) ' <<<"$out"; then t_fail "k8s_checks.py ran"; fi

# --- the pods' command lines, run for real -------------------------------------------------------------
# The containers' args from the rendered manifests, run with the same ports inside a private
# network namespace (root only): image paths are mapped to local ones, the Service name to
# 127.0.0.1, --steps is appended (the last occurrence wins). The coordinator's HTTP probe and
# the workers' exec probe run verbatim inside the namespace.
HT=$(find_hypertrain || true)
DATA=$(find_data || true)
if [[ $(id -u) != 0 ]] || ! command -v ip >/dev/null 2>&1; then
    t_skip "pod command lines not run (needs root and ip netns)"
elif [[ -z "$HT" || -z "$DATA" ]]; then
    t_skip "pod command lines not run (no hypertrain binary or no MNIST)"
else
    NS=htk8s$$
    PODPIDS=()
    pods_cleanup() {
        local p
        for p in "${PODPIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
        if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$NS"; then
            for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
            ip netns del "$NS" 2>/dev/null
        fi
        rm -rf "$W"
    }
    trap pods_cleanup EXIT
    if ip netns add "$NS" 2>/dev/null && ip -n "$NS" link set lo up; then
        mkdir -p "$W/keys" "$W/run"
        for n in coordinator worker validator; do
            extra=(); [[ $n != coordinator ]] && extra=(--authorize "$W/keys/authorized_keys")
            "$HT" keygen --out "$W/keys" --name "$n" "${extra[@]}" >/dev/null
        done
        pod_args() {  # pod_args DEPLOYMENT → NUL-separated argv for the local binary
            $PY - "$RENDERED" "$1" "$HT" "$W" "$DATA" <<'PYEOF'
import sys, yaml
rendered, name, ht, w, data = sys.argv[1:]
d = next(x for x in yaml.safe_load_all(open(rendered)) if x and x["kind"] == "Deployment" and x["metadata"]["name"] == name)
args = d["spec"]["template"]["spec"]["containers"][0]["args"]
maps = [("/etc/hypertrain/keys", w + "/keys"), ("/var/lib/hypertrain/run", w + "/run"),
        ("/opt/hypertrain/mnist", data), ("tcp://hypertrain-coordinator:", "tcp://127.0.0.1:")]
out = [ht]
for a in args:
    for src, dst in maps:
        a = a.replace(src, dst)
    out.append(a)
if name == "hypertrain-coordinator":
    out += ["--steps=300", "--quiet"]
sys.stdout.write("\0".join(out))
PYEOF
        }
        probe_cmd() {  # probe_cmd DEPLOYMENT PROBE → NUL-separated exec command
            $PY - "$RENDERED" "$1" "$2" <<'PYEOF'
import sys, yaml
rendered, name, probe = sys.argv[1:]
d = next(x for x in yaml.safe_load_all(open(rendered)) if x and x["kind"] == "Deployment" and x["metadata"]["name"] == name)
sys.stdout.write("\0".join(d["spec"]["template"]["spec"]["containers"][0][probe]["exec"]["command"]))
PYEOF
        }
        start_pod() {  # start_pod DEPLOYMENT LOGNAME
            local argv=(); mapfile -d '' argv < <(pod_args "$1")
            ip netns exec "$NS" "${argv[@]}" >"$W/$2.log" 2>&1 &
            PODPIDS+=($!); LAST_PID=$!
        }
        mapfile -d '' WPROBE < <(probe_cmd hypertrain-worker livenessProbe)
        probe_in_ns() { ip netns exec "$NS" "${WPROBE[@]}"; }
        if probe_in_ns; then t_fail "worker exec probe fails before anything is connected"; else t_pass "worker exec probe fails before anything is connected"; fi
        start_pod hypertrain-coordinator coordinator; CPID=$LAST_PID
        start_pod hypertrain-worker worker-1; WP1=$LAST_PID
        start_pod hypertrain-worker worker-2; WP2=$LAST_PID
        start_pod hypertrain-validator validator; VP=$LAST_PID
        if wait_for 60 ip netns exec "$NS" curl --noproxy '*' -fsS http://127.0.0.1:9464/healthz; then
            t_pass "coordinator pod args: HTTP GET /healthz answers on :9464 (liveness/readiness probe)"
        else t_fail "coordinator pod args: /healthz on :9464"; tail -5 "$W/coordinator.log"; fi
        if wait_for 30 probe_in_ns; then t_pass "worker exec probe passes while the workers are connected to :5555"
        else t_fail "worker exec probe passes while connected"; fi
        deadline=$((SECONDS + 180))
        while kill -0 "$CPID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
        kill -0 "$CPID" 2>/dev/null && kill -KILL "$CPID"
        wait "$CPID"; rc=$?
        steps=$(json_field "$W/run/summary.json" steps)
        if [[ $rc == 0 && "$steps" == 300 ]]; then t_pass "coordinator pod args: run completes (exit 0, 300 steps, checkpoint/summary on the PVC path)"
        else t_fail "coordinator pod args: run completes (exit $rc, steps '$steps')"; tail -5 "$W/coordinator.log"; fi
        check "coordinator pod args: --resume with no checkpoint starts fresh" grep -q "no checkpoint" "$W/coordinator.log"
        ok=1
        for p in $WP1 $WP2 $VP; do
            for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
            kill -0 "$p" 2>/dev/null && { kill -KILL "$p"; ok=0; }
            wait "$p" || ok=0
        done
        if ((ok)); then t_pass "worker and validator pod args: connect through the Service address with CURVE, exit 0 at the end"
        else t_fail "worker/validator pods exit 0 at the end"; tail -n 3 "$W"/worker-1.log "$W"/validator.log; fi
        if probe_in_ns; then t_fail "worker exec probe fails once the coordinator is gone"; else t_pass "worker exec probe fails once the coordinator is gone"; fi
    else
        t_skip "pod command lines not run ('ip netns add' failed)"
    fi
fi

# --- Dockerfile ----------------------------------------------------------------------------------------------
check "Dockerfile: builder FROM the official swift:6.x image" grep -qE '^ARG SWIFT_IMAGE=swift:6\.[0-9.]+(-[a-z]+)?$' "$DOCKERFILE"
check "Dockerfile: builder runs swift build -c release" grep -qE 'swift build -c release' "$DOCKERFILE"
check "Dockerfile: runtime FROM a slim Debian image" grep -qE '^ARG RUNTIME_IMAGE=debian:[a-z]+-slim$' "$DOCKERFILE"
check "Dockerfile: ENTRYPOINT in exec form (hypertrain is PID 1 and gets SIGTERM)" grep -qE '^ENTRYPOINT \["/usr/local/bin/hypertrain"\]' "$DOCKERFILE"
check "Dockerfile: runs as a non-root user" grep -qE '^USER [0-9]+' "$DOCKERFILE"
check "Dockerfile.dockerignore excludes .build and data" bash -c "grep -qx '.build' '$DEPLOY_DIR/docker/Dockerfile.dockerignore' && grep -qx 'data' '$DEPLOY_DIR/docker/Dockerfile.dockerignore'"
RUNTIME_PKGS=$(awk '/^FROM \$\{RUNTIME_IMAGE\}/{r=1} r' "$DOCKERFILE" | grep -oE '\b(lib[a-z0-9.+-]+|zlib1g|ca-certificates)\b' | sort -u)
# The Dockerfile through BuildKit's own parser (PyPI "dockerfile", a binding of the Go parser):
# syntax, stages, COPY --from targets, shell syntax of every RUN; then the apt package names of
# both stages resolved against Debian 12 (both images are bookworm) with `apt-get -s`.
if ! $PY -c 'import dockerfile' 2>/dev/null && [[ "${HT_DEPLOY_NO_INSTALL:-0}" != 1 ]]; then
    if [[ "$PY" == python3 ]]; then python3 -m pip install -q dockerfile >/dev/null 2>&1
    else "$(dirname "$PY")/pip" install -q dockerfile >/dev/null 2>&1; fi
fi
if $PY -c 'import dockerfile' 2>/dev/null; then
    out=$($PY - "$DOCKERFILE" "$W" <<'PYEOF'
import sys, dockerfile
path, w = sys.argv[1:]
cmds = dockerfile.parse_file(path)
stages, problems, runs = [], [], []
for c in cmds:
    if c.cmd == "FROM":
        v = [x.lower() for x in c.value]
        stages.append(c.value[v.index("as") + 1] if "as" in v else str(len(stages)))
    if c.cmd == "COPY":
        for f in c.flags:
            if f.startswith("--from=") and f[7:] not in stages:
                problems.append(f"COPY {f}: no such stage before line {c.start_line}")
    if c.cmd == "RUN":
        runs.append((len(stages), c.value[0]))
if len(stages) != 2 or stages[0] != "builder":
    problems.append(f"expected two stages, the first named builder: {stages}")
for i, (stage, text) in enumerate(runs):
    open(f"{w}/run{i}.sh", "w").write(text)
    if "apt-get install" in text:
        pkgs = [t for t in text.split("--no-install-recommends", 1)[1].split("&&")[0].split() if t != "\\"]
        open(f"{w}/apt{stage}.txt", "w").write("\n".join(pkgs) + "\n")
print("\n".join(problems) if problems else "OK")
PYEOF
)
    if [[ "$out" == OK ]]; then t_pass "Dockerfile parses with BuildKit's parser: 2 stages (builder, runtime), COPY --from targets exist"
    else t_fail "Dockerfile structure"; echo "$out" | sed 's/^/    /'; fi
    bad=0; for f in "$W"/run*.sh; do bash -n "$f" 2>/dev/null || { bad=1; echo "    shell syntax error in: $(head -c 120 "$f")"; }; done
    ((bad == 0)) && t_pass "Dockerfile: every RUN is valid shell" || t_fail "Dockerfile: every RUN is valid shell"
    if grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null && command -v apt-get >/dev/null; then
        for stage in 1 2; do
            [[ -s "$W/apt$stage.txt" ]] || { t_fail "Dockerfile stage $stage installs packages"; continue; }
            label=$([[ $stage == 1 ]] && echo builder || echo runtime)
            if out=$(apt-get install -s --no-install-recommends $(cat "$W/apt$stage.txt") 2>&1); then
                t_pass "Dockerfile $label packages resolve in Debian 12 (apt-get -s: $(tr '\n' ' ' < "$W/apt$stage.txt"))"
            else t_fail "Dockerfile $label packages resolve in Debian 12"; grep -E '^E:' <<<"$out" | sed 's/^/    /'; fi
        done
    else
        t_skip "not Debian 12: Dockerfile package names not resolved with apt-get -s"
    fi
else
    t_skip "PyPI package 'dockerfile' not installable: Dockerfile not parsed"
fi
for p in libzmq5 libprotobuf-c1 liblapacke zlib1g; do
    check "Dockerfile: runtime installs $p" grep -qx "$p" <<<"$RUNTIME_PKGS"
done
check "Dockerfile: runtime installs an OpenBLAS (libopenblas0*)" grep -qE '^libopenblas0' <<<"$RUNTIME_PKGS"
if [[ -n "$HT" ]] && command -v readelf >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
    # Libraries the binary links directly; the Swift runtime is linked statically in the image
    # (--static-swift-stdlib), so its libraries are left out here.
    missing=()
    while read -r lib; do
        [[ "$lib" =~ ^lib(swift|Foundation|_Foundation|FoundationEssentials|FoundationInternationalization|dispatch|BlocksRuntime) ]] && continue
        [[ "$lib" == ld-linux* ]] && continue   # the dynamic loader: libc6
        path=$(ldd "$HT" | awk -v l="$lib" '$1 == l { print $3 }')
        pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
        [[ -z "$pkg" ]] && pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
        case "$pkg" in libc6|libgcc-s1|libstdc++6) continue;; esac   # in debian:bookworm-slim
        grep -qx "$pkg" <<<"$RUNTIME_PKGS" || missing+=("$lib→${pkg:-?}")
    done < <(readelf -d "$HT" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    if ((${#missing[@]} == 0)); then t_pass "Dockerfile: runtime packages cover every library $(basename "$HT") links ($(readelf -d "$HT" | grep -c NEEDED) NEEDED)"
    else t_fail "Dockerfile: runtime packages cover the binary's libraries (missing: ${missing[*]})"; fi
else
    t_skip "no built hypertrain binary (or readelf/dpkg): runtime library coverage not checked"
fi

echo "k8s_validate took $((SECONDS - T0)) s"
t_summary
