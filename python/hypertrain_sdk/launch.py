"""Run a whole hyper-training locally: the Swift coordinator and Python workers as child
processes over ipc://, then export the answer (what the examples' single command does)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import safetensors_io


def find_hypertrain(explicit: Optional[str] = None) -> str:
    """The `hypertrain` binary: ``explicit``, $HT_BIN, `hypertrain` on PATH, or this checkout's
    ``.build/release/hypertrain`` (python/ sits beside it)."""
    candidates = [explicit, os.environ.get("HT_BIN"), shutil.which("hypertrain")]
    here = os.path.dirname(os.path.abspath(__file__))
    for up in (os.path.join(here, "..", ".."), os.getcwd()):
        candidates.append(os.path.join(up, ".build", "release", "hypertrain"))
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.abspath(c)
    raise FileNotFoundError("no hypertrain binary: build it (`swift build -c release`) and set HT_BIN, or put it on PATH")


def write_model_spec(path: str, tensors: Sequence[Tuple[str, np.ndarray]]) -> None:
    """The coordinator's ``--model-spec`` file from named initial weights, in layout order."""
    safetensors_io.write(path, [(n, np.asarray(a, np.float32)) for n, a in tensors], {"format": "hypertrain-model-spec"})


def load_answer(path: str) -> Tuple[Dict[str, np.ndarray], np.ndarray, Dict[str, str]]:
    """An exported answer: ``({name: weights}, lambda_hat, metadata)``; the dict loads into the
    model (``{k: torch.from_numpy(v) ...}`` then ``load_state_dict``)."""
    tensors, meta = safetensors_io.read(path)
    weights = {n: a for n, a in tensors if n != "lambda_hat"}
    lam = dict(tensors).get("lambda_hat", np.zeros(0, np.float32))
    return weights, lam, meta


def run_local(worker_command: Sequence[str], spec_path: str, out_dir: str, *, steps: int, trainers: int = 2,
              scope: str = "global", samples_per_step: int = 2, coordinator_args: Sequence[str] = (),
              hypertrain: Optional[str] = None, timeout: float = 1800, export: bool = True,
              log=lambda m: print(m, file=sys.stderr, flush=True)) -> dict:
    """Starts ``hypertrain coordinator --model-spec spec_path`` and ``trainers`` trainers plus one
    validator (``worker_command + ["--role", ROLE, "--connect", ENDPOINT]``), waits for the run,
    exports ``out_dir/model.safetensors`` and returns ``{"summary": …, "answer": path,
    "lambda_hat": [...], "coordinator": returncode}``. Logs go to ``out_dir/*.log``."""
    ht = find_hypertrain(hypertrain)
    os.makedirs(out_dir, exist_ok=True)
    sock_dir = tempfile.mkdtemp(prefix="ht-sdk-")
    endpoint = f"ipc://{sock_dir}/coordinator.sock"
    summary, ckpt = os.path.join(out_dir, "summary.json"), os.path.join(out_dir, "checkpoint.bin")
    for f in (summary, ckpt, ckpt + ".prev"):
        if os.path.exists(f):
            os.remove(f)
    coord_cmd = [ht, "coordinator", "--model-spec", spec_path, "--model-scope", scope, "--bind", endpoint,
                 "--steps", str(steps), "--samples", str(samples_per_step), "--summary", summary,
                 "--checkpoint", ckpt, "--metrics", os.path.join(out_dir, "metrics.jsonl"), *coordinator_args]
    procs: List[Tuple[str, subprocess.Popen]] = []
    logs = []

    def start(name: str, cmd: List[str]) -> subprocess.Popen:
        f = open(os.path.join(out_dir, f"{name}.log"), "w")
        logs.append(f)
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        procs.append((name, p))
        return p

    try:
        coordinator = start("coordinator", coord_cmd)
        roles = ["trainer"] * trainers + ["validator"]
        for i, role in enumerate(roles):
            start(f"{role}-{i}", [*worker_command, "--role", role, "--connect", endpoint])
        deadline = time.monotonic() + timeout
        while coordinator.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the run took longer than {timeout} s (logs in {out_dir})")
            time.sleep(0.1)
        # After a complete run the coordinator told every worker to shut down; after a failure
        # nobody will.
        for name, p in procs[1:]:
            try:
                p.wait(timeout=30 if coordinator.returncode == 0 else 0.1)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if coordinator.returncode != 0:
            tail = open(os.path.join(out_dir, "coordinator.log")).read()[-3000:]
            raise RuntimeError(f"the coordinator exited with {coordinator.returncode}:\n{tail}")
        result = {"summary": json.load(open(summary)), "coordinator": coordinator.returncode,
                  "workers": {name: p.returncode for name, p in procs[1:]}}
        if export:
            answer = os.path.join(out_dir, "model.safetensors")
            subprocess.run([ht, "export", "--checkpoint", ckpt, "--out", answer], check=True,
                           stdout=subprocess.DEVNULL)
            result["answer"] = answer
            result["lambda_hat"] = load_answer(answer)[1].tolist()
        return result
    finally:
        for name, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in logs:
            f.close()
        shutil.rmtree(sock_dir, ignore_errors=True)
