"""Framing of the Hypertrain protocol (docs/protocol.md §2): one ``Envelope`` frame, then one
frame per tensor described in ``Envelope.tensors`` (raw little-endian float32 / int32)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import numpy as np

from . import hypertrain_pb2 as pb

PROTOCOL_VERSION = 1

_DTYPES = {pb.DTYPE_FLOAT32: np.dtype("<f4"), pb.DTYPE_INT32: np.dtype("<i4")}


@dataclass
class Message:
    """A decoded message: the envelope and its tensors by name."""
    envelope: "pb.Envelope"
    tensors: Dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def body(self) -> str:
        return self.envelope.WhichOneof("body") or ""


class WireError(Exception):
    """A message that does not follow the framing."""


def encode(envelope: "pb.Envelope", tensors: Sequence[Tuple[str, np.ndarray]] = ()) -> List[bytes]:
    """The frames of a message: the envelope (describing ``tensors``) and one frame per tensor."""
    envelope.protocol_version = PROTOCOL_VERSION
    del envelope.tensors[:]
    frames: List[bytes] = []
    for name, array in tensors:
        a = np.asarray(array)
        if a.dtype.kind in "iu":
            a, dtype = np.ascontiguousarray(a, dtype="<i4"), pb.DTYPE_INT32
        else:
            a, dtype = np.ascontiguousarray(a, dtype="<f4"), pb.DTYPE_FLOAT32
        a = a.reshape(-1)
        envelope.tensors.add(name=name, dtype=dtype, length=a.size)
        frames.append(a.tobytes())
    return [envelope.SerializeToString()] + frames


def decode(frames: Sequence[bytes]) -> Message:
    """Parses a message received on a DEALER socket (no routing-id frame)."""
    if not frames:
        raise WireError("empty message")
    env = pb.Envelope()
    try:
        env.ParseFromString(bytes(frames[0]))
    except Exception as e:  # protobuf's DecodeError
        raise WireError(f"undecodable envelope: {e}") from None
    if env.protocol_version != PROTOCOL_VERSION:
        raise WireError(f"protocol version {env.protocol_version}, expected {PROTOCOL_VERSION}")
    if len(frames) - 1 != len(env.tensors):
        raise WireError(f"{len(frames) - 1} tensor frames for {len(env.tensors)} described")
    tensors: Dict[str, np.ndarray] = {}
    for info, frame in zip(env.tensors, frames[1:]):
        dt = _DTYPES.get(info.dtype)
        if dt is None:
            raise WireError(f"tensor {info.name}: unknown dtype {info.dtype}")
        buf = bytes(frame)
        if len(buf) != info.length * 4:
            raise WireError(f"tensor {info.name}: frame of {len(buf)} bytes, described {info.length} elements")
        tensors[info.name] = np.frombuffer(buf, dtype=dt)
    return Message(env, tensors)
