#!/usr/bin/env python3
"""Consistency checks of the Kubernetes manifests that a JSON schema cannot express.

  k8s_checks.py RENDERED.yaml     (the output of `kubectl kustomize deploy/k8s`, or the
                                  resource files concatenated)

Prints one line per check ("ok  …" / "FAIL …") and exits 1 when any failed.
"""
import re
import subprocess
import sys
import tempfile

import yaml

failed = 0


def check(ok, what):
    global failed
    print(("  ok   " if ok else "  FAIL ") + what)
    if not ok:
        failed += 1


def main(path):
    docs = [d for d in yaml.safe_load_all(open(path, encoding="utf-8")) if d]
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    coord = by.get(("Deployment", "hypertrain-coordinator"))
    worker = by.get(("Deployment", "hypertrain-worker"))
    validator = by.get(("Deployment", "hypertrain-validator"))
    svc = by.get(("Service", "hypertrain-coordinator"))
    pvc = by.get(("PersistentVolumeClaim", "hypertrain-run"))
    check(all(x is not None for x in (coord, worker, validator, svc, pvc)),
          "coordinator Deployment + Service, worker and validator Deployments, PVC present")
    if failed:
        return

    def pod(d):
        return d["spec"]["template"]["spec"]

    def container(d):
        return pod(d)["containers"][0]

    def args(d):
        out = {}
        for a in container(d).get("args", [])[1:]:
            k, _, v = a.partition("=")
            out[k] = v
        return out

    check(coord["spec"]["replicas"] == 1 and coord["spec"].get("strategy", {}).get("type") == "Recreate",
          "coordinator: 1 replica, Recreate strategy (never two coordinators on one checkpoint)")
    check(worker["spec"]["replicas"] >= 1, f"workers: {worker['spec']['replicas']} replicas")
    check(validator["spec"]["replicas"] == 1, "validator: 1 replica")
    for name, d in (("coordinator", coord), ("worker", worker), ("validator", validator)):
        c = container(d)
        check(c["args"][0] == name, f"{name}: runs `hypertrain {name}`")
        r = c.get("resources", {})
        check("cpu" in r.get("requests", {}) and "memory" in r.get("requests", {}), f"{name}: cpu and memory requests")
        check(all(p in c for p in ("livenessProbe", "readinessProbe")), f"{name}: liveness and readiness probes")

    # Coordinator: probes on its --metrics-port, resume from the PVC, keys from the Secret.
    ca = args(coord)
    port_names = {p["name"]: p["containerPort"] for p in container(coord)["ports"]}
    metrics_port = int(ca.get("--metrics-port", "0"))
    check(port_names.get("metrics") == metrics_port, f"coordinator: container port 'metrics' = --metrics-port {metrics_port}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        g = container(coord).get(probe, {}).get("httpGet", {})
        check(g.get("path") == "/healthz" and port_names.get(g.get("port"), g.get("port")) == metrics_port,
              f"coordinator: {probe} = HTTP GET /healthz on the metrics port")
    bind_port = int(ca["--bind"].rsplit(":", 1)[1])
    check(port_names.get("zmq") == bind_port, f"coordinator: container port 'zmq' = --bind port {bind_port}")
    check("--resume" in ca and "--checkpoint" in ca, "coordinator: --checkpoint and --resume (restarts continue)")
    mounts = {m["name"]: m["mountPath"] for m in container(coord)["volumeMounts"]}
    vols = {v["name"]: v for v in pod(coord)["volumes"]}
    run_mount = mounts.get("run", "")
    check(all(ca[k].startswith(run_mount + "/") for k in ("--checkpoint", "--summary", "--metrics")),
          f"coordinator: checkpoint, summary and metrics on the PVC mount {run_mount}")
    check(vols.get("run", {}).get("persistentVolumeClaim", {}).get("claimName") == pvc["metadata"]["name"],
          "coordinator: mounts the PVC")
    check(pod(coord).get("terminationGracePeriodSeconds", 30) >= 120,
          "coordinator: terminationGracePeriodSeconds ≥ 120 (checkpoint on SIGTERM)")

    # Service ↔ pods ↔ workers' --connect.
    labels = coord["spec"]["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), "Service selects the coordinator pod")
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    check(svc_ports.get("zmq", {}).get("targetPort") in ("zmq", bind_port), "Service port zmq → the coordinator's zmq port")
    for name, d in (("worker", worker), ("validator", validator)):
        a = args(d)
        m = re.fullmatch(r"tcp://([^:]+):(\d+)", a.get("--connect", ""))
        check(bool(m) and m.group(1) == svc["metadata"]["name"] and int(m.group(2)) == svc_ports["zmq"]["port"],
              f"{name}: --connect {a.get('--connect')} is the Service name and port")
        # The exec probe looks for an ESTABLISHED connection to that port, in hex.
        for probe in ("livenessProbe", "readinessProbe"):
            cmd = container(d)[probe]["exec"]["command"]
            check(f":{int(m.group(2)):04X} 01 " in cmd[-1] if m else False,
                  f"{name}: {probe} checks an ESTABLISHED connection to port {m.group(2) if m else '?'} (hex)")

    # Keys: each pod gets only the Secret items it needs, at the paths its flags name.
    def secret_items(d):
        v = next(v for v in pod(d)["volumes"] if "secret" in v)
        mount = next(m["mountPath"] for m in container(d)["volumeMounts"] if m["name"] == v["name"])
        return v["secret"]["secretName"], {mount + "/" + i["path"]: i["key"] for i in v["secret"]["items"]}

    names = set()
    for label, d, want in (("coordinator", coord, {"--server-key": "coordinator.key", "--authorized-keys": "authorized_keys"}),
                           ("worker", worker, {"--key": "worker.key", "--server-public-key": "coordinator.pub"}),
                           ("validator", validator, {"--key": "validator.key", "--server-public-key": "coordinator.pub"})):
        secret, items = secret_items(d)
        names.add(secret)
        a = args(d)
        check(all(items.get(a.get(flag)) == key for flag, key in want.items()) and len(items) == len(want),
              f"{label}: Secret items {sorted(items.values())} mounted where its flags point, nothing else")
        sc = container(d).get("securityContext", {})
        check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
              and pod(d).get("securityContext", {}).get("runAsNonRoot") is True,
              f"{label}: non-root, read-only root file system, no privilege escalation")
    check(len(names) == 1, f"one Secret for the CURVE keys: {sorted(names)}")

    # The exec probe itself, run on sample /proc/net/tcp and tcp6 contents.
    cmd = container(worker)["livenessProbe"]["exec"]["command"]
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    est4 = "   0: 0A000005:9C40 0A00000A:15B3 01 00000000:00000000 00:00000000 00000000 10001 0 12345 1\n"
    listen4 = "   0: 00000000:15B3 00000000:0000 0A 00000000:00000000 00:00000000 00000000 10001 0 12345 1\n"
    est6 = ("   0: 0000000000000000FFFF00000500000A:9C40 0000000000000000FFFF00000A00000A:15B3 01 "
            "00000000:00000000 00:00000000 00000000 10001 0 12346 1\n")
    other = "   0: 0A000005:9C40 0A00000A:1F90 01 00000000:00000000 00:00000000 00000000 10001 0 12345 1\n"

    def run_probe(tcp, tcp6):
        with tempfile.TemporaryDirectory() as t:
            open(f"{t}/tcp", "w").write(header + tcp)
            open(f"{t}/tcp6", "w").write(header + tcp6)
            script = cmd[-1].replace("/proc/net/tcp6", f"{t}/tcp6").replace("/proc/net/tcp ", f"{t}/tcp ")
            return subprocess.run(cmd[:-1] + [script], capture_output=True).returncode

    check(run_probe(est4, "") == 0, "worker probe: passes with an ESTABLISHED IPv4 connection to :5555")
    check(run_probe("", est6) == 0, "worker probe: passes with an ESTABLISHED IPv6 connection to :5555")
    check(run_probe(listen4, "") != 0, "worker probe: fails with only a LISTEN socket on 5555")
    check(run_probe(other, "") != 0, "worker probe: fails with a connection to another port")
    check(run_probe("", "") != 0, "worker probe: fails with no connection")


if __name__ == "__main__":
    main(sys.argv[1])
    sys.exit(1 if failed else 0)
