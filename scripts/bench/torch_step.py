#!/usr/bin/env python3
"""The Algorithm 3 step of numpy_step.py, written with PyTorch CPU tensors (1 thread).

Same configurations, data, step structure and hand-written gradients (no autograd) as
numpy_step.py; float32. If PyTorch is not installed, says so on stderr and exits 0.

Usage: python3 scripts/bench/torch_step.py [--configs fig4,fig7,fig5,deep] [--seconds 5]
       [--repeats 3] [--data data/mnist]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy_step as ns  # noqa: E402  (sets OMP/OPENBLAS/MKL_NUM_THREADS=1 before any BLAS loads)

try:
    import torch  # noqa: E402
except ImportError:
    print("torch_step.py: PyTorch is not installed, so there is no PyTorch measurement to make; "
          "skipping (install torch for CPU and rerun to compare).", file=sys.stderr)
    sys.exit(0)

import argparse  # noqa: E402
import json  # noqa: E402

torch.set_num_threads(1)
DT = torch.float32


class Problem:
    """Torch twin of numpy_step.Problem (same layout and math)."""

    def __init__(self, cfg):
        ref = ns.Problem(cfg)
        self.shapes, self.D, self.H, self.K, self.P = ref.shapes, ref.D, ref.H, ref.K, ref.P
        self.scope, self.relu_hidden = ref.scope, ref.relu_hidden
        self.group = torch.from_numpy(ref.group).long() if hasattr(ref, "group") else None

    def split_phi(self, phi):
        H, D, K = self.H, self.D, self.K
        if K is None:
            return phi[:H * D].view(H, D), phi[H * D:]
        p = 0
        C = phi[p:p + H * K].view(H, K); p += H * K
        c = phi[p:p + K]; p += K
        B = phi[p:p + K * D].view(K, D); p += K * D
        return C, c, B, phi[p:]

    def split_w(self, w):
        out, p = [], 0
        for a, b in self.shapes:
            W = w[p:p + a * b].view(a, b); p += a * b
            out.append((W, w[p:p + b])); p += b
        return out

    def hyper_forward(self, phi, lam):
        if self.K is None:
            A, b = self.split_phi(phi)
            return torch.addmv(b, A.t(), lam), None
        C, c, B, b = self.split_phi(phi)
        z = torch.addmv(c, C.t(), lam)
        h = torch.relu(z) if self.relu_hidden else z
        return torch.addmv(b, B.t(), h), (z, h)

    def hyper_backward_phi(self, phi, lam, cache, gw, out):
        if self.K is None:
            H, D = self.H, self.D
            torch.outer(lam, gw, out=out[:H * D].view(H, D))
            out[H * D:].copy_(gw)
            return
        C, c, B, b = self.split_phi(phi)
        z, h = cache
        gz = torch.mv(B, gw)
        if self.relu_hidden:
            gz.mul_(z > 0)
        gC, gc, gB, gb = self.split_phi(out)
        torch.outer(lam, gz, out=gC)
        gc.copy_(gz)
        torch.outer(h, gw, out=gB)
        gb.copy_(gw)

    def hyper_backward_lambda(self, phi, cache, gw):
        if self.K is None:
            A, _ = self.split_phi(phi)
            return torch.mv(A, gw)
        C, c, B, b = self.split_phi(phi)
        z, h = cache
        gz = torch.mv(B, gw)
        if self.relu_hidden:
            gz.mul_(z > 0)
        return torch.mv(C, gz)

    def mlp_loss_grad(self, w, X, y):
        params = self.split_w(w)
        acts, zs = [X], []
        a = X
        for l, (W, b) in enumerate(params):
            z = torch.addmm(b, a, W)
            zs.append(z)
            a = torch.relu(z) if l < len(params) - 1 else z
            acts.append(a)
        d = acts[-1].clone()
        n = d.shape[0]
        d[torch.arange(n), y] -= 1
        size = d.numel()
        loss = float(torch.dot(d.view(-1), d.view(-1))) / size
        d.mul_(2.0 / size)
        gw = torch.empty(self.D, dtype=DT)
        gparams = self.split_w(gw)
        for l in range(len(params) - 1, -1, -1):
            gW, gb = gparams[l]
            torch.mm(acts[l].t(), d, out=gW)
            torch.sum(d, 0, out=gb)
            if l > 0:
                d = torch.mm(d, params[l][0].t())
                d.mul_(zs[l - 1] > 0)
        return loss, gw

    def reg_add_grad(self, w, lam, gw):
        e = torch.exp(lam)
        if self.scope == "global":
            e0 = float(e[0])
            gw.add_(w, alpha=2 * e0)
            return e0 * float(torch.dot(w, w))
        coef = e if self.scope == "per-weight" else torch.cat([e, e.new_zeros(1)])[self.group]
        cw = coef * w
        gw.add_(cw, alpha=2)
        return float(torch.dot(cw, w))


class Adam:
    def __init__(self, n, lr, b1=0.9, b2=0.999, eps=1e-8):
        self.m = torch.zeros(n, dtype=DT)
        self.v = torch.zeros(n, dtype=DT)
        self.tmp = torch.empty(n, dtype=DT)
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0

    def step(self, params, grad, scale=1.0):
        self.t += 1
        b1, b2, t, tmp = self.b1, self.b2, self.t, self.tmp
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        alpha = self.lr * c2 ** 0.5 / c1
        eps_hat = self.eps * c2 ** 0.5
        torch.mul(grad, scale, out=tmp)
        self.m.mul_(b1).add_(tmp, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(tmp, tmp, value=1 - b2)
        torch.sqrt(self.v, out=tmp)
        tmp.add_(eps_hat)
        params.addcdiv_(self.m, tmp, value=-alpha)


class Run:
    def __init__(self, cfg, train, valid, seed=1):
        self.cfg = cfg
        self.pb = Problem(cfg)
        self.gen = torch.Generator().manual_seed(seed)
        self.xt, self.yt = torch.from_numpy(train[0]), torch.from_numpy(train[1])
        self.xv, self.yv = torch.from_numpy(valid[0]), torch.from_numpy(valid[1])
        self.phi = cfg["init_scale"] * torch.randn(self.pb.P, generator=self.gen, dtype=DT)
        self.lam_hat = torch.full((self.pb.H,), cfg["lambda_init"], dtype=DT)
        self.opt_phi = Adam(self.pb.P, cfg["phi_lr"])
        self.opt_lam = Adam(self.pb.H, cfg["lambda_lr"])
        self.grad_sum = torch.empty(self.pb.P, dtype=DT)
        self.grad_task = torch.empty(self.pb.P, dtype=DT)

    def rows(self, batch, n):
        if batch >= n:
            return None
        return torch.randint(0, n, (batch,), generator=self.gen)

    def step(self):
        cfg, pb = self.cfg, self.pb
        S = cfg["samples"]
        total = 0.0
        for s in range(S):
            lam = self.lam_hat + cfg["sigma"] * torch.randn(pb.H, generator=self.gen, dtype=DT)
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
                self.grad_sum.add_(self.grad_task)
        r = self.rows(cfg["valid_batch"], self.xv.shape[0])
        X, y = (self.xv, self.yv) if r is None else (self.xv[r], self.yv[r])
        w, cache = pb.hyper_forward(self.phi, self.lam_hat)
        vloss, gw = pb.mlp_loss_grad(w, X, y)
        glam = pb.hyper_backward_lambda(self.phi, cache, gw)
        self.opt_phi.step(self.phi, self.grad_sum, scale=1.0 / S)
        self.opt_lam.step(self.lam_hat, glam)
        return total / S, vloss


def blas_info():
    try:
        cfg = torch.__config__.show()
        for part in cfg.replace("\n", ",").split(","):
            part = part.strip()
            if part.startswith("BLAS_INFO="):
                return part.split("=", 1)[1]
    except Exception:  # noqa: BLE001
        pass
    return "unknown"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="fig4,fig7,fig5,deep")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each timed window")
    ap.add_argument("--repeats", type=int, default=3, help="timed windows per configuration (median reported)")
    ap.add_argument("--data", default=os.path.join(ns.ROOT, "data", "mnist"))
    args = ap.parse_args(argv)
    names = [n for n in args.configs.split(",") if n]
    for n in names:
        if n not in ns.CONFIGS:
            ap.error(f"unknown configuration {n!r}; choose from {', '.join(ns.CONFIGS)}")
    cache = {}
    with torch.no_grad():
        for name in names:
            cfg = ns.CONFIGS[name]
            key = (cfg["n_train"], cfg["n_valid"])
            if key not in cache:
                cache.clear()
                cache[key] = ns.load_mnist(args.data, *key)
            train, valid = cache[key]
            run = Run(cfg, train, valid)
            rate, rates, cpu_rate = ns.measure(run.step, args.seconds, args.repeats)
            train_loss, valid_loss = run.step()
            if not (train_loss == train_loss and valid_loss == valid_loss):
                raise RuntimeError(f"{name}: NaN loss")
            print(json.dumps({
                "config": name, "steps_per_second": round(rate, 1), "impl": "torch",
                "torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_info(),
                "steps_per_cpu_second": round(cpu_rate, 1),
                "windows_steps_per_second": [round(r, 1) for r in rates], "window_seconds": args.seconds,
                "phi_params": run.pb.P, "hyperparameters": run.pb.H,
            }), flush=True)


if __name__ == "__main__":
    main()
