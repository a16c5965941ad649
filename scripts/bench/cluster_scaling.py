#!/usr/bin/env python3
"""Cluster scaling (issue 13): tables, speed-up model and PNG from `hypertrain bench cluster` /
`bench study` CSV files.

    python3 scripts/bench/cluster_scaling.py DIR [--png docs/cluster_scaling.png]

Reads DIR/cluster_{sweep,components,real}_PRESET.csv and DIR/study_*.csv; writes
DIR/cluster_scaling.md (markdown tables), DIR/cluster_model.csv and the PNG.

The model (times per step, from measured components only):
  c(S)    coordinator CPU per sync step with S training tasks = a + b*S + q*S^2, least squares
          over the data-parallel sweep (S = K synthetic workers, one task each per step); the
          quadratic term is the scheduler visiting every peer on every work request;
  m       messaging and waiting per step: wall time per step of the synthetic sync run with
          K = 1 minus its coordinator CPU per step (the synthetic trainer computes nothing);
  t_tr, t_va  one real trainer / validator task, single-threaded;
  T_lat(K) = c(S) + m + max(ceil(S/K)*t_tr, t_va)        critical path of a step
  T_cpu(K) = (c(S) + S*t_tr + t_va) / cores               all CPU work of a step over the cores
  T(K)     = max(T_lat, T_cpu);  speed-up = T_single / T(K), T_single = 1 / single-process rate.
For K real workers on K cores (plus one each for the coordinator and the validator) T_cpu never
binds; on this machine (2 cores) it does, and the K = 1, 2 check uses cores = 2.
Variant B (added after the first check): c(S) + m replaced by the wall time per step of the
synthetic sync run at the same K (coordinator, messages and the contention of K + 1 worker
processes, measured end to end): T_B(K) = max(T_synth(K) + max(ceil(S/K)*t_tr, t_va), T_cpu).
"""
import argparse
import csv
import glob
import math
import os
import sys

PRESETS = ["fig4", "fig7", "fig5", "deep"]


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def fnum(x):
    return float(x)


def fit_line(xs, ys):
    n = len(xs)
    if n < 2:
        return (ys[0] if ys else float("nan")), 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else 0.0
    return my - b * mx, b


def fit_quadratic(xs, ys):
    """Least squares c(S) = a + b*S + q*S^2 (q >= 0; a linear fit when it comes out negative)."""
    import numpy as np
    if len(xs) < 3:
        a, b = fit_line(xs, ys)
        return a, b, 0.0
    X = np.array([[1.0, x, x * x] for x in xs])
    coef, *_ = np.linalg.lstsq(X, np.array(ys), rcond=None)
    a, b, q = (float(c) for c in coef)
    if q < 0:
        a, b = fit_line(xs, ys)
        q = 0.0
    return a, b, q


def model_step(c, m, t_tr, t_va, S, K, cores):
    lat = c + m + max(math.ceil(S / K) * t_tr, t_va)
    cpu = (c + S * t_tr + t_va) / cores if cores else 0.0
    return max(lat, cpu), lat, cpu


def fmt(x, digits=0):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.{digits}f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--png", default=None)
    args = ap.parse_args()
    d = args.dir
    out_md = []
    model_rows = []
    curves = {}
    summary = []
    for p in PRESETS:
        sweep_path = os.path.join(d, f"cluster_sweep_{p}.csv")
        if not os.path.exists(sweep_path):
            continue
        sweep = read(sweep_path)
        comp = read(os.path.join(d, f"cluster_components_{p}.csv"))[0]
        real_path = os.path.join(d, f"cluster_real_{p}.csv")
        real = read(real_path) if os.path.exists(real_path) else []
        S0 = int(comp["samples_per_step"])
        r1 = fnum(comp["single_steps_per_s"])
        r1cpu = fnum(comp["single_cpu_steps_per_s"])
        g1 = r1 * S0
        g1cpu = r1cpu * S0
        t_tr, t_va = fnum(comp["train_task_s"]), fnum(comp["valid_task_s"])

        out_md.append(f"\n### {p}\n")
        out_md.append(
            f"Components (this process, single-threaded, load {comp['loadavg']}): single process "
            f"{fmt(r1, 1)} steps/s = {fmt(g1)} gradients/s ({fmt(r1cpu, 1)} steps per CPU-s = {fmt(g1cpu)} gradients per CPU-s); "
            f"trainer task {fmt(t_tr * 1e6, 1)} µs (φ form {fmt(fnum(comp['train_phi_task_s']) * 1e6, 1)} µs), "
            f"validator task {fmt(t_va * 1e6, 1)} µs; messages: trainer task {fmt(int(comp['train_task_bytes']) / 1024, 1)} KiB, "
            f"gradient {fmt(int(comp['gradient_bytes']) / 1024, 1)} KiB, validator task {fmt(int(comp['valid_task_bytes']) / 1024, 1)} KiB, "
            f"hypergradient {fmt(int(comp['hypergradient_bytes']) / 1024, 1)} KiB, φ {fmt(int(comp['phi_bytes']) / 1024, 1)} KiB.\n")
        out_md.append("| mode | S | K | steps/s | gradients/s | × single (wall) | gradients per coord. CPU-s | × single (per CPU-s) | coord. CPU µs/step | busy µs/step: receive / intake / update / dispatch | load |")
        out_md.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in sweep:
            steps = fnum(r["steps"])
            if steps <= 0:
                continue
            per = lambda k: 1e6 * fnum(r[k]) / steps
            out_md.append(
                f"| {r['mode']} | {r['samples_per_step']} | {r['workers']} | {fmt(fnum(r['steps_per_s']), 1)} | {fmt(fnum(r['gradients_per_s']))} | "
                f"{fnum(r['gradients_per_s']) / g1:.2f}× | {fmt(fnum(r['gradients_per_cpu_s']))} | {fnum(r['gradients_per_cpu_s']) / g1cpu:.2f}× | "
                f"{fmt(per('coord_cpu_s'), 1)} | {fmt(per('receive_s'), 1)} / {fmt(per('intake_s'), 1)} / {fmt(per('update_s'), 1)} / {fmt(per('dispatch_s'), 1)} | {r['loadavg']} |")
        # Fit of the coordinator's CPU per step against S (data-parallel sweep).
        dp = [r for r in sweep if r["mode"] == "data-parallel" and fnum(r["steps"]) > 0]
        xs = [int(r["samples_per_step"]) for r in dp]
        ys = [fnum(r["coord_cpu_s"]) / fnum(r["steps"]) for r in dp]
        a, b, q = fit_quadratic(xs, ys)
        sync = {int(r["workers"]): r for r in sweep if r["mode"] == "sync" and fnum(r["steps"]) > 0}
        if 1 in sync:
            r = sync[1]
            wall1 = fnum(r["seconds"]) / fnum(r["steps"])
            cpu1 = fnum(r["coord_cpu_s"]) / fnum(r["steps"])
            m = max(wall1 - cpu1, 0.0)
        else:
            m = 0.0
        best_dp = max((fnum(r["gradients_per_s"]) for r in dp), default=float("nan"))
        best_dp_cpu = max((fnum(r["gradients_per_cpu_s"]) for r in dp), default=float("nan"))
        # Gradients per coordinator CPU-second S / c(S) peaks at S* = sqrt(a / q) (or grows to 1/b).
        s_star = math.sqrt(a / q) if q > 0 and a > 0 else float("inf")
        sat = (s_star / (a + b * s_star + q * s_star ** 2)) if math.isfinite(s_star) else (1.0 / b if b > 0 else float("nan"))
        out_md.append(
            f"\nFit over the data-parallel sweep (coordinator CPU per step): c(S) = {fmt(a * 1e6, 1)} µs + {fmt(b * 1e6, 1)} µs × S "
            f"+ {q * 1e6:.2f} µs × S² (fixed, per task, and the scheduler's per-peer scan). Gradients per coordinator CPU-second S/c(S) "
            f"peak at S ≈ {fmt(s_star)}: {fmt(sat)} = {sat / g1cpu:.2f}× the single process's gradients per CPU-second. "
            f"Messaging and waiting per sync step (synthetic K = 1: wall − coordinator CPU): m = {fmt(m * 1e6, 1)} µs. "
            f"Highest measured: {fmt(best_dp)} gradients/s wall ({best_dp / g1:.2f}× single), {fmt(best_dp_cpu)} per coordinator CPU-s "
            f"({best_dp_cpu / g1cpu:.2f}×).\n")
        summary.append((p, g1, g1cpu, best_dp, best_dp_cpu, sat))

        # Model: S = preset's samples per step, on this 2-core machine, and K workers on K cores.
        def c_of(S):
            return max(a + b * S + q * S * S, 0.0)

        def c_sync(K):
            r = sync.get(K)
            return fnum(r["coord_cpu_s"]) / fnum(r["steps"]) if r else c_of(S0)

        t_single = 1.0 / r1
        out_md.append("Speed-up model (steps/s; S = " + str(S0) + "):\n")
        out_md.append("| K | predicted, 2 cores | measured `run --workers K` | error | variant B, 2 cores | error B | predicted, K workers on K cores (+coordinator, validator) | speed-up | data-parallel S = K: predicted gradients/s | × single |")
        out_md.append("|---|---|---|---|---|---|---|---|---|---|")
        measured = {int(r["workers"]): fnum(r["steps_per_s_after_startup"]) for r in real}
        ks = [1, 2, 4, 8, 16, 32, 64]
        curve = []
        for K in ks:
            T2, _, _ = model_step(c_sync(K) if K <= 2 else c_of(S0), m, t_tr, t_va, S0, K, 2)
            Tk, _, _ = model_step(c_of(S0), m, t_tr, t_va, S0, K, 0)
            Tdp, _, _ = model_step(c_of(K), m, t_tr, t_va, K, K, 0)
            gdp = K / Tdp
            meas = measured.get(K)
            err = (1 / T2) / meas - 1 if meas else None
            TB = None
            if K <= 2 and K in sync:
                r = sync[K]
                t_synth = fnum(r["seconds"]) / fnum(r["steps"])
                TB = max(t_synth + max(math.ceil(S0 / K) * t_tr, t_va), (c_sync(K) + S0 * t_tr + t_va) / 2)
            errB = (1 / TB) / meas - 1 if (TB and meas) else None
            model_rows.append([p, K, 1 / T2, meas if meas else "", err if err is not None else "", 1 / Tk, t_single / Tk, gdp, gdp / g1,
                               1 / TB if TB else "", errB if errB is not None else ""])
            curve.append((K, 1 / Tk * S0 / g1, gdp / g1))
            out_md.append(
                f"| {K} | {fmt(1 / T2, 1) if K <= 2 else '–'} | {fmt(meas, 1) if meas else '–'} | {('%+.1f %%' % (100 * err)) if err is not None else '–'} | "
                f"{fmt(1 / TB, 1) if TB else '–'} | {('%+.1f %%' % (100 * errB)) if errB is not None else '–'} | "
                f"{fmt(1 / Tk, 1)} | {t_single / Tk:.2f}× | {fmt(gdp)} | {gdp / g1:.1f}× |")
        if 0 in measured:
            out_md.append(f"\n(`run --workers 0`, the single process, measured {fmt(measured[0], 1)} steps/s in the same window.)\n")
        curves[p] = (curve, dp, g1, g1cpu, [r for r in sweep if r["mode"] == "sync"], [r for r in sweep if r["mode"] == "async"])

    # Study.
    study_path = os.path.join(d, "study_summary.csv")
    if os.path.exists(study_path):
        out_md.append("\n### Study coordinator (Bayesian optimization)\n")
        out_md.append("| run | workers | trials | trial length s | wall s | proposals | median ms | max ms | workers waiting | load |")
        out_md.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in read(study_path):
            out_md.append(
                f"| {r['name']} | {r['workers']} | {r['trials']} | {fnum(r['trial_seconds']):.3f} | {fnum(r['wall_seconds']):.1f} | {r['proposals']} | "
                f"{1000 * fnum(r['proposal_median_s']):.1f} | {1000 * fnum(r['proposal_max_s']):.1f} | {100 * fnum(r['wait_fraction']):.2f} % | {r['loadavg']} |")
        for path in sorted(glob.glob(os.path.join(d, "study_proposals_*.csv"))):
            rows = read(path)
            name = os.path.basename(path)[len("study_proposals_"):-4]
            buckets = {}
            for r in rows:
                n = int(r["observations"])
                if n < 10:
                    continue  # the random warm-up costs nothing
                key = min(1000, (n // 100) * 100)
                batch = int(r.get("batch", 1) or 1)
                buckets.setdefault(key, []).append((fnum(r["seconds"]), batch))
            out_md.append(f"\nProposal calls by observations ({name}; per bucket: median ms per call, max ms, points per call, median ms per point): " + ", ".join(
                f"{k}+: {1000 * sorted(x for x, _ in v)[len(v) // 2]:.1f} / {1000 * max(x for x, _ in v):.1f} / {sorted(b for _, b in v)[len(v) // 2]} / "
                f"{1000 * sorted(x / b for x, b in v)[len(v) // 2]:.1f}" for k, v in sorted(buckets.items())))

    with open(os.path.join(d, "cluster_model.csv"), "w") as f:
        w = csv.writer(f)
        w.writerow(["preset", "K", "predicted_steps_per_s_2cores", "measured_steps_per_s", "error", "predicted_steps_per_s_K_cores",
                    "speedup_K_cores", "data_parallel_gradients_per_s", "data_parallel_x_single",
                    "variant_b_steps_per_s_2cores", "variant_b_error"])
        w.writerows(model_rows)
    with open(os.path.join(d, "cluster_scaling.md"), "w") as f:
        f.write("\n".join(out_md) + "\n")
    print("\n".join(out_md))

    if args.png and curves:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        colors = {"fig4": "C0", "fig7": "C1", "fig5": "C2", "deep": "C3"}
        ax = axes[0]
        for p, (curve, dp, g1, g1cpu, syn, asy) in curves.items():
            ax.plot([int(r["workers"]) for r in dp], [fnum(r["gradients_per_cpu_s"]) / g1cpu for r in dp], "o-", color=colors[p],
                    label=f"{p} data-parallel, per coord. CPU-s")
            ax.plot([int(r["workers"]) for r in dp], [fnum(r["gradients_per_s"]) / g1 for r in dp], "o:", color=colors[p], alpha=0.6)
            if syn:
                ax.plot([int(r["workers"]) for r in syn], [fnum(r["gradients_per_cpu_s"]) / g1cpu for r in syn], "s--", color=colors[p], alpha=0.5)
        ax.axhline(32, color="k", lw=0.8, ls="--")
        ax.text(1, 33, "target 32×", fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("synthetic workers K")
        ax.set_ylabel("gradients applied / single-process gradient rate")
        ax.set_title("Coordinator vs K synthetic workers\n(solid: per coordinator CPU-s, dotted: wall; dashed: sync S=2)", fontsize=9)
        ax.legend(fontsize=7)
        ax = axes[1]
        for p, (curve, dp, g1, g1cpu, syn, asy) in curves.items():
            ax.plot([k for k, _, _ in curve], [x for _, x, _ in curve], "s--", color=colors[p], label=f"{p} sync S=2 (model)")
            ax.plot([k for k, _, _ in curve], [x for _, _, x in curve], "o-", color=colors[p], label=f"{p} data-parallel S=K (model)")
        ax.plot([1, 64], [1, 64], color="k", lw=0.6, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("real workers K on K cores")
        ax.set_ylabel("predicted speed-up (gradients/s vs single process)")
        ax.set_title("Speed-up model from measured components", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.png, dpi=90)
        print(f"wrote {args.png}", file=sys.stderr)


if __name__ == "__main__":
    main()
