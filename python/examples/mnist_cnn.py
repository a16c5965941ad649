#!/usr/bin/env python3
"""Hyper-train a small PyTorch CNN on MNIST with one L2 hyperparameter per tensor. One command:

    python python/examples/mnist_cnn.py --data data/mnist      # coordinator + 2 trainers + 1 validator

Data: the IDX files the project fetches (`make data`: data/mnist; `.gz` files work too; the
directory also comes from $HYPERTRAIN_DATA). Splits as the built-in model's: training = the first
--n-train training images, validation = the next --n-valid; pixels / 255; 10-class cross-entropy.
--baseline also trains the same CNN with λ̂ frozen at --lambda-init for the same steps.
"""
import gzip
import os
import sys

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
from hypertrain_sdk.torch_model import TorchModel  # noqa: E402


def read_idx(directory: str, base: str, kind: str) -> np.ndarray:
    """An IDX file (`train-images-idx3-ubyte` or `train-images.idx3-ubyte`, optionally .gz)."""
    stem = f"{base}-{kind}"
    for name in (f"{base}-{kind}", f"{base}.{kind}"):
        for ext in ("", ".gz"):
            path = os.path.join(directory, name + ext)
            if os.path.exists(path):
                raw = (gzip.open if ext else open)(path, "rb").read()
                ndim = raw[3]
                dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
                return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)
    raise FileNotFoundError(f"no {stem} in {directory} (run `make data`, or pass --data DIR)")


class SmallCNN(nn.Module):
    """conv 5×5 (8) → ReLU → max-pool 2 → conv 5×5 (16) → ReLU → max-pool 2 → linear 256→10."""
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5)
        self.conv2 = nn.Conv2d(8, 16, 5)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def make_model(data: str, n_train: int, n_valid: int, batch_size: int) -> TorchModel:
    images = read_idx(data, "train-images", "idx3-ubyte")
    labels = read_idx(data, "train-labels", "idx1-ubyte")
    x = torch.from_numpy(images[: n_train + n_valid].astype(np.float32) / 255).unsqueeze(1)
    y = torch.from_numpy(labels[: n_train + n_valid].astype(np.int64))
    torch.manual_seed(0)
    return TorchModel(SmallCNN(), F.cross_entropy, train=(x[:n_train], y[:n_train]),
                      valid=(x[n_train:], y[n_train:]), batch_size=batch_size, valid_batch_size=batch_size)


def main() -> int:
    p = _common.parser(__doc__.splitlines()[0], steps=400, scope="per-tensor", lambda_init=-2.0, lambda_lr=0.05, phi_lr=3e-3)
    here = os.path.dirname(os.path.abspath(__file__))
    default_data = os.environ.get("HYPERTRAIN_DATA") or os.path.join(here, "..", "..", "data", "mnist")
    p.add_argument("--data", default=default_data, help="directory of the MNIST IDX files")
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--n-valid", type=int, default=5000)
    p.add_argument("--batch-size", type=int, default=100)
    args = p.parse_args()

    def build():
        return make_model(args.data, args.n_train, args.n_valid, args.batch_size)
    if args.role != "launch":
        return _common.worker_main(args, build())
    passthrough = ["--data", os.path.abspath(args.data), "--n-train", str(args.n_train), "--n-valid", str(args.n_valid),
                   "--batch-size", str(args.batch_size)]
    _common.launch_main(args, os.path.abspath(__file__), build, "mnist_cnn", passthrough)
    return 0


if __name__ == "__main__":
    sys.exit(main())
