#!/usr/bin/env python3
"""One Algorithm 3 step (joint hyper-training, DESIGN.md section 1) in numpy, for speed comparison.

Per step, as Sources/HyperOpt/LocalRun.swift does it:
  for s in 1..S:  lambda_s = lambda_hat + sigma*eps;  minibatch rows drawn with replacement
                  (or the whole training set, in order, when the batch covers it);
                  w = phi(lambda_s);  L_train = MSE(f(X_rows; w)) + sum_g exp(lambda_g)*||w_g||^2;
                  dL_train/dphi by hand-written backpropagation through the MLP and the hypernet;
                  the per-sample phi-gradients are summed.
  validation:     1,000 validation rows with replacement; w = phi(lambda_hat);
                  dL_valid/dlambda_hat (through the hypernet; computed at the pre-step phi).
  updates:        Adam on phi with the mean of the S gradients, Adam on lambda_hat.

Everything is float32 (as the Swift training path), dense numpy matrices, single-threaded
OpenBLAS. Configurations are those of Sources/HyperOpt/StandardConfigs.swift. Prints one JSON
line per configuration:
  {"config": name, "steps_per_second": x, "impl": "numpy", "numpy": version, "blas": info, ...}

Usage: python3 scripts/bench/numpy_step.py [--configs fig4,fig7,fig5,deep] [--seconds 5]
       [--repeats 3] [--data data/mnist]
       python3 scripts/bench/numpy_step.py --check   # gradients vs scripts/oracle, float64
"""

import os

# Single-threaded BLAS: must be set before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import ctypes
import json
import statistics
import sys
import time

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DTYPE = np.float32

# Sources/HyperOpt/StandardConfigs.swift on top of ExperimentConfig's defaults
# (joint algorithm, squared L2, MSE, sigma 0.5, Adam phi 1e-3 / lambda 0.003, lambda_0 = -3.5,
# phi ~ 0.01 N(0,1), n_valid 10,000).
DEFAULTS = dict(sigma=0.5, phi_lr=1e-3, lambda_lr=0.003, lambda_init=-3.5, init_scale=0.01,
                n_valid=10_000, valid_batch=1000, samples=2)
CONFIGS = {
    "fig4": dict(layers=[784, 10], scope="global", hypernet="linear", n_train=10, batch=10),
    "fig7": dict(layers=[784, 10], scope="per-class", hypernet="linear", n_train=50_000, batch=100),
    "fig5": dict(layers=[784, 10], scope="per-weight", hypernet="factorized:10", n_train=10_000, batch=1000),
    "deep": dict(layers=[784, 100, 100, 10], scope="per-weight", hypernet="factorized:10", n_train=10_000, batch=1000),
}
for _c in CONFIGS.values():
    for _k, _v in DEFAULTS.items():
        _c.setdefault(_k, _v)


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------

def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data for dimensions {dims}")
    return data.reshape(dims)


def load_mnist(data_dir, n_train, n_valid):
    """Train = first n_train training images, valid = the next n_valid; pixels/255, 784 wide."""
    images = read_idx(os.path.join(data_dir, "train-images.idx3-ubyte"))
    labels = read_idx(os.path.join(data_dir, "train-labels.idx1-ubyte"))
    if n_train + n_valid > images.shape[0]:
        raise ValueError(f"n_train + n_valid = {n_train + n_valid} > {images.shape[0]} images")
    x = images.reshape(images.shape[0], -1)

    def split(a, b):
        return (x[a:b].astype(DTYPE) / DTYPE(255)), labels[a:b].astype(np.int64)

    return split(0, n_train), split(n_train, n_train + n_valid)


# ---------------------------------------------------------------------------------------
# Model pieces
# ---------------------------------------------------------------------------------------

class Problem:
    """Shapes and parameter layout of one configuration."""

    def __init__(self, cfg):
        self.layers = cfg["layers"]
        self.shapes = [(self.layers[l], self.layers[l + 1]) for l in range(len(self.layers) - 1)]
        self.D = sum(a * b + b for a, b in self.shapes)
        self.scope = cfg["scope"]
        if self.scope == "global":
            self.H = 1
        elif self.scope == "per-class":
            self.H = self.layers[-1]
        elif self.scope == "per-layer":
            self.H = len(self.shapes)
        elif self.scope == "per-weight":
            self.H = self.D
        else:
            raise ValueError(self.scope)
        kind = cfg["hypernet"]
        self.K = None if kind == "linear" else int(kind.split(":")[1])
        self.relu_hidden = kind.startswith("mlp")
        H, D, K = self.H, self.D, self.K
        self.P = H * D + D if K is None else H * K + K + K * D + D
        # Group id per weight (for per-class / per-layer); unregularized weights map to H.
        if self.scope in ("per-class", "per-layer"):
            parts = []
            for l, (a, b) in enumerate(self.shapes):
                if self.scope == "per-layer":
                    parts.append(np.full(a * b + b, l))
                elif l < len(self.shapes) - 1:
                    parts.append(np.full(a * b + b, H))
                else:
                    parts.append(np.concatenate([np.tile(np.arange(b), a), np.arange(b)]))
            self.group = np.concatenate(parts)

    def split_phi(self, phi):
        H, D, K = self.H, self.D, self.K
        if K is None:
            return phi[:H * D].reshape(H, D), phi[H * D:]
        p = 0
        C = phi[p:p + H * K].reshape(H, K); p += H * K
        c = phi[p:p + K]; p += K
        B = phi[p:p + K * D].reshape(K, D); p += K * D
        return C, c, B, phi[p:]

    def split_w(self, w):
        out, p = [], 0
        for a, b in self.shapes:
            W = w[p:p + a * b].reshape(a, b); p += a * b
            out.append((W, w[p:p + b])); p += b
        return out

    # w = phi(lambda) ----------------------------------------------------------------------
    def hyper_forward(self, phi, lam):
        if self.K is None:
            A, b = self.split_phi(phi)
            return b + lam @ A, None
        C, c, B, b = self.split_phi(phi)
        z = c + lam @ C
        h = np.maximum(z, 0) if self.relu_hidden else z
        return b + h @ B, (z, h)

    def hyper_backward_phi(self, phi, lam, cache, gw, out):
        """Writes dL/dphi into `out` given dL/dw."""
        if self.K is None:
            H, D = self.H, self.D
            np.multiply.outer(lam, gw, out=out[:H * D].reshape(H, D))
            out[H * D:] = gw
            return
        C, c, B, b = self.split_phi(phi)
        z, h = cache
        gz = B @ gw
        if self.relu_hidden:
            gz *= z > 0
        gC, gc, gB, gb = self.split_phi(out)
        np.multiply.outer(lam, gz, out=gC)
        gc[:] = gz
        np.multiply.outer(h, gw, out=gB)
        gb[:] = gw

    def hyper_backward_lambda(self, phi, cache, gw):
        if self.K is None:
            A, _ = self.split_phi(phi)
            return A @ gw
        C, c, B, b = self.split_phi(phi)
        z, h = cache
        gz = B @ gw
        if self.relu_hidden:
            gz *= z > 0
        return C @ gz

    # L_pred and dL_pred/dw --------------------------------------------------------------------
    def mlp_loss_grad(self, w, X, y):
        params = self.split_w(w)
        acts, zs = [X], []
        a = X
        for l, (W, b) in enumerate(params):
            z = a @ W
            z += b
            zs.append(z)
            a = np.maximum(z, 0) if l < len(params) - 1 else z
            acts.append(a)
        out = acts[-1]
        n, classes = out.shape
        d = out.copy()
        d[np.arange(n), y] -= 1                         # f(x) - one_hot
        loss = float(np.vdot(d, d)) / d.size
        d *= DTYPE(2.0 / d.size)
        gw = np.empty(self.D, dtype=DTYPE)
        gparams = self.split_w(gw)
        for l in range(len(params) - 1, -1, -1):
            gW, gb = gparams[l]
            np.matmul(acts[l].T, d, out=gW)
            np.sum(d, axis=0, out=gb)
            if l > 0:
                d = d @ params[l][0].T
                d *= zs[l - 1] > 0
        return loss, gw

    # L_reg and its w-gradient (added into gw) ------------------------------------------------
    def reg_add_grad(self, w, lam, gw):
        e = np.exp(lam)
        if self.scope == "global":
            sq = float(np.vdot(w, w))
            gw += DTYPE(2 * e[0]) * w
            return float(e[0]) * sq
        if self.scope == "per-weight":
            coef = e
        else:
            coef = np.append(e, DTYPE(0))[self.group]
        cw = coef * w
        gw += 2 * cw
        return float(np.vdot(cw, w))


class Adam:
    def __init__(self, n, lr, b1=0.9, b2=0.999, eps=1e-8):
        self.m = np.zeros(n, DTYPE)
        self.v = np.zeros(n, DTYPE)
        self.tmp = np.empty(n, DTYPE)
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0

    def step(self, params, grad, scale=1.0):
        self.t += 1
        b1, b2, t, tmp = self.b1, self.b2, self.t, self.tmp
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        alpha = DTYPE(self.lr * np.sqrt(c2) / c1)
        eps_hat = DTYPE(self.eps * np.sqrt(c2))
        # m <- b1*m + (1-b1)*g,  v <- b2*v + (1-b2)*g^2  with g = scale*grad, in place.
        np.multiply(grad, DTYPE((1 - b1) * scale), out=tmp)
        self.m *= DTYPE(b1)
        self.m += tmp
        np.multiply(grad, grad, out=tmp)
        tmp *= DTYPE((1 - b2) * scale * scale)
        self.v *= DTYPE(b2)
        self.v += tmp
        # params <- params - alpha * m / (sqrt(v) + eps_hat)
        np.sqrt(self.v, out=tmp)
        tmp += eps_hat
        np.divide(self.m, tmp, out=tmp)
        tmp *= alpha
        params -= tmp


class Run:
    """phi, lambda_hat, optimizers and data for one configuration."""

    def __init__(self, cfg, train, valid, seed=1):
        self.cfg = cfg
        self.pb = Problem(cfg)
        self.rng = np.random.default_rng(seed)
        self.xt, self.yt = train
        self.xv, self.yv = valid
        self.phi = (cfg["init_scale"] * self.rng.standard_normal(self.pb.P)).astype(DTYPE)
        self.lam_hat = np.full(self.pb.H, cfg["lambda_init"], DTYPE)
        self.opt_phi = Adam(self.pb.P, cfg["phi_lr"])
        self.opt_lam = Adam(self.pb.H, cfg["lambda_lr"])
        self.grad_sum = np.empty(self.pb.P, DTYPE)
        self.grad_task = np.empty(self.pb.P, DTYPE)

    def rows(self, batch, n):
        if batch >= n:
            return None                                          # the whole set, in order
        return self.rng.integers(0, n, size=batch)

    def step(self):
        cfg, pb = self.cfg, self.pb
        S = cfg["samples"]
        total = 0.0
        for s in range(S):
            lam = self.lam_hat + DTYPE(cfg["sigma"]) * self.rng.standard_normal(pb.H, dtype=DTYPE)
            r = self.rows(cfg["batch"], self.xt.shape[0])
            X, y = (self.xt, self.yt) if r is None else (self.xt[r], self.yt[r])
            w, cache = pb.hyper_forward(self.phi, lam)
            loss, gw = pb.mlp_loss_grad(w, X, y)
            loss += pb.reg_add_grad(w, lam, gw)
            total += loss
            if s == 0:
                pb.hyper_backward_phi(self.phi, lam, cache, gw, self.grad_sum)
            else:
                pb.hyper_backward_phi(self.phi, lam, cache, gw, self.grad_task)
                self.grad_sum += self.grad_task
        # Validation hypergradient at the pre-step phi.
        r = self.rows(cfg["valid_batch"], self.xv.shape[0])
        X, y = (self.xv, self.yv) if r is None else (self.xv[r], self.yv[r])
        w, cache = pb.hyper_forward(self.phi, self.lam_hat)
        vloss, gw = pb.mlp_loss_grad(w, X, y)
        glam = pb.hyper_backward_lambda(self.phi, cache, gw)
        self.opt_phi.step(self.phi, self.grad_sum, scale=1.0 / S)
        self.opt_lam.step(self.lam_hat, glam.astype(DTYPE, copy=False))
        return total / S, vloss


# ---------------------------------------------------------------------------------------
# BLAS introspection and timing
# ---------------------------------------------------------------------------------------

def blas_info():
    try:
        b = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info = f"{b.get('name', '?')} {b.get('version', '?')}"
        if b.get("openblas configuration"):
            info += f" ({' '.join(b['openblas configuration'].split())})"
    except Exception as e:  # noqa: BLE001 - older numpy
        info = f"unknown ({e})"
    return info


def openblas_runtime():
    """Threads and kernel of the OpenBLAS loaded in this process (threadpoolctl if installed)."""
    try:
        import threadpoolctl
        for d in threadpoolctl.threadpool_info():
            if d.get("internal_api") == "openblas":
                return {"threads": d.get("num_threads"), "corename": d.get("architecture"), "via": "threadpoolctl"}
    except ImportError:
        pass
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f
                           if "openblas" in line.lower() and ".so" in line.split()[-1]})
        for path in libs:
            lib = ctypes.CDLL(path)
            for prefix, suffix in (("scipy_openblas_", "64_"), ("openblas_", "64_"), ("openblas_", "")):
                try:
                    nt = getattr(lib, f"{prefix}get_num_threads{suffix}")
                    cn = getattr(lib, f"{prefix}get_corename{suffix}")
                except AttributeError:
                    continue
                nt.restype = ctypes.c_int
                cn.restype = ctypes.c_char_p
                return {"threads": nt(), "corename": cn().decode(), "via": "ctypes"}
    except OSError:
        pass
    return {"threads": None, "corename": None, "via": "unavailable"}


def measure(step, seconds, repeats, warmup_seconds=1.0):
    """Median over `repeats` windows of ~`seconds` each, after a warm-up: steps per wall-clock
    second, and steps per second of this process's CPU time (less sensitive to other jobs on a
    shared machine; BLAS is single-threaded, so CPU time is the step's own compute)."""
    t0 = time.perf_counter()
    n = 0
    while n < 3 or time.perf_counter() - t0 < warmup_seconds:
        step()
        n += 1
    wall, cpu = [], []
    for _ in range(repeats):
        n = 0
        t0, c0 = time.perf_counter(), time.process_time()
        while True:
            step()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= seconds:
                break
        dc = time.process_time() - c0
        wall.append(n / dt)
        cpu.append(n / dc if dc > 0 else float("nan"))
    return statistics.median(wall), wall, statistics.median(cpu)


def self_check():
    """Checks this file's gradient code, in float64, against the independent oracle
    (scripts/oracle/make_fixtures.py, itself verified by complex-step differentiation) on
    small problems of every hypernet kind and scope. Returns the worst relative error."""
    global DTYPE
    sys.path.insert(0, os.path.join(ROOT, "scripts", "oracle"))
    import make_fixtures as mf
    saved, DTYPE = DTYPE, np.float64
    try:
        rng = np.random.default_rng(3)
        worst = 0.0
        for layers in ([12, 4], [12, 6, 4], [12, 6, 5, 4]):
            for scope in ("global", "per-class", "per-layer", "per-weight"):
                for kind in ("linear", "mlp:3", "factorized:2"):
                    pb = Problem(dict(layers=layers, scope=scope, hypernet=kind))
                    g, H = mf.groups(layers, scope)
                    setup = dict(sizes=layers, kind=kind, g=g, H=H, D=len(g))
                    phi = 0.3 * rng.standard_normal(pb.P)
                    lam = -1 + 0.5 * rng.standard_normal(H)
                    X = rng.random((7, layers[0]))
                    y = rng.integers(0, layers[-1], 7)
                    ref = mf.everything(phi, lam, setup, X, np.eye(layers[-1])[y], "squared", "mse")
                    w, cache = pb.hyper_forward(phi, lam)
                    l_pred, gw = pb.mlp_loss_grad(w, X, y)
                    gw_pred = gw.copy()
                    l_reg = pb.reg_add_grad(w, lam, gw)
                    gphi = np.empty(pb.P)
                    pb.hyper_backward_phi(phi, lam, cache, gw, gphi)
                    glam = pb.hyper_backward_lambda(phi, cache, gw_pred)
                    worst = max(worst, mf.rel_err(w, ref["w"]), mf.rel_err(gw_pred, ref["grad_w_pred"]),
                                mf.rel_err(gphi, ref["grad_phi"]), mf.rel_err(glam, ref["grad_lambda_pred"]),
                                abs(l_pred - ref["l_pred"]) / abs(ref["l_pred"]),
                                abs(l_reg - ref["l_reg"]) / abs(ref["l_reg"]))
        return worst
    finally:
        DTYPE = saved


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="fig4,fig7,fig5,deep")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each timed window")
    ap.add_argument("--repeats", type=int, default=3, help="timed windows per configuration (median reported)")
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "mnist"))
    ap.add_argument("--check", action="store_true",
                    help="only check this file's gradients against scripts/oracle (float64) and exit")
    args = ap.parse_args(argv)
    if args.check:
        worst = self_check()
        print(f"numpy_step.py gradients vs the oracle: worst relative error {worst:.2e}")
        sys.exit(0 if worst < 1e-10 else 1)
    names = [n for n in args.configs.split(",") if n]
    for n in names:
        if n not in CONFIGS:
            ap.error(f"unknown configuration {n!r}; choose from {', '.join(CONFIGS)}")
    rt = openblas_runtime()
    if rt["threads"] not in (None, 1):
        print(f"warning: OpenBLAS reports {rt['threads']} threads, expected 1", file=sys.stderr)
    cache = {}
    for name in names:
        cfg = CONFIGS[name]
        key = (cfg["n_train"], cfg["n_valid"])
        if key not in cache:
            cache.clear()
            cache[key] = load_mnist(args.data, *key)
        train, valid = cache[key]
        run = Run(cfg, train, valid)
        rate, rates, cpu_rate = measure(run.step, args.seconds, args.repeats)
        train_loss, valid_loss = run.step()
        if not (np.isfinite(train_loss) and np.isfinite(valid_loss)):
            raise RuntimeError(f"{name}: non-finite loss")
        print(json.dumps({
            "config": name, "steps_per_second": round(rate, 1), "impl": "numpy",
            "numpy": np.__version__, "blas": blas_info(),
            "blas_threads": rt["threads"], "blas_corename": rt["corename"],
            "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
            "steps_per_cpu_second": round(cpu_rate, 1),
            "windows_steps_per_second": [round(r, 1) for r in rates], "window_seconds": args.seconds,
            "phi_params": run.pb.P, "hyperparameters": run.pb.H,
        }), flush=True)


if __name__ == "__main__":
    main()
