#!/usr/bin/env python3
"""Hyper-train a small PyTorch MLP on scikit-learn's bundled breast-cancer data (569 rows,
30 features, shipped inside the scikit-learn wheel: no download). One command:

    python python/examples/tabular.py            # coordinator + 2 trainers + 1 validator, locally

Splits (fixed permutation, seed 0): 300 training rows, 134 validation, 135 test (unused here);
features standardised with the training rows' mean and std; 2-class cross-entropy.
"""
import os
import sys

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
from hypertrain_sdk.torch_model import TorchModel  # noqa: E402


def make_model(batch_size: int = 64) -> TorchModel:
    from sklearn.datasets import load_breast_cancer
    x, y = load_breast_cancer(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(x))
    x, y = x[perm].astype(np.float32), y[perm].astype(np.int64)
    tr, va = slice(0, 300), slice(300, 434)
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
    x = (x - mu) / sd
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 2))
    return TorchModel(module, F.cross_entropy, train=(torch.from_numpy(x[tr]), torch.from_numpy(y[tr])),
                      valid=(torch.from_numpy(x[va]), torch.from_numpy(y[va])), batch_size=batch_size, valid_batch_size=134)


def main() -> int:
    p = _common.parser(__doc__.splitlines()[0], steps=300, scope="per-tensor", lambda_init=-3.0, lambda_lr=0.03, phi_lr=3e-3)
    args = p.parse_args()
    if args.role != "launch":
        return _common.worker_main(args, make_model())
    _common.launch_main(args, os.path.abspath(__file__), make_model, "tabular", [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
