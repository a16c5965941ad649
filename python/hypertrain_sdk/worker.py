"""The worker loop: registration, tasks, heartbeats, reconnects, shutdown and errors
(docs/protocol.md §4, §10, §12). A user supplies only a function

    loss_and_grad(w: np.ndarray[float32, D], batch: Batch) -> (loss, grad[, indices])

that computes the prediction loss on a minibatch it draws from its own data (``batch.rng()``
makes the draw a pure function of (run seed, step, task): sync runs repeat bit for bit) and
∂loss/∂w. The L2 penalty is the coordinator's: return the data term only.
"""
from __future__ import annotations

import concurrent.futures
import os
import signal
import socket as _socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import zmq

from . import hypertrain_pb2 as pb
from .wire import Message, WireError, decode, encode

SOFTWARE_VERSION = "hypertrain-sdk 0.1.0"

# Stream ids of the SDK's minibatch draws (docs/sdk.md, "Determinism").
TRAIN_STREAM = 3
VALID_STREAM = 4

# Exit statuses, as the Swift worker's (docs/protocol.md §4 "Shutdown").
EXIT_COMPLETE = 0
EXIT_ERROR = 1
EXIT_GAVE_UP = 2
EXIT_COORDINATOR_STOPPED = 75


@dataclass(frozen=True)
class Batch:
    """Which minibatch a task is computed on: a pure function of these numbers."""
    role: str          # "trainer" or "validator"
    seed: int          # the run seed (ExperimentSpec.seed)
    step: int          # the task's step
    task: int          # the task index k (0 for validation)

    def rng(self) -> np.random.Generator:
        """The task's generator: ``numpy.random.default_rng([seed, step, task, stream])``,
        stream 3 for training tasks and 4 for validation (docs/sdk.md)."""
        stream = TRAIN_STREAM if self.role == "trainer" else VALID_STREAM
        return np.random.default_rng([self.seed, self.step, self.task, stream])

    def rows(self, n: int, batch_size: int) -> np.ndarray:
        """``batch_size`` row indices below ``n``, drawn with replacement (all rows in order when
        ``batch_size >= n``), as int64."""
        if batch_size >= n:
            return np.arange(n)
        return self.rng().integers(0, n, size=batch_size)


LossResult = Union[Tuple[float, np.ndarray], Tuple[float, np.ndarray, np.ndarray]]
LossAndGrad = Callable[[np.ndarray, Batch], LossResult]


def model_spec_message(tensors: Sequence[Tuple[str, Sequence[int]]], scope: str = "") -> "pb.ModelSpec":
    """The wire's ModelSpec for named tensors (flat-layout order)."""
    m = pb.ModelSpec(scope=scope)
    for name, shape in tensors:
        m.tensors.add(name=name, shape=[int(s) for s in shape])
    return m


def read_key_file(path: str) -> Tuple[bytes, Optional[bytes]]:
    """(public, secret) Z85 keys of a `hypertrain keygen` file (secret None for a .pub file)."""
    public = secret = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("public="):
                public = line[7:].encode()
            elif line.startswith("secret="):
                secret = line[7:].encode()
            elif line and not line.startswith("#") and public is None and len(line) == 40:
                public = line.encode()
    if public is None or len(public) != 40:
        raise ValueError(f"{path}: no 40-character public= key")
    return public, secret


class WorkerError(Exception):
    """The worker cannot continue (refused, bad spec, bad result); the message says why."""


class _Stop(Exception):
    def __init__(self, status: int):
        self.status = status


class Worker:
    """One trainer or validator process's connection to a coordinator.

    ``run()`` returns the exit status: 0 after the run completed, 75 when the coordinator was
    stopped (it continues with --resume), 2 after ``give_up_after`` seconds without a
    coordinator, 1 on an error, 128+N after signal N."""

    def __init__(self, endpoint: str, role: str, loss_and_grad: LossAndGrad,
                 tensors: Sequence[Tuple[str, Sequence[int]]], *, key_file: Optional[str] = None,
                 server_public_key_file: Optional[str] = None, give_up_after: float = 600.0,
                 log: Optional[Callable[[str], None]] = None, hello_interval: float = 1.0):
        if role not in ("trainer", "validator"):
            raise ValueError(f"role must be 'trainer' or 'validator', got {role!r}")
        if endpoint.startswith("tcp://") and (key_file is None) != (server_public_key_file is None):
            raise ValueError("CURVE needs both key_file and server_public_key_file")
        self.endpoint = endpoint
        self.role = role
        self.loss_and_grad = loss_and_grad
        self.tensors = [(n, [int(s) for s in shape]) for n, shape in tensors]
        self.weight_count = int(sum(int(np.prod(s)) if len(s) else 1 for _, s in self.tensors))
        self.give_up_after = give_up_after
        self.hello_interval = hello_interval
        self.log = log or (lambda m: print(f"[{role} {os.getpid()}] {m}", file=sys.stderr, flush=True))
        self.curve = None
        if key_file and server_public_key_file:
            pub, sec = read_key_file(key_file)
            if sec is None:
                raise ValueError(f"{key_file}: no secret= key (pass the .key file, not the .pub)")
            server, _ = read_key_file(server_public_key_file)
            self.curve = (pub, sec, server)
        self.ctx = zmq.Context.instance()
        self.sock: Optional[zmq.Socket] = None
        self.sequence = 0
        self.worker_id = ""
        self.seed = 0
        self.heartbeat_interval = 1.0
        self.liveness = 5
        self.registered = False
        self.generation = 0           # bumped on every (re-)registration: older results are dropped
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hypertrain-task")
        self.pending: Optional[Tuple[int, Message, concurrent.futures.Future]] = None
        self.request_at: Optional[float] = None
        self.stop_signal: Optional[int] = None

    # --- sockets -------------------------------------------------------------------------------

    def _open(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=0)
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 1000)
        if self.curve:
            s.curve_publickey, s.curve_secretkey, s.curve_serverkey = self.curve
        s.connect(self.endpoint)
        self.sock = s

    def _send(self, env: "pb.Envelope", tensors=()) -> None:
        self.sequence += 1
        env.sequence = self.sequence
        env.sender_id = self.worker_id
        self.sock.send_multipart(encode(env, tensors), copy=False)
        self.last_sent = time.monotonic()

    def _hello(self) -> None:
        env = pb.Envelope()
        env.hello.role = pb.ROLE_TRAINER if self.role == "trainer" else pb.ROLE_VALIDATOR
        env.hello.hostname = _socket.gethostname()
        env.hello.pid = os.getpid()
        env.hello.software_version = SOFTWARE_VERSION
        env.hello.previous_worker_id = self.worker_id
        env.hello.accepts_weight_tasks = True
        env.hello.model.CopyFrom(model_spec_message(self.tensors))
        self._send(env)
        self.last_hello = time.monotonic()

    def _reconnect(self, why: str) -> None:
        self.log(f"{why}; reconnecting")
        self.registered = False
        self.generation += 1
        self._open()
        self._hello()

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                handlers[s] = signal.signal(s, self._on_signal)
        try:
            return self._run()
        except _Stop as s:
            return s.status
        except WorkerError as e:
            self.log(f"error: {e}")
            self._leave(f"worker error: {e}")
            return EXIT_ERROR
        finally:
            for s, h in handlers.items():
                signal.signal(s, h)
            self.pool.shutdown(wait=False, cancel_futures=True)
            if self.sock is not None:
                self.sock.close(linger=1000)
                self.sock = None

    def _on_signal(self, signum, frame) -> None:
        self.stop_signal = signum

    def _leave(self, reason: str) -> None:
        if self.sock is not None and self.registered:
            env = pb.Envelope()
            env.shutdown.reason = reason[:200]
            try:
                self._send(env)
            except zmq.ZMQError:
                pass

    def _run(self) -> int:
        self._open()
        self.last_sent = time.monotonic()
        self.last_heard = time.monotonic()
        self._hello()
        while True:
            if self.stop_signal is not None:
                self.log(f"signal {self.stop_signal}: leaving")
                self._leave("worker stopped by a signal")
                return 128 + self.stop_signal
            now = time.monotonic()
            self._finish_task()
            # While a task computes, wake the moment it is done (its reply goes out at once)
            # rather than at the next 20 ms socket poll; messages are then checked without
            # waiting. Idle, wait on the socket.
            timeout = 20
            if self.pending is not None and not self.pending[2].done():
                concurrent.futures.wait([self.pending[2]], timeout=0.02)
                timeout = 0
            if self.sock.poll(timeout, zmq.POLLIN):
                while True:
                    try:
                        frames = self.sock.recv_multipart(zmq.NOBLOCK, copy=True)
                    except zmq.Again:
                        break
                    self.last_heard = time.monotonic()
                    self._handle(frames)
            now = time.monotonic()
            silent = now - self.last_heard
            if self.give_up_after > 0 and silent > self.give_up_after:
                self.log(f"no coordinator at {self.endpoint} for {self.give_up_after:g} s: it went away without a "
                         "Shutdown, the address is wrong, or this key is not authorized (CURVE refusals look like silence); giving up")
                return EXIT_GAVE_UP
            if self.registered:
                if silent > self.heartbeat_interval * self.liveness:
                    self._reconnect(f"no reply from the coordinator for {silent:.1f} s")
                elif now - self.last_sent > self.heartbeat_interval:
                    env = pb.Envelope()
                    env.heartbeat.unix_ms = int(time.time() * 1000)
                    self._send(env)
                if self.request_at is not None and now >= self.request_at and self.pending is None:
                    self.request_at = None
                    env = pb.Envelope()
                    env.work_request.SetInParent()
                    self._send(env)
            elif now - self.last_hello > self.hello_interval:
                # Not registered yet: say Hello again (on a fresh socket after a few tries, so a
                # coordinator that restarted sees a new connection).
                if silent > 3 * self.hello_interval:
                    self._open()
                self._hello()

    def _handle(self, frames: List[bytes]) -> None:
        try:
            m = decode(frames)
        except WireError as e:
            self.log(f"undecodable message from the coordinator ({e}); ignored")
            return
        body = m.body
        env = m.envelope
        if body == "welcome":
            w = env.welcome
            self.worker_id = w.worker_id
            self.seed = w.spec.seed
            self.heartbeat_interval = max(w.heartbeat_interval_ms, 1) / 1000.0
            self.liveness = max(w.heartbeat_liveness, 1)
            if w.spec.HasField("model"):
                theirs = [(t.name, list(t.shape)) for t in w.spec.model.tensors]
                if theirs != self.tensors:
                    raise WorkerError(f"the coordinator's model layout ({len(theirs)} tensors) differs from this worker's ({len(self.tensors)} tensors)")
            else:
                raise WorkerError("the coordinator runs the built-in MLP, not an external model: start it with --model-spec")
            if not self.registered:
                self.log(f"registered as {self.worker_id} (seed {self.seed}, {len(self.tensors)} tensors, D = {self.weight_count})")
            self.registered = True
            self.generation += 1
            self.pending = None
            self.request_at = time.monotonic()
        elif body in ("train_task", "valid_task"):
            if self.pending is not None:
                self.log(f"a {body} arrived while a task is computing; it waits")
            self._start_task(m)
        elif body == "idle":
            self.request_at = time.monotonic() + env.idle.retry_after_ms / 1000.0
        elif body == "shutdown":
            reason = env.shutdown.reason
            self.log(f"coordinator says shutdown: {reason}")
            raise _Stop(EXIT_COMPLETE if not reason.startswith("coordinator stopped") else EXIT_COORDINATOR_STOPPED)
        elif body == "error":
            e = env.error
            name = pb.ErrorCode.Name(e.code) if e.code in pb.ErrorCode.values() else str(e.code)
            if e.code == pb.ERROR_CODE_NOT_REGISTERED:
                self._reconnect(f"coordinator says {name}: {e.message}")
            elif e.code == pb.ERROR_CODE_VERSION_MISMATCH:
                raise WorkerError(f"the coordinator speaks another protocol version: {e.message}")
            elif not self.registered and e.in_reply_to == 0:
                raise WorkerError(f"registration refused ({name}): {e.message}")
            elif e.code == pb.ERROR_CODE_DUPLICATE:
                pass
            else:
                self.log(f"coordinator refused message {e.in_reply_to} ({name}): {e.message}")
        elif body in ("ack", "heartbeat", "status"):
            pass
        else:
            self.log(f"unexpected {body or 'message without a body'} from the coordinator; ignored")

    def _start_task(self, m: Message) -> None:
        env = m.envelope
        if env.WhichOneof("body") == "train_task":
            t = env.train_task
            batch = Batch("trainer", self.seed, t.step, t.task_index)
        else:
            t = env.valid_task
            batch = Batch("validator", self.seed, t.step, 0)
        w = m.tensors.get("w")
        if w is None:
            raise WorkerError("a task without weights 'w' (the coordinator sent φ: is it running an external model?)")
        if w.size != self.weight_count:
            raise WorkerError(f"the task's w has {w.size} values, this model has {self.weight_count}")
        fut = self.pool.submit(self.loss_and_grad, w.copy(), batch)
        if self.pending is not None:
            self.pending[2].cancel()
        self.pending = (self.generation, m, fut)

    def _finish_task(self) -> None:
        if self.pending is None or not self.pending[2].done():
            return
        generation, m, fut = self.pending
        self.pending = None
        if generation != self.generation:
            return  # computed for an earlier registration: its lease is gone
        try:
            result = fut.result()
        except Exception:
            raise WorkerError("loss_and_grad raised:\n" + traceback.format_exc())
        if not isinstance(result, tuple) or len(result) not in (2, 3):
            raise WorkerError("loss_and_grad must return (loss, grad) or (loss, grad, indices)")
        loss, grad = float(result[0]), np.asarray(result[1], dtype=np.float32).reshape(-1)
        indices = np.asarray(result[2] if len(result) == 3 else [], dtype=np.int32).reshape(-1)
        if grad.size != self.weight_count:
            raise WorkerError(f"loss_and_grad returned {grad.size} gradient values for {self.weight_count} weights")
        if not (np.isfinite(loss) and np.all(np.isfinite(grad))):
            self.log("warning: non-finite loss or gradient; sending it (the coordinator refuses it and re-issues the task)")
        env = pb.Envelope()
        env.phi_version = m.envelope.phi_version
        env.lambda_version = m.envelope.lambda_version
        if m.envelope.WhichOneof("body") == "train_task":
            t = m.envelope.train_task
            env.gradient.step = t.step
            env.gradient.task_index = t.task_index
            env.gradient.lease_id = t.lease_id
            env.gradient.train_loss = loss
            self._send(env, [("lambda", m.tensors.get("lambda", np.zeros(0, np.float32))), ("indices", indices),
                             ("grad_w", grad)])
        else:
            t = m.envelope.valid_task
            env.hypergradient.step = t.step
            env.hypergradient.lease_id = t.lease_id
            env.hypergradient.valid_loss = loss
            self._send(env, [("grad_w", grad)])
        self.request_at = time.monotonic()


def run_worker(endpoint: str, role: str, loss_and_grad: LossAndGrad, tensors: Sequence[Tuple[str, Sequence[int]]],
               **options) -> int:
    """Runs one worker to the end of the run; returns its exit status (see :class:`Worker`)."""
    return Worker(endpoint, role, loss_and_grad, tensors, **options).run()


class Trainer(Worker):
    """A training worker: ``loss_and_grad`` on training minibatches."""
    def __init__(self, endpoint: str, loss_and_grad: LossAndGrad, tensors, **options):
        super().__init__(endpoint, "trainer", loss_and_grad, tensors, **options)


class Validator(Worker):
    """The validation worker: ``loss_and_grad`` on validation minibatches."""
    def __init__(self, endpoint: str, loss_and_grad: LossAndGrad, tensors, **options):
        super().__init__(endpoint, "validator", loss_and_grad, tensors, **options)
