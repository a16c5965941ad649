#!/usr/bin/env python3
"""Independent float64 oracle for Hypertrain's training-loss gradients.

Writes Tests/ModelsTests/Fixtures/oracle.json: small deterministic problems (12 inputs,
4 classes, 9 examples, an explicit minibatch with a repeated row) and, for each combination
of elementary model x hypernetwork kind x regularization scope x norm x prediction loss
(fewer norm x loss variants for the largest hypernets, see FULL_VARIANTS_MAX_PHI),

    w = phi(lam), L_pred, L_reg, L_train = L_pred + L_reg,
    dL_pred/dw, dL_train/dphi, dL_train/dlam (through w and directly through L_reg),
    dL_pred(phi(lam))/dlam (the validation hypergradient), and the direct dL_reg/dlam term.

The implementation follows the math of DESIGN.md section 1 with dense numpy matrices
(the weights are unpacked into per-layer matrices, the regularizer groups are built as
per-layer arrays of group ids) and hand-derived backward passes. Every case's gradients
are checked here before the file is written, with the complex-step method
(Im f(x + i*h*v) / h, exact to rounding, no subtraction error): along random directions
in phi, and coordinate by coordinate in lam (and in phi when phi is small).

Usage: python3 scripts/oracle/make_fixtures.py [--out PATH]
"""

import argparse
import json
import os
import sys

import numpy as np

SEED = 20240611
INPUTS = 12
CLASSES = 4
EXAMPLES = 9
ROWS = [4, 0, 7, 4, 2, 8, 1]            # explicit minibatch; row 4 is repeated
MODELS = [[12, 4], [12, 6, 4], [12, 6, 5, 4]]
KINDS = ["linear", "mlp:3", "factorized:2"]
SCOPES = ["global", "per-class", "per-layer", "per-weight"]
NORMS = ["squared", "unsquared"]
LOSSES = ["mse", "gaussian"]
GAUSS_SCALE = 50.0
GAUSS_OFFSET = -1.3836465597893728       # log(0.1 * sqrt(2 pi))
# To keep the fixture near 2 MB, a (model, kind, scope) setup with more than
# FULL_VARIANTS_MAX_PHI hypernet parameters keeps two of the four norm x loss variants
# (squared+mse, unsquared+gaussian), and one with more than TWO_VARIANTS_MAX_PHI (only the
# linear per-weight hypernets of the 2- and 3-layer models, 11,342 and 18,906 parameters)
# keeps one (unsquared+mse and squared+gaussian respectively). Every norm and loss still
# appears with every model, kind and scope.
FULL_VARIANTS_MAX_PHI = 2000
TWO_VARIANTS_MAX_PHI = 10000
OUTPUT_DIGITS = 12                       # significant digits of stored outputs
MARGIN = 1e-3                            # |pre-activation| and |w_i| kept away from 0


def sig(x, digits):
    """Rounds to `digits` significant digits (the stored decimal then parses back exactly)."""
    return np.array([float(f"{v:.{digits}g}") for v in np.asarray(x, dtype=np.float64).ravel()]).reshape(np.shape(x))


# ---------------------------------------------------------------------------------------
# Elementary model: per-layer matrices, forward, loss, backward
# ---------------------------------------------------------------------------------------

def layer_shapes(sizes):
    return [(sizes[l], sizes[l + 1]) for l in range(len(sizes) - 1)]


def unpack(w, sizes):
    """Flat w -> [(W_l [in,out], b_l [out])] in the documented order (W row-major, then b)."""
    params, pos = [], 0
    for n_in, n_out in layer_shapes(sizes):
        W = w[pos:pos + n_in * n_out].reshape(n_in, n_out)
        pos += n_in * n_out
        b = w[pos:pos + n_out]
        pos += n_out
        params.append((W, b))
    assert pos == len(w)
    return params


def pack(parts):
    return np.concatenate([np.concatenate([W.ravel(), b.ravel()]) for W, b in parts])


def relu(z):
    # Works for complex-step perturbations: the branch follows the real part.
    return np.where(z.real > 0, z, 0)


def mlp_forward(w, sizes, X):
    """Returns (Y, [pre-activations Z_1..Z_L], [layer inputs A_0 = X, A_1..A_{L-1}])."""
    params = unpack(w, sizes)
    A, Zs, As = X, [], []
    for l, (W, b) in enumerate(params):
        As.append(A)
        Z = A @ W + b
        Zs.append(Z)
        A = relu(Z) if l < len(params) - 1 else Z
    return A, Zs, As


def loss_scale_offset(loss):
    return (1.0, 0.0) if loss == "mse" else (GAUSS_SCALE, GAUSS_OFFSET)


def pred_loss(w, sizes, X, T, loss):
    Y, _, _ = mlp_forward(w, sizes, X)
    s, o = loss_scale_offset(loss)
    return s * np.mean((Y - T) ** 2) + o


def pred_loss_grad(w, sizes, X, T, loss):
    """L_pred and dL_pred/dw by backpropagation."""
    params = unpack(w, sizes)
    Y, Zs, As = mlp_forward(w, sizes, X)
    s, o = loss_scale_offset(loss)
    value = s * np.mean((Y - T) ** 2) + o
    dZ = 2.0 * s * (Y - T) / Y.size
    grads = [None] * len(params)
    for l in range(len(params) - 1, -1, -1):
        W, _ = params[l]
        grads[l] = (As[l].T @ dZ, dZ.sum(axis=0))
        if l > 0:
            dZ = (dZ @ W.T) * (Zs[l - 1].real > 0)
    return value, pack(grads)


# ---------------------------------------------------------------------------------------
# Regularizer
# ---------------------------------------------------------------------------------------

def groups(sizes, scope):
    """Group id of every flat weight (-1: unregularized) and the number of groups H."""
    shapes = layer_shapes(sizes)
    L = len(shapes)
    parts = []
    if scope == "global":
        parts = [(np.zeros(s, int), np.zeros(s[1], int)) for s in shapes]
        H = 1
    elif scope == "per-layer":
        parts = [(np.full(s, l), np.full(s[1], l)) for l, s in enumerate(shapes)]
        H = L
    elif scope == "per-class":
        parts = [(np.full(s, -1), np.full(s[1], -1)) for s in shapes[:-1]]
        n_in, n_out = shapes[-1]
        # weight (r, c) and bias c of the last layer feed output class c
        parts.append((np.tile(np.arange(n_out), (n_in, 1)), np.arange(n_out)))
        H = n_out
    elif scope == "per-weight":
        D = sum(a * b + b for a, b in shapes)
        return np.arange(D), D
    else:
        raise ValueError(scope)
    return pack(parts).astype(int), H


def reg_loss(w, lam, g, H, norm):
    S = np.zeros(H, dtype=np.result_type(w, lam))
    m = g >= 0
    np.add.at(S, g[m], w[m] ** 2)
    N = S if norm == "squared" else np.sqrt(S)
    return np.sum(np.exp(lam) * N)


def reg_loss_grad(w, lam, g, H, norm):
    """L_reg, dL_reg/dw, dL_reg/dlam."""
    m = g >= 0
    S = np.bincount(g[m], weights=w[m] ** 2, minlength=H)
    e = np.exp(lam)
    gw = np.zeros_like(w)
    if norm == "squared":
        value = np.sum(e * S)
        gw[m] = 2.0 * e[g[m]] * w[m]
        glam = e * S
    else:
        n = np.sqrt(S)
        value = np.sum(e * n)
        gw[m] = e[g[m]] * w[m] / n[g[m]]
        glam = e * n
    return value, gw, glam


# ---------------------------------------------------------------------------------------
# Hypernetwork
# ---------------------------------------------------------------------------------------

def hyper_hidden(kind):
    return None if kind == "linear" else int(kind.split(":")[1])


def hyper_count(kind, H, D):
    K = hyper_hidden(kind)
    return H * D + D if K is None else H * K + K + K * D + D


def hyper_split(phi, kind, H, D):
    K = hyper_hidden(kind)
    if K is None:
        return {"A": phi[:H * D].reshape(H, D), "b": phi[H * D:]}
    p = 0
    C = phi[p:p + H * K].reshape(H, K); p += H * K
    c = phi[p:p + K]; p += K
    B = phi[p:p + K * D].reshape(K, D); p += K * D
    b = phi[p:p + D]; p += D
    assert p == len(phi)
    return {"C": C, "c": c, "B": B, "b": b}


def hyper_forward(phi, lam, kind, H, D):
    """w = phi(lam) and the hidden pre-activation (None for linear)."""
    P = hyper_split(phi, kind, H, D)
    if kind == "linear":
        return P["b"] + lam @ P["A"], None
    z = P["c"] + lam @ P["C"]
    h = relu(z) if kind.startswith("mlp") else z
    return P["b"] + h @ P["B"], z


def hyper_backward(phi, lam, kind, H, D, gw):
    """Given dL/dw at w = phi(lam): dL/dphi (flat) and dL/dlam through w."""
    P = hyper_split(phi, kind, H, D)
    if kind == "linear":
        return np.concatenate([np.outer(lam, gw).ravel(), gw]), P["A"] @ gw
    z = P["c"] + lam @ P["C"]
    h = relu(z) if kind.startswith("mlp") else z
    gh = P["B"] @ gw
    gz = gh * (z > 0) if kind.startswith("mlp") else gh
    gphi = np.concatenate([np.outer(lam, gz).ravel(), gz, np.outer(h, gw).ravel(), gw])
    return gphi, P["C"] @ gz


# ---------------------------------------------------------------------------------------
# The composite training loss and its gradients
# ---------------------------------------------------------------------------------------

def train_loss(phi, lam, setup, X, T, norm, loss):
    w, _ = hyper_forward(phi, lam, setup["kind"], setup["H"], setup["D"])
    return pred_loss(w, setup["sizes"], X, T, loss) + reg_loss(w, lam, setup["g"], setup["H"], norm)


def valid_loss(phi, lam, setup, X, T, loss):
    w, _ = hyper_forward(phi, lam, setup["kind"], setup["H"], setup["D"])
    return pred_loss(w, setup["sizes"], X, T, loss)


def everything(phi, lam, setup, X, T, norm, loss):
    kind, H, D, sizes, g = setup["kind"], setup["H"], setup["D"], setup["sizes"], setup["g"]
    w, _ = hyper_forward(phi, lam, kind, H, D)
    l_pred, gw_pred = pred_loss_grad(w, sizes, X, T, loss)
    l_reg, gw_reg, glam_direct = reg_loss_grad(w, lam, g, H, norm)
    gphi, glam_w = hyper_backward(phi, lam, kind, H, D, gw_pred + gw_reg)
    _, glam_pred = hyper_backward(phi, lam, kind, H, D, gw_pred)
    return {
        "w": w, "l_pred": l_pred, "l_reg": l_reg, "l_train": l_pred + l_reg,
        "grad_w_pred": gw_pred, "grad_phi": gphi, "grad_lambda": glam_w + glam_direct,
        "grad_lambda_pred": glam_pred, "grad_lambda_direct": glam_direct,
    }


# ---------------------------------------------------------------------------------------
# Complex-step verification
# ---------------------------------------------------------------------------------------

def cs_directional(f, x, v, h=1e-30):
    return np.imag(f(x + 1j * h * v)) / h


def rel_err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = max(np.max(np.abs(b)), 1e-300)
    return float(np.max(np.abs(a - b)) / scale)


def verify(phi, lam, setup, X, T, norm, loss, out, rng):
    """Largest relative discrepancy between the hand-derived gradients and complex-step ones."""
    worst = 0.0
    ft = lambda p, l: train_loss(p, l, setup, X, T, norm, loss)
    fv = lambda p, l: valid_loss(p, l, setup, X, T, loss)
    # The values themselves.
    worst = max(worst, abs(ft(phi, lam) - out["l_train"]) / abs(out["l_train"]))
    # dL_train/dphi along random directions.
    for _ in range(3):
        v = rng.standard_normal(phi.size)
        worst = max(worst, rel_err(cs_directional(lambda p: ft(p, lam), phi, v), out["grad_phi"] @ v))
    # dL_train/dphi coordinate by coordinate when phi is small.
    if phi.size <= 1200:
        full = np.array([cs_directional(lambda p: ft(p, lam), phi, e) for e in np.eye(phi.size)])
        worst = max(worst, rel_err(full, out["grad_phi"]))
    # dL_train/dlam and dL_pred(phi(lam))/dlam coordinate by coordinate.
    E = np.eye(lam.size)
    worst = max(worst, rel_err([cs_directional(lambda l: ft(phi, l), lam, e) for e in E], out["grad_lambda"]))
    worst = max(worst, rel_err([cs_directional(lambda l: fv(phi, l), lam, e) for e in E], out["grad_lambda_pred"]))
    # dL_pred/dw along random directions.
    w = out["w"]
    for _ in range(3):
        v = rng.standard_normal(w.size)
        d = cs_directional(lambda x: pred_loss(x, setup["sizes"], X, T, loss), w, v)
        worst = max(worst, rel_err(d, out["grad_w_pred"] @ v))
    # And one central finite difference in plain float64, as an independent sanity check.
    v = rng.standard_normal(phi.size)
    eps = 1e-6
    fd = (ft(phi + eps * v, lam) - ft(phi - eps * v, lam)) / (2 * eps)
    if abs(fd - out["grad_phi"] @ v) > 1e-5 * max(abs(fd), 1e-3):
        raise AssertionError(f"finite difference disagrees: {fd} vs {out['grad_phi'] @ v}")
    return worst


# ---------------------------------------------------------------------------------------
# Problem generation
# ---------------------------------------------------------------------------------------

def make_data(rng):
    X = rng.uniform(0.0, 1.0, size=(EXAMPLES, INPUTS))
    X[rng.uniform(size=X.shape) < 0.5] = 0.0          # ~50 % zero pixels
    X = sig(X, 3)
    while True:
        labels = rng.integers(0, CLASSES, size=EXAMPLES)
        if len(set(labels[ROWS].tolist())) >= 3:
            break
    return X, labels


def make_setup(rng, sizes, kind, scope, X):
    g, H = groups(sizes, scope)
    D = len(g)
    K = hyper_hidden(kind)
    Xb = X[ROWS]
    for attempt in range(200):
        lam = sig(-2.5 + 0.5 * rng.standard_normal(H), 6)
        if K is None:
            A = 0.3 / np.sqrt(H) * rng.standard_normal((H, D))
            b = 0.3 * rng.standard_normal(D)
            phi = np.concatenate([A.ravel(), b])
        else:
            C = 0.3 / np.sqrt(H) * rng.standard_normal((H, K))
            c = 0.4 * rng.standard_normal(K)
            if kind.startswith("mlp"):
                c = np.abs(c) + 0.2
                c[-1] = -c[-1]                     # one hidden unit inactive: exercises the mask
            B = 0.3 * rng.standard_normal((K, D)) / np.sqrt(K)
            b = 0.3 * rng.standard_normal(D)
            phi = np.concatenate([C.ravel(), c, B.ravel(), b])
        phi = sig(phi, 5)
        w, z = hyper_forward(phi, lam, kind, H, D)
        # Keep every kink away: hidden pre-activations (hypernet and MLP) and, for the
        # unsquared norm, group norms / single weights, so the Float path sees the same branches.
        _, Zs, _ = mlp_forward(w, sizes, Xb)
        ok = all(np.min(np.abs(Z)) > MARGIN for Z in Zs[:-1])
        ok = ok and (z is None or np.min(np.abs(z)) > 0.05)
        ok = ok and np.min(np.abs(w)) > MARGIN
        if kind.startswith("mlp"):
            ok = ok and np.sum(z > 0) >= 1 and np.sum(z <= 0) >= 1
        if ok:
            return {"sizes": sizes, "kind": kind, "scope": scope, "g": g, "H": H, "D": D,
                    "phi": phi, "lambda": lam}
    raise RuntimeError(f"could not draw a well-separated problem for {sizes} {kind} {scope}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(root, "Tests", "ModelsTests", "Fixtures", "oracle.json"))
    args = ap.parse_args()

    rng = np.random.default_rng(SEED)
    check_rng = np.random.default_rng(SEED + 1)
    X, labels = make_data(rng)
    Xb = X[ROWS]
    T = np.eye(CLASSES)[labels[ROWS]]

    setups, cases = [], []
    worst = 0.0
    for sizes in MODELS:
        for kind in KINDS:
            for scope in SCOPES:
                s = make_setup(rng, sizes, kind, scope, X)
                setup_index = len(setups)
                P = hyper_count(kind, s["H"], s["D"])
                assert P == len(s["phi"])
                variants = [(n, l) for n in NORMS for l in LOSSES]
                if P > TWO_VARIANTS_MAX_PHI:
                    variants = [[("squared", "gaussian"), ("unsquared", "mse")][len(sizes) % 2]]
                elif P > FULL_VARIANTS_MAX_PHI:
                    variants = [("squared", "mse"), ("unsquared", "gaussian")]
                w = None
                for norm, loss in variants:
                    out = everything(s["phi"], s["lambda"], s, Xb, T, norm, loss)
                    err = verify(s["phi"], s["lambda"], s, Xb, T, norm, loss, out, check_rng)
                    if err > 1e-10:
                        raise AssertionError(f"{sizes} {kind} {scope} {norm} {loss}: gradient check {err:.3e}")
                    worst = max(worst, err)
                    w = out["w"]
                    cases.append({
                        "setup": setup_index, "norm": norm, "loss": loss,
                        "l_pred": out["l_pred"], "l_reg": out["l_reg"], "l_train": out["l_train"],
                        "grad_w_pred": out["grad_w_pred"], "grad_phi": out["grad_phi"],
                        "grad_lambda": out["grad_lambda"], "grad_lambda_pred": out["grad_lambda_pred"],
                        "grad_lambda_direct": out["grad_lambda_direct"],
                    })
                setups.append({
                    "layers": sizes, "hypernet": kind, "scope": s["scope"],
                    "phi": s["phi"], "lambda": s["lambda"], "w": w,
                })

    def out_list(a):
        return [float(v) for v in sig(a, OUTPUT_DIGITS).ravel()]

    doc = {
        "description": "Independent float64 numpy oracle for L_train(phi(lambda), lambda) and its gradients; "
                       "see scripts/oracle/README.md. Inputs (x, rows, phi, lambda) are exact; outputs are "
                       f"rounded to {OUTPUT_DIGITS} significant digits.",
        "generator": "python3 scripts/oracle/make_fixtures.py",
        "seed": SEED, "numpy": np.__version__,
        "gaussian_scale": GAUSS_SCALE, "gaussian_offset": GAUSS_OFFSET,
        "self_check_max_relative_error": worst,
        "input_size": INPUTS, "classes": CLASSES,
        "x": [[float(v) for v in r] for r in X], "labels": [int(v) for v in labels],
        "rows": ROWS,
        "setups": [{"layers": s["layers"], "hypernet": s["hypernet"], "scope": s["scope"],
                    "phi": [float(v) for v in s["phi"]], "lambda": [float(v) for v in s["lambda"]],
                    "w": out_list(s["w"])} for s in setups],
        "cases": [{k: (out_list(v) if isinstance(v, np.ndarray) else
                       (float(sig(v, OUTPUT_DIGITS)) if isinstance(v, (float, np.floating)) else v))
                   for k, v in c.items()} for c in cases],
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    size = os.path.getsize(args.out)
    print(f"wrote {args.out}: {len(setups)} setups, {len(cases)} cases, {size / 1e6:.2f} MB, "
          f"complex-step self-check max relative error {worst:.2e}")


if __name__ == "__main__":
    sys.exit(main())
