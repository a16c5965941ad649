"""Adapter from a ``torch.nn.Module`` to the flat layout the coordinator hyper-trains.

The flat ``w`` is ``torch.cat([p.flatten() for p in module.parameters()])`` — the tensors of
``module.named_parameters()`` in that order, each row-major — so the ModelSpec is
``[(name, shape) for name, p in module.named_parameters()]`` and an exported answer loads with
``module.load_state_dict``. Buffers (e.g. BatchNorm statistics) are not part of ``w``.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from . import safetensors_io
from .worker import Batch


class TorchModel:
    """A module, its mean prediction loss and its data, as the SDK's ``loss_and_grad``.

    Args:
        module: the model; its parameters are overwritten with each task's ``w``.
        loss_fn: ``loss_fn(module(x), y)`` → scalar mean loss over the batch (the data term only:
            the coordinator adds the L2 penalty).
        train, valid: ``(inputs, targets)`` tensors, indexed along dim 0.
        batch_size, valid_batch_size: minibatch sizes (rows drawn with replacement from
            ``Batch.rng()``; the whole split in order when the size covers it).
    """

    def __init__(self, module: torch.nn.Module, loss_fn: Callable, train: Tuple[torch.Tensor, torch.Tensor],
                 valid: Optional[Tuple[torch.Tensor, torch.Tensor]] = None, batch_size: int = 100,
                 valid_batch_size: Optional[int] = None):
        self.module = module
        self.loss_fn = loss_fn
        self.train = train
        self.valid = valid
        self.batch_size = batch_size
        self.valid_batch_size = valid_batch_size or batch_size
        self.params = [p for _, p in module.named_parameters()]

    # --- layout --------------------------------------------------------------------------------

    @property
    def tensors(self) -> List[Tuple[str, List[int]]]:
        """The ModelSpec: (name, shape) of every parameter, in ``parameters()`` order."""
        return [(n, list(p.shape)) for n, p in self.module.named_parameters()]

    @property
    def weight_count(self) -> int:
        return sum(p.numel() for p in self.params)

    def initial_weights(self) -> np.ndarray:
        """The module's current parameters as one float32 vector (where φ starts)."""
        with torch.no_grad():
            return torch.nn.utils.parameters_to_vector(self.params).detach().to(torch.float32).cpu().numpy().copy()

    def set_weights(self, w: np.ndarray) -> None:
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(torch.as_tensor(np.asarray(w, np.float32)), self.params)

    def state_dict_from(self, w: np.ndarray) -> Dict[str, torch.Tensor]:
        """``{name: tensor}`` for a flat ``w`` (what ``load_state_dict`` takes)."""
        out, off = {}, 0
        for name, p in self.module.named_parameters():
            n = p.numel()
            out[name] = torch.as_tensor(np.asarray(w[off:off + n], np.float32)).reshape(p.shape).clone()
            off += n
        return out

    def write_spec(self, path: str) -> None:
        """The coordinator's ``--model-spec`` file: the named initial weights, in layout order."""
        w = self.initial_weights()
        tensors, off = [], 0
        for name, shape in self.tensors:
            n = int(np.prod(shape)) if shape else 1
            tensors.append((name, w[off:off + n].reshape(shape)))
            off += n
        safetensors_io.write(path, tensors, {"format": "hypertrain-model-spec"})

    # --- losses --------------------------------------------------------------------------------

    def loss_and_grad(self, w: np.ndarray, batch: Batch):
        """The SDK's callback: mean loss on the task's minibatch and ∂loss/∂w (and the rows)."""
        x, y = self.train if batch.role == "trainer" else self.valid
        size = self.batch_size if batch.role == "trainer" else self.valid_batch_size
        rows = batch.rows(len(x), size)
        self.set_weights(w)
        for p in self.params:
            p.grad = None
        idx = torch.as_tensor(rows)
        loss = self.loss_fn(self.module(x[idx]), y[idx])
        loss.backward()
        grad = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in self.params])
        return float(loss.item()), grad.detach().numpy().astype(np.float32, copy=False), rows.astype(np.int32)

    def evaluate(self, w: np.ndarray, split: str = "valid", chunk: int = 2000) -> float:
        """The mean loss over a whole split at ``w`` (the loss_fn must be a mean)."""
        x, y = self.valid if split == "valid" else self.train
        self.set_weights(w)
        total, n = 0.0, len(x)
        with torch.no_grad():
            for i in range(0, n, chunk):
                xb, yb = x[i:i + chunk], y[i:i + chunk]
                total += float(self.loss_fn(self.module(xb), yb)) * len(xb)
        return total / n
