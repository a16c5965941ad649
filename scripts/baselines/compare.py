#!/usr/bin/env python3
"""Baselines at equal trials on one hyperparameter-optimization problem.

Methods (all minimize the validation loss of an Algorithm 1 trial; `hypertrain` computes every
trial):
  ours-random    `hypertrain search --strategy random`
  ours-bayes     `hypertrain search --strategy bayes` (GP, RBF/ARD, expected improvement)
  optuna-tpe     optuna TPESampler (defaults, seed = run seed) calling `hypertrain trial`
  optuna-random  optuna RandomSampler (seed = run seed) calling `hypertrain trial`
  skopt-gp       scikit-optimize gp_minimize(acq_func="EI", random_state = run seed) calling
                 `hypertrain trial`

Trial k (0-based) of every method uses `--trial-index k` with the run seed, i.e. the same
initialisation and minibatch streams a `hypertrain search` study gives its trial k, so the
methods differ only in the λs they choose.

Default problem (DESIGN.md §1, "10-hyperparameter per-class problem"): 784-10, per-class L2
(H = 10), n_train 10,000, batch 100, trials of 2,000 Adam steps at 1e-3, λ ∈ [−12, 0]^10.

Outputs in --out:
  trials.csv    method, seed, trial, valid/test loss of the trial, best-so-far valid and the
                test loss of that best trial, elapsed seconds, λ
  summary.csv   per method: mean ± sd over seeds of the final best valid / test loss, plus the
                best valid at a few trial counts, and per-seed wins against ours-random
  summary.md    the same as a Markdown table
  best_so_far.png  mean best-so-far validation (and test) loss against trials
  raw/          per-run JSON Lines (a finished run is not repeated unless --force)

Run with the project venv: .venv/bin/python scripts/baselines/compare.py [--quick]
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
ALL_METHODS = ["ours-random", "ours-bayes", "optuna-tpe", "optuna-random", "skopt-gp"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=32)
    p.add_argument("--seeds", default="1,2,3,4,5", help="comma-separated run seeds")
    p.add_argument("--methods", default=",".join(ALL_METHODS))
    p.add_argument("--trial-steps", type=int, default=2000)
    p.add_argument("--trial-lr", type=float, default=1e-3)
    p.add_argument("--n-train", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--layers", default="784-10")
    p.add_argument("--scope", default="per-class")
    p.add_argument("--box", default="-12:0", help="LO:HI for every λ component")
    p.add_argument("--parallel", type=int, default=1, help="trial workers of the `hypertrain search` runs")
    p.add_argument("--bin", default=os.environ.get("HT_BIN", str(ROOT / ".build-base/release/hypertrain")))
    p.add_argument("--data", default=os.environ.get("HYPERTRAIN_DATA", str(ROOT / "data/mnist")))
    p.add_argument("--out", default=str(ROOT / "runs/baselines/compare"))
    p.add_argument("--force", action="store_true", help="repeat runs whose results already exist")
    p.add_argument("--plot-only", action="store_true", help="only rebuild CSV/table/PNG from raw/")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 6 trials of 100 steps, n_train 1,000, seed 1, out runs/baselines/quick")
    a = p.parse_args(argv)
    if a.quick:
        a.trials, a.trial_steps, a.n_train, a.seeds = 6, 100, 1000, "1"
        if a.out == str(ROOT / "runs/baselines/compare"):
            a.out = str(ROOT / "runs/baselines/quick")
    a.seed_list = [int(s) for s in a.seeds.split(",") if s.strip()]
    a.method_list = [m.strip() for m in a.methods.split(",") if m.strip()]
    bad = [m for m in a.method_list if m not in ALL_METHODS]
    if bad:
        p.error(f"unknown method(s) {bad}; choose from {ALL_METHODS}")
    lo, hi = (float(v) for v in a.box.split(":"))
    if not lo < hi:
        p.error("--box must be LO:HI with LO < HI")
    a.lo, a.hi = lo, hi
    return a


def experiment_flags(a, seed):
    return ["--layers", a.layers, "--scope", a.scope, "--n-train", str(a.n_train), "--batch-size", str(a.batch_size),
            "--seed", str(seed), "--data", a.data]


def hyperparameter_count(a):
    """H for the scope: ask `hypertrain trial` itself (the error message names H)."""
    r = subprocess.run([a.bin, "trial", *experiment_flags(a, 1), "--lambda=0,0", "--trial-steps", "1"],
                       capture_output=True, text=True)
    import re
    m = re.search(r"H = (\d+)", r.stderr)
    if m:
        return int(m.group(1))
    if r.returncode == 0:  # H = 2
        return 2
    raise SystemExit(f"could not determine H: {r.stderr.strip()}")


# ---------------------------------------------------------------------------------------------
# Runs. Each returns a list of per-trial dicts in completion order:
#   {"trial": k, "lambda": [...], "valid_loss": v, "test_loss": t, "elapsed_seconds": s}
# ---------------------------------------------------------------------------------------------

def run_ours(a, strategy, seed, raw):
    stem = raw / f"ours-{strategy}-{seed}"
    for suffix in (".sqlite", ".jsonl", ".summary.json"):
        pathlib.Path(str(stem) + suffix).unlink(missing_ok=True)
    cmd = [a.bin, "search", *experiment_flags(a, seed), "--strategy", strategy, "--trials", str(a.trials),
           "--trial-steps", str(a.trial_steps), "--trial-lr", str(a.trial_lr), f"--box={a.box}",
           "--parallel", str(a.parallel), "--study", f"{stem}.sqlite", "--metrics", f"{stem}.jsonl",
           "--summary", f"{stem}.summary.json"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}\nfailed ({r.returncode}):\n{r.stderr[-2000:]}")
    rows = []
    with open(f"{stem}.jsonl") as f:
        for line in f:
            m = json.loads(line)
            rows.append({"trial": m["trial"], "lambda": m.get("lambda"),
                         "valid_loss": m["valid_loss"] if m["valid_loss"] is not None else math.inf,
                         "test_loss": m["test_loss"] if m["test_loss"] is not None else math.nan,
                         "elapsed_seconds": m["elapsed_seconds"]})
    with open(f"{stem}.summary.json") as f:
        summary = json.load(f)
    return rows, {"wall_seconds": summary["wall_seconds"]}


class TrialObjective:
    """Calls `hypertrain trial` once per evaluation; trial k gets --trial-index k."""

    def __init__(self, a, seed):
        self.a, self.seed = a, seed
        self.rows, self.start = [], time.monotonic()

    def __call__(self, lam):
        k = len(self.rows)
        cmd = [self.a.bin, "trial", *experiment_flags(self.a, self.seed), "--trial-steps", str(self.a.trial_steps),
               "--trial-lr", str(self.a.trial_lr), "--trial-index", str(k),
               "--lambda=" + ",".join(repr(float(v)) for v in lam)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"hypertrain trial failed ({r.returncode}): {r.stderr.strip()}")
        out = json.loads(r.stdout.strip().splitlines()[-1])
        valid = out["valid_loss"] if out["valid_loss"] is not None else math.inf
        test = out["test_loss"] if out["test_loss"] is not None else math.nan
        self.rows.append({"trial": k, "lambda": [float(v) for v in lam], "valid_loss": valid, "test_loss": test,
                          "elapsed_seconds": time.monotonic() - self.start, "trial_seconds": out["wall_seconds"]})
        return valid


def run_optuna(a, sampler_name, seed, h):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (optuna.samplers.TPESampler(seed=seed) if sampler_name == "tpe"
               else optuna.samplers.RandomSampler(seed=seed))
    objective = TrialObjective(a, seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)

    def f(trial):
        lam = [trial.suggest_float(f"lambda_{i}", a.lo, a.hi) for i in range(h)]
        v = objective(lam)
        return v if math.isfinite(v) else 1e9   # a diverged trial: worse than anything

    study.optimize(f, n_trials=a.trials)
    return objective.rows, {"wall_seconds": time.monotonic() - objective.start}


def run_skopt(a, seed, h):
    from skopt import gp_minimize
    objective = TrialObjective(a, seed)

    def f(lam):
        v = objective(lam)
        return v if math.isfinite(v) else 1.0

    gp_minimize(f, [(a.lo, a.hi)] * h, n_calls=a.trials, n_initial_points=min(10, a.trials),
                acq_func="EI", random_state=seed)
    return objective.rows, {"wall_seconds": time.monotonic() - objective.start}


def run_method(a, method, seed, h, raw):
    path = raw / f"{method}-{seed}.json"
    if path.exists() and not a.force:
        data = json.loads(path.read_text())
        if len(data["rows"]) >= a.trials:
            return data
    if a.plot_only:
        return None
    t0 = time.monotonic()
    if method == "ours-random":
        rows, info = run_ours(a, "random", seed, raw)
    elif method == "ours-bayes":
        rows, info = run_ours(a, "bayes", seed, raw)
    elif method == "optuna-tpe":
        rows, info = run_optuna(a, "tpe", seed, h)
    elif method == "optuna-random":
        rows, info = run_optuna(a, "random", seed, h)
    else:
        rows, info = run_skopt(a, seed, h)
    data = {"method": method, "seed": seed, "rows": rows, **info, "driver_seconds": time.monotonic() - t0,
            "settings": {k: getattr(a, k) for k in ("trials", "trial_steps", "trial_lr", "n_train", "batch_size",
                                                    "layers", "scope", "box", "parallel")}}
    path.write_text(json.dumps(data))
    return data


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------

def best_so_far(rows):
    out, best = [], (math.inf, math.nan)
    for r in rows:
        if r["valid_loss"] < best[0]:
            best = (r["valid_loss"], r["test_loss"])
        out.append(best)
    return out


def mean_sd(xs):
    xs = [x for x in xs if math.isfinite(x)]
    if not xs:
        return math.nan, math.nan
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


def report(a, results):
    out = pathlib.Path(a.out)
    with open(out / "trials.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "seed", "trial", "trial_index", "valid_loss", "test_loss", "best_valid_loss",
                    "best_test_loss", "elapsed_seconds", "lambda"])
        for (method, seed), data in sorted(results.items()):
            for n, (r, (bv, bt)) in enumerate(zip(data["rows"], best_so_far(data["rows"])), start=1):
                w.writerow([method, seed, n, r["trial"], r["valid_loss"], r["test_loss"], bv, bt,
                            round(r["elapsed_seconds"], 3), json.dumps(r["lambda"])])

    checkpoints = sorted({c for c in (8, 16, a.trials) if c <= a.trials})
    random_final = {seed: best_so_far(d["rows"])[-1][0] for (m, seed), d in results.items() if m == "ours-random"}
    table = []
    for method in a.method_list:
        runs = [(seed, d) for (m, seed), d in sorted(results.items()) if m == method]
        if not runs:
            continue
        curves = [best_so_far(d["rows"][: a.trials]) for _, d in runs]
        row = {"method": method, "seeds": len(runs)}
        row["best_valid_mean"], row["best_valid_sd"] = mean_sd([c[-1][0] for c in curves])
        row["best_test_mean"], row["best_test_sd"] = mean_sd([c[-1][1] for c in curves])
        for c in checkpoints:
            row[f"valid_at_{c}"] = mean_sd([cv[min(c, len(cv)) - 1][0] for cv in curves])[0]
        wins = [best_so_far(d["rows"])[-1][0] < random_final[s] for s, d in runs if s in random_final]
        row["beats_ours_random"] = f"{sum(wins)}/{len(wins)}" if wins and method != "ours-random" else ""
        row["wall_seconds_mean"] = mean_sd([d["wall_seconds"] for _, d in runs])[0]
        table.append(row)
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table[0].keys()))
        w.writeheader()
        w.writerows(table)
    lines = [f"Best validation / test loss after {a.trials} trials ({a.trial_steps} Adam steps each, n_train "
             f"{a.n_train}, {a.scope}, λ ∈ [{a.lo:g}, {a.hi:g}]); mean ± sd over seeds {a.seeds}.", "",
             "| method | best valid | test at best valid | " + " | ".join(f"valid @{c}" for c in checkpoints)
             + " | beats ours-random | wall s |",
             "|---|---|---|" + "---|" * len(checkpoints) + "---|---|"]
    for r in table:
        lines.append(f"| {r['method']} | {r['best_valid_mean']:.5f} ± {r['best_valid_sd']:.5f} | "
                     f"{r['best_test_mean']:.5f} ± {r['best_test_sd']:.5f} | "
                     + " | ".join(f"{r[f'valid_at_{c}']:.5f}" for c in checkpoints)
                     + f" | {r['beats_ours_random']} | {r['wall_seconds_mean']:.1f} |")
    per_seed = ["", "Final best validation loss per seed:", "",
                "| method | " + " | ".join(str(s) for s in a.seed_list) + " |",
                "|---|" + "---|" * len(a.seed_list)]
    for method in a.method_list:
        cells = []
        for s in a.seed_list:
            d = results.get((method, s))
            cells.append(f"{best_so_far(d['rows'])[-1][0]:.5f}" if d else "–")
        per_seed.append(f"| {method} | " + " | ".join(cells) + " |")
    (out / "summary.md").write_text("\n".join(lines + per_seed) + "\n")
    print("\n".join(lines + per_seed))
    plot(a, results, out / "best_so_far.png")


def plot(a, results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    lows, highs = [math.inf, math.inf], [-math.inf, -math.inf]   # y range: from trial 5 on
    for method in a.method_list:
        curves = [best_so_far(d["rows"][: a.trials]) for (m, _), d in sorted(results.items()) if m == method]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        for ax, j in zip(axes, (0, 1)):
            arr = np.array([[c[i][j] for i in range(n)] for c in curves])
            x = np.arange(1, n + 1)
            mean = arr.mean(axis=0)
            line, = ax.plot(x, mean, label=f"{method} (n={len(curves)})")
            settled = arr[:, min(4, n - 1):]
            lows[j] = min(lows[j], float(np.nanmin(settled)))
            highs[j] = max(highs[j], float(np.nanmax(mean[min(4, n - 1):])))
            if len(curves) > 1:
                sd = arr.std(axis=0, ddof=1)
                ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=0.12)
    for j, ax in enumerate(axes):
        if math.isfinite(lows[j]) and highs[j] > lows[j]:
            pad = 0.1 * (highs[j] - lows[j])
            ax.set_ylim(lows[j] - pad, highs[j] + 3 * pad)
    for ax, what in zip(axes, ("best-so-far validation loss", "test loss of the best-so-far trial")):
        ax.set_xlabel("trials")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"{a.layers} {a.scope}, n_train {a.n_train}, {a.trial_steps}-step trials, λ ∈ [{a.lo:g}, {a.hi:g}]: "
                 "mean ± sd over seeds (y from trial 5 on)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main(argv=None):
    a = parse_args(argv)
    if not a.plot_only and not os.access(a.bin, os.X_OK):
        raise SystemExit(f"no hypertrain binary at {a.bin}; build it or pass --bin")
    out = pathlib.Path(a.out)
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    h = hyperparameter_count(a) if not a.plot_only else None
    results = {}
    for seed in a.seed_list:
        for method in a.method_list:
            t0 = time.monotonic()
            data = run_method(a, method, seed, h, raw)
            if data is None:
                continue
            results[(method, seed)] = data
            best = best_so_far(data["rows"])[-1]
            print(f"{method:14s} seed {seed}: best valid {best[0]:.5f} test {best[1]:.5f} "
                  f"({len(data['rows'])} trials, {time.monotonic() - t0:.1f} s)", file=sys.stderr, flush=True)
    if results:
        report(a, results)


if __name__ == "__main__":
    main()
