"""Minimal safetensors reader/writer on numpy (float32 only), so the SDK needs no extra package.

Format (https://github.com/huggingface/safetensors): 8-byte little-endian header length N,
N bytes of JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``,
then the raw little-endian data. Hypertrain reads the flat layout of an external model as the
tensors **in the order of their data in the file**, so :func:`write` keeps the given order.
"""
from __future__ import annotations

import json
import os
import struct
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np


def write(path: str, tensors: Sequence[Tuple[str, np.ndarray]], metadata: Optional[Mapping[str, str]] = None) -> None:
    """Writes ``tensors`` (name, array) in this order as float32, atomically."""
    header: Dict[str, object] = {}
    offset = 0
    blobs = []
    for name, array in tensors:
        a = np.ascontiguousarray(np.asarray(array, dtype="<f4"))
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read(path: str) -> Tuple[List[Tuple[str, np.ndarray]], Dict[str, str]]:
    """Reads a float32 safetensors file: tensors in data order, and the metadata."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    start = 8 + n
    items = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    out = []
    for name, e in items:
        if e["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} has dtype {e['dtype']}; only F32 is supported")
        b, end = e["data_offsets"]
        a = np.frombuffer(data[start + b:start + end], dtype="<f4").reshape(e["shape"]).copy()
        out.append((name, a))
    return out, meta
