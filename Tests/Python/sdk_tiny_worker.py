"""A tiny external model for the SDK tests: linear regression y = x·Wᵀ + b (W [3, 4], b [3]) on
fixed synthetic data, as a float64 numpy model (`--model numpy`, for the finite-difference check)
or a torch nn.Linear through TorchModel (`--model torch`). Mean squared error over batch × 3.

    python sdk_tiny_worker.py --role trainer --connect ipc://… [--model torch] [--delay 0.02]
    python sdk_tiny_worker.py --write-spec FILE [--model torch]
"""
import argparse
import os
import sys
import time

import numpy as np

N_TRAIN, N_VALID, BATCH = 64, 32, 16


def data():
    rng = np.random.default_rng(123)
    x = rng.normal(size=(N_TRAIN + N_VALID, 4))
    w_true = rng.normal(size=(3, 4))
    y = x @ w_true.T + 0.5 * rng.normal(size=(N_TRAIN + N_VALID, 3))
    return (x[:N_TRAIN], y[:N_TRAIN]), (x[N_TRAIN:], y[N_TRAIN:])


TENSORS = [("weight", [3, 4]), ("bias", [3])]


def initial_weights() -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.concatenate([0.3 * rng.normal(size=12), np.zeros(3)]).astype(np.float32)


def numpy_loss(w: np.ndarray, x: np.ndarray, y: np.ndarray):
    """(loss, ∂loss/∂w) in float64."""
    w = np.asarray(w, np.float64)
    W, b = w[:12].reshape(3, 4), w[12:]
    r = x @ W.T + b - y
    loss = float(np.mean(r ** 2))
    g = 2 * r / r.size
    return loss, np.concatenate([(g.T @ x).reshape(-1), g.sum(0)])


def numpy_loss_and_grad(w, batch):
    (xt, yt), (xv, yv) = data()
    x, y = (xt, yt) if batch.role == "trainer" else (xv, yv)
    size = BATCH if batch.role == "trainer" else N_VALID
    rows = batch.rows(len(x), size)
    loss, g = numpy_loss(w, x[rows], y[rows])
    return loss, g.astype(np.float32), rows.astype(np.int32)


def torch_model():
    import torch
    from torch import nn
    from hypertrain_sdk.torch_model import TorchModel
    torch.set_num_threads(1)
    (xt, yt), (xv, yv) = data()
    module = nn.Linear(4, 3)
    f = lambda a: torch.from_numpy(a.astype(np.float32))
    model = TorchModel(module, nn.functional.mse_loss, train=(f(xt), f(yt)), valid=(f(xv), f(yv)),
                       batch_size=BATCH, valid_batch_size=N_VALID)
    model.set_weights(initial_weights())
    return model


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--role", choices=["trainer", "validator"])
    p.add_argument("--connect")
    p.add_argument("--model", choices=["numpy", "torch"], default="numpy")
    p.add_argument("--delay", type=float, default=0.0, help="seconds of sleep per task (to make runs last)")
    p.add_argument("--write-spec")
    p.add_argument("--nan-at-step", type=int, default=-1, help="return NaN gradients at this step (tests)")
    p.add_argument("--raise-at-step", type=int, default=-1, help="raise an exception at this step (tests)")
    a = p.parse_args()
    from hypertrain_sdk import run_worker, write_model_spec
    if a.write_spec:
        w = initial_weights()
        write_model_spec(a.write_spec, [("weight", w[:12].reshape(3, 4)), ("bias", w[12:])])
        return 0
    fn = torch_model().loss_and_grad if a.model == "torch" else numpy_loss_and_grad

    def task(w, batch):
        if a.delay:
            time.sleep(a.delay)
        if batch.step == a.raise_at_step:
            raise RuntimeError("the user's loss function failed")
        loss, g, rows = fn(w, batch)
        if batch.step == a.nan_at_step:
            g = g.copy()
            g[0] = np.nan
        return loss, g, rows
    return run_worker(a.connect, a.role, task, TENSORS, give_up_after=30)


if __name__ == "__main__":
    sys.exit(main())
