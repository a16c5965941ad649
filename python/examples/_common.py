"""What both examples share: the command line, the worker role and the local launcher."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable

import numpy as np
import torch

from hypertrain_sdk import load_answer, run_local, run_worker
from hypertrain_sdk.torch_model import TorchModel


def parser(description: str, steps: int, scope: str, lambda_init: float, lambda_lr: float, phi_lr: float) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--role", choices=["launch", "trainer", "validator"], default="launch",
                   help="launch (default): start the coordinator and the workers locally; trainer/validator: be one worker")
    p.add_argument("--connect", help="coordinator endpoint (worker roles)")
    p.add_argument("--key", help="this worker's CURVE key file (tcp://)")
    p.add_argument("--server-public-key", help="the coordinator's public key file (tcp://)")
    p.add_argument("--out", default=None, help="output directory (launch)")
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--trainers", type=int, default=2)
    p.add_argument("--samples-per-step", type=int, default=2)
    p.add_argument("--scope", default=scope, choices=["global", "per-tensor", "per-weight", "per-output-unit"])
    p.add_argument("--lambda-init", type=float, default=lambda_init)
    p.add_argument("--lambda-lr", type=float, default=lambda_lr)
    p.add_argument("--phi-lr", type=float, default=phi_lr)
    p.add_argument("--seed", type=int, default=1, help="run seed (minibatches, λ samples, φ₀)")
    p.add_argument("--mode", choices=["sync", "async"], default="sync",
                   help="sync (bit for bit reproducible) or async (no rounds; stale results refused)")
    p.add_argument("--baseline", action="store_true",
                   help="also train the same model with λ̂ frozen at --lambda-init for the same steps, and compare")
    p.add_argument("--hypertrain", default=None, help="the hypertrain binary (default: $HT_BIN, PATH, .build/release)")
    return p


def worker_main(args, model: TorchModel) -> int:
    torch.set_num_threads(1)
    if not args.connect:
        sys.exit("--connect ENDPOINT is required for worker roles")
    return run_worker(args.connect, args.role, model.loss_and_grad, model.tensors,
                      key_file=args.key, server_public_key_file=args.server_public_key, give_up_after=120)


def launch_main(args, script: str, make_model: Callable[[], TorchModel], name: str, passthrough) -> dict:
    torch.set_num_threads(1)
    out = args.out or os.path.join("runs", name)
    os.makedirs(out, exist_ok=True)
    model = make_model()
    spec = os.path.join(out, "spec.safetensors")
    model.write_spec(spec)
    cmd = [sys.executable, script, *passthrough]
    common = [f"--lambda-init={args.lambda_init}", f"--lambda-lr={args.lambda_lr}", f"--phi-lr={args.phi_lr}",
              f"--seed={args.seed}", "--eval-every=0", f"--mode={args.mode}"]

    def one(tag: str, extra) -> dict:
        d = os.path.join(out, tag)
        print(f"{name}: {tag}: {args.steps} steps, {args.trainers} trainers + 1 validator, scope {args.scope} "
              f"(D = {model.weight_count}); logs in {d}", file=sys.stderr, flush=True)
        r = run_local(cmd, spec, d, steps=args.steps, trainers=args.trainers, scope=args.scope,
                      samples_per_step=args.samples_per_step, coordinator_args=common + extra, hypertrain=args.hypertrain)
        weights, lam, _ = load_answer(r["answer"])
        model.module.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        w = model.initial_weights()
        r["valid_loss_full"] = model.evaluate(w, "valid")
        r["lambda_hat"] = lam.tolist()
        return r

    result = {"hypertrained": one("hypertrained", [])}
    if args.baseline:
        result["baseline"] = one("baseline", ["--lambda-warmup-steps", str(args.steps)])
    h = result["hypertrained"]
    lam = np.array(h["lambda_hat"])
    print(f"λ̂ = {np.array2string(lam[:8], precision=3)}{' …' if lam.size > 8 else ''}  (mean {lam.mean():.3f}, from {args.lambda_init})")
    print(f"validation loss at φ(λ̂) over the whole validation split: {h['valid_loss_full']:.5f}")
    if "baseline" in result:
        print(f"same model, λ̂ frozen at {args.lambda_init}, same steps:      {result['baseline']['valid_loss_full']:.5f}")
    print(f"answer (load_state_dict after popping 'lambda_hat'): {h['answer']}")
    with open(os.path.join(out, "result.json"), "w") as f:
        json.dump({k: {"valid_loss_full": v["valid_loss_full"], "lambda_hat": v["lambda_hat"], "answer": v["answer"],
                       "summary_valid_loss": v["summary"].get("valid_loss"), "summary_train_loss": v["summary"].get("train_loss")}
                   for k, v in result.items()}, f, indent=1)
    return result
