"""The Python worker SDK (python/hypertrain_sdk) against the release coordinator: generated code
current, the hypergradient through the SDK against finite differences, sync runs bit-identical
run to run (and whatever the number of trainers), the exported answer loading into the torch
model and reproducing the reported validation loss, a run surviving kill -9 of a trainer, a
worker with another model refused with a clear message, and both examples (the CNN's validation
loss at the final λ̂ below the same CNN trained with λ̂ frozen at its initial value)."""
import json
import os
import pathlib
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PYDIR = ROOT / "python"
TINY = pathlib.Path(__file__).with_name("sdk_tiny_worker.py")
sys.path.insert(0, str(PYDIR))
sys.path.insert(0, str(TINY.parent))

from hypertrain_sdk import load_answer, run_local  # noqa: E402
import sdk_tiny_worker as tiny  # noqa: E402


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(PYDIR), str(TINY.parent), e.get("PYTHONPATH", "")])
    return e


@pytest.fixture()
def sockdir():
    d = tempfile.mkdtemp(prefix="htsdk-")   # short: ipc:// paths are limited to ~100 bytes
    yield d
    shutil.rmtree(d, ignore_errors=True)


def write_spec(path, model="numpy"):
    subprocess.run([sys.executable, str(TINY), "--write-spec", str(path), "--model", model], check=True, env=env())


def read_checkpoint(path):
    """The checkpoint's JSON header and its arrays (format: RunState/Checkpoint+Format.swift)."""
    raw = pathlib.Path(path).read_bytes()
    assert raw[:8] == b"HTCKPT01"
    (hlen,) = struct.unpack("<I", raw[12:16])
    header = json.loads(raw[24:24 + hlen])
    arrays, off = {}, 24 + hlen
    for a in header["arrays"]:
        arrays[a["name"]] = np.frombuffer(raw[off:off + 4 * a["count"]], "<f4").copy()
        off += 4 * a["count"]
    return header, arrays


TINY_RUN = ["--quiet", "--lambda-init=-2", "--heartbeat-ms", "200"]


def tiny_run(ht_bin, out, steps, trainers=2, model="numpy", extra=(), scope="per-output-unit", worker_args=()):
    os.makedirs(out, exist_ok=True)
    spec = os.path.join(out, "spec.safetensors")
    write_spec(spec, model)
    old = dict(os.environ)
    os.environ.update(env())
    try:
        return run_local([sys.executable, str(TINY), "--model", model, *worker_args], spec, out, steps=steps, trainers=trainers,
                         scope=scope, coordinator_args=[*TINY_RUN, *extra], hypertrain=ht_bin, timeout=300)
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_python_protobuf_code_is_current():
    r = subprocess.run([str(ROOT / "scripts/gen-proto-python.sh"), "--check"], capture_output=True, text=True,
                       env={**os.environ, "PYTHON": sys.executable})
    assert r.returncode == 0, r.stdout + r.stderr


def hypernet_forward(kind: str, phi: np.ndarray, x: np.ndarray, d: int) -> np.ndarray:
    """w = φ(x) exactly as docs/protocol.md §14 lays φ out (float64)."""
    h = x.size
    if kind == "linear":
        A, b = phi[: h * d].reshape(h, d), phi[h * d:]
        return b + x @ A
    k = int(kind.split(":")[1])
    C, c = phi[: h * k].reshape(h, k), phi[h * k: h * k + k]
    B, b = phi[h * k + k: h * k + k + k * d].reshape(k, d), phi[h * k + k + k * d:]
    z = c + x @ C
    if kind.startswith("mlp"):
        z = np.maximum(z, 0)
    return b + z @ B


@pytest.mark.parametrize("scope,hypernet,h", [("per-output-unit", "linear", 3), ("per-weight", "factorized:3", 15),
                                              ("per-tensor", "mlp:4", 2)])
def test_hypergradient_through_the_sdk_matches_finite_differences(ht_bin, tmp_path, scope, hypernet, h):
    # λ̂ by SGD with step 1 and no schedule: λ̂_{K+1} = λ̂_K − g_K, where g_K is the coordinator's
    # hypergradient from the validator's ∂L_valid/∂w at φ_K(λ̂_K). Run K steps, resume for one more;
    # compare g_K with central differences of L_valid(φ_K(λ)) in λ, φ_K read from the checkpoint
    # and evaluated with the documented layout (centred input: the centre λ̂_K held fixed).
    flags = ["--lambda-optimizer", "sgd", "--lambda-lr", "1", "--lr-schedule", "constant", "--init-scale", "0.3",
             "--divergence-guard", "off", "--hypernet", hypernet, "--hypernet-input", "centred"]
    k = 4
    first = tiny_run(ht_bin, str(tmp_path / "a"), steps=k, extra=flags, scope=scope)
    assert first["summary"]["steps"] == k
    _, before = read_checkpoint(tmp_path / "a" / "checkpoint.bin")
    # Resume one step (run_local starts fresh, so resume by hand).
    b = tmp_path / "b"
    b.mkdir()
    shutil.copy(tmp_path / "a" / "checkpoint.bin", b / "checkpoint.bin")
    spec = b / "spec.safetensors"
    write_spec(spec)
    d = tempfile.mkdtemp(prefix="htsdk-")
    ep = f"ipc://{d}/c.sock"
    coord = subprocess.Popen([ht_bin, "coordinator", "--model-spec", str(spec), "--model-scope", scope,
                              "--bind", ep, "--steps", str(k + 1), "--samples", "2", "--checkpoint", str(b / "checkpoint.bin"),
                              "--resume", *TINY_RUN, *flags], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    workers = [subprocess.Popen([sys.executable, str(TINY), "--role", r, "--connect", ep], env=env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for r in ("trainer", "validator")]
    try:
        out, _ = coord.communicate(timeout=120)
        assert coord.returncode == 0, out
    finally:
        for w in workers:
            w.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)
    _, after = read_checkpoint(b / "checkpoint.bin")
    lam, phi = before["lambda_hat"].astype(np.float64), before["phi"].astype(np.float64)
    g = lam - after["lambda_hat"].astype(np.float64)

    dcount = 15
    assert lam.size == h
    (_, _), (xv, yv) = tiny.data()

    def loss(lmb):   # whole validation split (the validator's batch covers it)
        return tiny.numpy_loss(hypernet_forward(hypernet, phi, lmb - lam, dcount), xv, yv)[0]
    eps = 1e-4
    fd = np.array([(loss(lam + eps * e) - loss(lam - eps * e)) / (2 * eps) for e in np.eye(h)])
    assert np.linalg.norm(fd) > 1e-3, fd                    # a non-trivial check
    np.testing.assert_allclose(g, fd, rtol=2e-3, atol=2e-3 * np.abs(fd).max())


@pytest.fixture(scope="module")
def torch_runs(ht_bin, tmp_path_factory):
    base = tmp_path_factory.mktemp("det")
    return [tiny_run(ht_bin, str(base / name), steps=30, trainers=n, model="torch")
            for name, n in (("a", 2), ("b", 2), ("c", 1))]


def test_sync_runs_with_the_sdk_are_bit_identical(torch_runs):
    a, b, c = torch_runs
    wa, la, _ = load_answer(a["answer"])
    assert a["summary"]["steps"] == 30 and a["summary"]["hypergradients_applied"] == 30
    for other in (b, c):     # run to run, and with one trainer instead of two
        w, l, _ = load_answer(other["answer"])
        assert l.tobytes() == la.tobytes()
        assert all(w[k].tobytes() == wa[k].tobytes() for k in wa)
        assert other["summary"]["valid_loss"] == a["summary"]["valid_loss"]
    assert not np.all(la == np.float32(-2))                  # λ̂ moved


def test_exported_answer_loads_into_the_torch_model_and_reproduces_the_valid_loss(torch_runs):
    import torch
    from safetensors.torch import load_file
    a = torch_runs[0]
    sd = load_file(a["answer"])
    lam = sd.pop("lambda_hat")
    assert lam.shape == (3,) and torch.equal(lam, torch.tensor(a["lambda_hat"], dtype=torch.float32))
    module = torch.nn.Linear(4, 3)
    module.load_state_dict(sd)                               # strict: exactly the model's tensors
    (_, _), (xv, yv) = tiny.data()
    with torch.no_grad():
        valid = torch.nn.functional.mse_loss(module(torch.from_numpy(xv.astype(np.float32))),
                                             torch.from_numpy(yv.astype(np.float32))).item()
    assert valid == pytest.approx(a["summary"]["valid_loss"], rel=1e-6)


def test_a_run_survives_kill_9_of_a_trainer(ht_bin, tmp_path, sockdir):
    spec = tmp_path / "spec.safetensors"
    write_spec(spec)
    ep = f"ipc://{sockdir}/c.sock"
    steps = 200                                              # ≈ 40 ms a step: ≈ 8 s
    coord = subprocess.Popen([ht_bin, "coordinator", "--model-spec", str(spec), "--bind", ep, "--steps", str(steps),
                              "--samples", "2", "--summary", str(tmp_path / "summary.json"), *TINY_RUN],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    roles = ["trainer", "trainer", "validator"]
    workers = [subprocess.Popen([sys.executable, str(TINY), "--role", r, "--connect", ep, "--delay", "0.03"], env=env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for r in roles]
    try:
        time.sleep(3)                                        # registered and stepping (startup ≈ 1 s)
        assert coord.poll() is None, "the run ended before the kill"
        os.kill(workers[0].pid, signal.SIGKILL)
        out, _ = coord.communicate(timeout=180)
        assert coord.returncode == 0, out
        assert "lost trainer" in out
        summary = json.load(open(tmp_path / "summary.json"))
        assert summary["steps"] == steps and summary["peers_lost"] >= 1
        assert np.isfinite(summary["valid_loss"])
        for w in workers[1:]:
            assert w.wait(timeout=30) == 0
    finally:
        for p in [coord, *workers]:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_a_worker_with_another_model_is_refused_clearly(ht_bin, tmp_path, sockdir):
    spec = tmp_path / "spec.safetensors"
    from hypertrain_sdk import write_model_spec
    write_model_spec(str(spec), [("weight", np.zeros((3, 5), np.float32)), ("bias", np.zeros(3, np.float32))])
    ep = f"ipc://{sockdir}/c.sock"
    coord = subprocess.Popen([ht_bin, "coordinator", "--model-spec", str(spec), "--bind", ep, "--steps", "5", *TINY_RUN],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        w = subprocess.run([sys.executable, str(TINY), "--role", "trainer", "--connect", ep], env=env(),
                           capture_output=True, text=True, timeout=60)
        assert w.returncode == 1
        assert "registration refused (ERROR_CODE_BAD_TENSOR)" in w.stderr
        assert "worker has weight [3, 4], the run weight [3, 5]" in w.stderr
    finally:
        coord.send_signal(signal.SIGTERM)
        out, _ = coord.communicate(timeout=30)
    assert "refused a trainer" in out


def test_tabular_example_runs(ht_bin, tmp_path):
    r = subprocess.run([sys.executable, str(PYDIR / "examples/tabular.py"), "--steps", "60", "--out", str(tmp_path),
                        "--hypertrain", ht_bin], capture_output=True, text=True, env=env(), timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.load(open(tmp_path / "result.json"))["hypertrained"]
    assert np.isfinite(result["valid_loss_full"]) and len(result["lambda_hat"]) == 4
    assert result["summary_valid_loss"] == pytest.approx(result["valid_loss_full"], rel=1e-5)


def test_cnn_example_beats_the_cnn_trained_at_the_initial_lambda(ht_bin, tmp_path, mnist_dir):
    # Held-out validation split (training images 500…2499), never the test set.
    r = subprocess.run([sys.executable, str(PYDIR / "examples/mnist_cnn.py"), "--data", mnist_dir, "--steps", "150",
                        "--n-train", "500", "--n-valid", "2000", "--baseline", "--out", str(tmp_path), "--hypertrain", ht_bin],
                       capture_output=True, text=True, env=env(), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.load(open(tmp_path / "result.json"))
    hyper, frozen = result["hypertrained"]["valid_loss_full"], result["baseline"]["valid_loss_full"]
    print(f"CNN valid loss: hyper-trained {hyper:.4f}, λ̂ frozen at λ̂₀ {frozen:.4f}")
    assert hyper < frozen


def fnv1a(h: int, data: bytes) -> int:
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def test_documented_fingerprint_and_phi_length_match_a_coordinators_welcome(ht_bin, mnist_dir, sockdir):
    """docs/protocol.md §13–§15, checked from outside: a Hello from pyzmq gets a Welcome whose
    data fingerprint is the documented FNV-1a of the documented splits, and whose φ length is the
    documented formula."""
    import zmq
    from hypertrain_sdk import hypertrain_pb2 as pb
    from hypertrain_sdk.wire import decode, encode
    n_train, n_valid, n_test = 10, 100, 20
    ep = f"ipc://{sockdir}/c.sock"
    coord = subprocess.Popen([ht_bin, "coordinator", "--bind", ep, "--data", mnist_dir, "--steps", "1", "--quiet",
                              "--n-train", str(n_train), "--n-valid", str(n_valid), "--n-test", str(n_test),
                              "--layers", "784-20-10", "--hypernet", "factorized:3", "--scope", "per-class"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(ep)
        env = pb.Envelope(sequence=1)
        env.hello.role = pb.ROLE_VALIDATOR
        deadline = time.monotonic() + 30
        welcome = None
        while welcome is None and time.monotonic() < deadline:
            sock.send_multipart(encode(env))
            if sock.poll(1000):
                m = decode(sock.recv_multipart())
                if m.body == "welcome":
                    welcome = m.envelope.welcome
        assert welcome is not None, "no Welcome"
        spec = welcome.spec
        d = pathlib.Path(mnist_dir)

        def idx(name):
            raw = (d / name).read_bytes()
            return raw[4 + 4 * raw[3]:]
        timg, tlab = idx("train-images.idx3-ubyte"), idx("train-labels.idx1-ubyte")
        simg, slab = idx("t10k-images.idx3-ubyte"), idx("t10k-labels.idx1-ubyte")
        h = 0xCBF29CE484222325
        for img, lab, lo, n in ((timg, tlab, 0, n_train), (timg, tlab, n_train, n_valid), (simg, slab, 0, n_test)):
            h = fnv1a(h, struct.pack("<QQ", n, 784))
            h = fnv1a(h, lab[lo:lo + n])
            h = fnv1a(h, img[784 * lo:784 * (lo + n)])
        assert spec.data_fingerprint == h
        dcount = 784 * 20 + 20 + 20 * 10 + 10
        hcount, k = 10, 3                       # per-class: 10 λ; factorized:3: C [H][K], c, B [K][D], b
        assert spec.num_hyperparameters == hcount
        assert spec.num_phi_params == hcount * k + k + k * dcount + dcount
    finally:
        sock.close()
        coord.send_signal(signal.SIGTERM)
        coord.communicate(timeout=30)


def test_sdk_workers_speak_curve(ht_bin, tmp_path):
    """tcp:// with CURVE: the SDK takes `hypertrain keygen`'s key files like the Swift worker."""
    keys = tmp_path / "keys"
    for name in ("server", "w1", "w2"):
        subprocess.run([ht_bin, "keygen", "--out", str(keys), "--name", name,
                        *([] if name == "server" else ["--authorize", str(keys / "authorized")])], check=True,
                       capture_output=True)
    spec = tmp_path / "spec.safetensors"
    write_spec(spec)
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ep = f"tcp://127.0.0.1:{port}"
    coord = subprocess.Popen([ht_bin, "coordinator", "--model-spec", str(spec), "--bind", ep, "--steps", "5",
                              "--server-key", str(keys / "server.key"), "--authorized-keys", str(keys / "authorized"),
                              "--summary", str(tmp_path / "summary.json"), *TINY_RUN],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    workers = []
    try:
        for role, key in (("trainer", "w1"), ("validator", "w2")):
            code = ("import sys, sdk_tiny_worker as t; from hypertrain_sdk import run_worker; "
                    f"sys.exit(run_worker({ep!r}, {role!r}, t.numpy_loss_and_grad, t.TENSORS, key_file={str(keys / (key + '.key'))!r}, "
                    f"server_public_key_file={str(keys / 'server.pub')!r}, give_up_after=30))")
            workers.append(subprocess.Popen([sys.executable, "-c", code], env=env(), stderr=subprocess.PIPE, text=True))
        out, _ = coord.communicate(timeout=120)
        assert coord.returncode == 0, out
        assert "CURVE" in out
        assert json.load(open(tmp_path / "summary.json"))["steps"] == 5
        for w in workers:
            assert w.wait(timeout=30) == 0, w.stderr.read()
    finally:
        for p in [coord, *workers]:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_sdk_workers_reconnect_to_a_resumed_coordinator_after_kill_9(ht_bin, tmp_path, sockdir):
    """The coordinator is killed (-9) mid-run and restarted with --resume: the SDK workers notice
    the silence, reconnect under their worker ids and the run completes."""
    spec = tmp_path / "spec.safetensors"
    write_spec(spec)
    ep = f"ipc://{sockdir}/c.sock"
    steps = 200
    cmd = [ht_bin, "coordinator", "--model-spec", str(spec), "--bind", ep, "--steps", str(steps), "--samples", "2",
           "--checkpoint", str(tmp_path / "ckpt.bin"), "--checkpoint-every", "10",
           "--summary", str(tmp_path / "summary.json"), *TINY_RUN]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = [subprocess.Popen([sys.executable, str(TINY), "--role", r, "--connect", ep, "--delay", "0.03"], env=env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for r in ("trainer", "trainer", "validator")]
    second = None
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "ckpt.bin").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (tmp_path / "ckpt.bin").exists(), "no checkpoint"
        first.kill()
        first.wait()
        time.sleep(1.5)                                      # the workers see silence (1 s liveness)
        second = subprocess.Popen([*cmd, "--resume"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out, _ = second.communicate(timeout=180)
        assert second.returncode == 0, out
        assert "resumed from" in out
        assert json.load(open(tmp_path / "summary.json"))["steps"] == steps
        for w in workers:
            assert w.wait(timeout=30) == 0
            assert "reconnecting" in w.stderr.read()
    finally:
        for p in [first, second, *workers]:
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


def test_async_mode_with_the_sdk(ht_bin, tmp_path):
    # Async mode does not wait for the validator: the trainers sleep 50 ms per task so that the
    # run (≥ 2 s) certainly outlasts the validator's start-up, however fast the trainers are.
    r = tiny_run(ht_bin, str(tmp_path), steps=80, model="numpy", extra=["--mode", "async"], worker_args=["--delay", "0.05"])
    s = r["summary"]
    assert s["mode"] == "async" and s["steps"] == 80 and s["gradients_applied"] == 80
    assert s["hypergradients_applied"] > 0 and np.isfinite(s["valid_loss"])
    assert not np.all(np.array(r["lambda_hat"]) == np.float32(-2))


def test_a_failing_loss_function_stops_its_worker_clearly_and_the_run_goes_on(ht_bin, tmp_path, sockdir):
    spec = tmp_path / "spec.safetensors"
    write_spec(spec)
    ep = f"ipc://{sockdir}/c.sock"
    coord = subprocess.Popen([ht_bin, "coordinator", "--model-spec", str(spec), "--bind", ep, "--steps", "40", "--samples", "2",
                              "--summary", str(tmp_path / "summary.json"), *TINY_RUN],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    bad = subprocess.Popen([sys.executable, str(TINY), "--role", "trainer", "--connect", ep, "--raise-at-step", "5",
                            "--delay", "0.01"], env=env(), stderr=subprocess.PIPE, text=True)
    good = [subprocess.Popen([sys.executable, str(TINY), "--role", r, "--connect", ep, "--delay", "0.01"], env=env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for r in ("trainer", "validator")]
    try:
        assert bad.wait(timeout=60) == 1
        err = bad.stderr.read()
        assert "loss_and_grad raised" in err and "the user's loss function failed" in err
        out, _ = coord.communicate(timeout=120)
        assert coord.returncode == 0, out
        assert "left: worker error" in out                     # it said goodbye: its task was re-issued at once
        assert json.load(open(tmp_path / "summary.json"))["steps"] == 40
    finally:
        for p in [coord, bad, *good]:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_pipelined_sdk_runs_are_bit_identical_and_validate_the_final_weights(ht_bin, tmp_path):
    # --pipelined on (docs/protocol.md §5): the same bits with 2 trainers or 1, a different run
    # from lockstep, and the summary's valid_loss is the validation loss of the exported final
    # w = φ(λ̂) — the last validation task is made from the final φ and λ̂, not from the
    # one-update-older task parameters the steps' tasks use.
    runs = [tiny_run(ht_bin, str(tmp_path / name), steps=30, trainers=n, extra=["--pipelined", "on"])
            for name, n in (("a", 2), ("b", 1))]
    lockstep = tiny_run(ht_bin, str(tmp_path / "lockstep"), steps=30)
    (wa, la, _), (wb, lb, _) = [load_answer(r["answer"]) for r in runs]
    assert runs[0]["summary"]["steps"] == 30 and runs[0]["summary"]["hypergradients_applied"] == 30
    assert la.tobytes() == lb.tobytes() and all(wa[k].tobytes() == wb[k].tobytes() for k in wa)
    assert runs[0]["summary"]["valid_loss"] == runs[1]["summary"]["valid_loss"]
    assert la.tobytes() != load_answer(lockstep["answer"])[1].tobytes()
    (_, _), (xv, yv) = tiny.data()
    w = np.concatenate([wa["weight"].reshape(-1), wa["bias"]])
    assert tiny.numpy_loss(w, xv, yv)[0] == runs[0]["summary"]["valid_loss"]
