#!/usr/bin/env python3
"""Draws the PNG of one reproduced figure from the CSV files `hypertrain experiment` wrote.

    python scripts/plot_experiment.py NAME DIR     # reads DIR/NAME_*.csv, writes DIR/NAME.png

Each figure's CSV columns are documented by the Swift code that writes them
(Sources/Experiments); this script only draws.
"""
import csv
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(directory, base):
    """Columns of DIR/base.csv as lists (numbers where they parse, None for empty fields)."""
    path = os.path.join(directory, base + ".csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    cols = {}
    for row in rows:
        for k, v in row.items():
            if v == "":
                val = None
            else:
                try:
                    val = float(v)
                except ValueError:
                    val = v
            cols.setdefault(k, []).append(val)
    return cols


def pairs(xs, ys):
    """(x, y) lists without the rows where y is missing."""
    keep = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None and not (isinstance(y, float) and math.isnan(y))]
    return [p[0] for p in keep], [p[1] for p in keep]


def summary(directory, name):
    path = os.path.join(directory, name + "_summary.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def curve_figure(directory, name):
    """Fig. 3 / Fig. 4: hypernetwork curve vs CV points, plus the λ̂ trajectory."""
    curve, cv, traj = read(directory, f"{name}_curve"), read(directory, f"{name}_cv"), read(directory, f"{name}_trajectory")
    nums = summary(directory, name).get("numbers", {})
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    a.plot(*pairs(curve["lambda"], curve["hypernet_valid_loss"]), label="validation loss of φ(λ) (hypernetwork)", color="C0")
    a.plot(*pairs(curve["lambda"], curve["hypernet_train_loss"]), label="training loss of φ(λ) (incl. penalty)", color="C2", alpha=0.6)
    a.plot(*pairs(cv["lambda"], cv["cv_valid_loss"]), "o", label="cross-validation (Algorithm 1)", color="C3")
    lam_hat = nums.get("lambda_hat_final")
    if lam_hat is not None:
        a.axvline(lam_hat, color="C1", ls="--", label=f"final λ̂ = {lam_hat:.3f}")
    star = nums.get("lambda_star_cv")
    if star is not None:
        a.axvline(star, color="C3", ls=":", label=f"λ*_CV = {star:.3f}")
    ys = [y for y in curve["hypernet_valid_loss"] + cv["cv_valid_loss"] if isinstance(y, float) and math.isfinite(y)]
    if ys:
        lo, hi = min(ys), sorted(ys)[int(0.8 * (len(ys) - 1))]
        a.set_ylim(lo - 0.1 * (hi - lo + 1e-9), hi + 0.3 * (hi - lo + 1e-9))
    a.set_xlabel("λ (log L2 weight)")
    a.set_ylabel("loss")
    a.legend(fontsize=8)
    a.set_title("loss against λ")
    b.plot(*pairs(traj["step"], traj["lambda_mean"]), color="C1")
    if star is not None:
        b.axhline(star, color="C3", ls=":", label="λ*_CV")
        b.legend(fontsize=8)
    b.set_xlabel("step")
    b.set_ylabel("λ̂")
    b.set_title("λ̂ during hyper-training")
    return fig


def fig5_top(directory):
    h, u = read(directory, "fig5-top_hypertraining"), read(directory, "fig5-top_unrolled")
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, zoom in [(axes[0], False), (axes[1], True)]:
        ax.plot(*pairs(h["seconds"], h["valid_loss"]), "-", color="C0", label="hyper-training: validation")
        ax.plot(*pairs(h["seconds"], h["test_loss"]), "--", color="C0", label="hyper-training: test")
        ax.plot(*pairs(u["seconds"], u["valid_loss"]), "-", color="C3", label="unrolled: validation")
        ax.plot(*pairs(u["seconds"], u["test_loss"]), "--", color="C3", label="unrolled: test")
        ax.set_xlabel("training wall time (s)")
        ax.set_ylabel("loss (MSE)")
        ys = [y for line in ax.get_lines() for y in line.get_ydata() if math.isfinite(y) and y > 0]
        if zoom and ys:
            ax.set_ylim(min(ys) * 0.99, min(ys) * 1.08)
            ax.set_title("within 8 % of the best", fontsize=9)
        else:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    return fig


def fig5_bottom(directory):
    t = read(directory, "fig5-bottom")
    layers = list(dict.fromkeys(t["layers"]))
    methods = list(dict.fromkeys(t["method"]))
    fig, ax = plt.subplots(figsize=(9, 5))
    width = 0.8 / (2 * len(methods))
    for mi, m in enumerate(methods):
        for si, split in enumerate(["valid_loss", "test_loss"]):
            vals = []
            for li, lay in enumerate(layers):
                v = [t[split][i] for i in range(len(t["layers"])) if t["layers"][i] == lay and t["method"][i] == m]
                vals.append(v[0] if v and v[0] is not None else float("nan"))
            pos = [li + (2 * mi + si - len(methods) + 0.5) * width for li in range(len(layers))]
            ax.bar(pos, vals, width, label=f"{m}: {split.split('_')[0]}", color=f"C{mi}", alpha=1.0 if si == 0 else 0.55)
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(layers)
    # Log scale: a diverged run (loss ≫ 1) and the good ones (≈ 0.01–0.05) on one axis.
    ax.set_yscale("log")
    ax.set_ylabel("loss (MSE, log scale)")
    ax.legend(fontsize=8)
    return fig


def fig6(directory):
    t = read(directory, "fig6_heldout")
    cols = [("gp_pred", "GP on 25 (λ, L_valid)"), ("fit_hypernet_pred", "hypernet fitted to 25 w*(λ)"),
            ("hypertrained_pred", "hypernet by Algorithm 2")]
    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    truth = t["true_valid_loss"]
    allv = [v for c, _ in cols for v in t[c] if v is not None] + [v for v in truth if v is not None]
    lo, hi = min(allv), max(allv)
    for k, (c, label) in enumerate(cols):
        x, y = pairs(truth, t[c])
        err = [b - a for a, b in zip(x, y)]
        axes[0][k].hist(err, bins=30, color=f"C{k}")
        axes[0][k].axvline(0, color="k", lw=0.8)
        axes[0][k].set_title(label, fontsize=10)
        axes[0][k].set_xlabel("predicted − true validation loss")
        axes[1][k].scatter(x, y, s=8, color=f"C{k}")
        axes[1][k].plot([lo, hi], [lo, hi], "k", lw=0.8)
        axes[1][k].set_xlabel("true validation loss")
        axes[1][k].set_ylabel("predicted")
    return fig


def best_so_far(xs, ys):
    """Running minimum of ys (missing values skipped), as (x, y) lists."""
    out_x, out_y, best = [], [], math.inf
    for x, y in zip(xs, ys):
        if y is None or not math.isfinite(y):
            continue
        best = min(best, y)
        out_x.append(x)
        out_y.append(best)
    return out_x, out_y


def fig7(directory):
    h = read(directory, "fig7_hypertraining")
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    for ax, split, zoom in [(axes[0][0], "valid", False), (axes[0][1], "test", False),
                            (axes[1][0], "valid", True), (axes[1][1], "test", True)]:
        # The answer at each time: the best validation evaluation so far (and, for the test
        # panel, the test loss of that same evaluation); every raw evaluation faint.
        xs, vs = pairs(h["seconds"], h["valid_loss"])
        _, ts = pairs(h["seconds"], h["test_loss"])
        ax.plot(xs, vs if split == "valid" else ts, color="C0", alpha=0.25, lw=0.8)
        bx, by, best, at = [], [], math.inf, math.nan
        for x, v, t in zip(xs, vs, ts):
            if math.isfinite(v) and v < best:
                best, at = v, t
            if math.isfinite(best):
                bx.append(x)
                by.append(best if split == "valid" else at)
        ax.step(bx, by, where="post", color="C0", lw=2, label="hyper-training, recipe (best so far; raw evaluations faint)")
        if os.path.exists(os.path.join(directory, "fig7_hypertraining_paper.csv")):
            hp = read(directory, "fig7_hypertraining_paper")
            ax.plot(*pairs(hp["seconds"], hp[f"{split}_loss"]), color="C3", lw=1, label="hyper-training, paper's form w = φ(λ) (raw)")
        for k, name in [(1, "random"), (2, "bayes")]:
            path = os.path.join(directory, f"fig7_{name}.csv")
            if not os.path.exists(path):
                continue
            s = read(directory, f"fig7_{name}")
            col = "best_valid_loss" if split == "valid" else "test_loss_at_best"
            label = {"random": "random search", "bayes": "Bayesian optimization"}[name]
            ax.step(*pairs(s["finished_seconds"], s[col]), where="post", color=f"C{k}", lw=2, label=f"{label} (best so far)")
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel(f"{'validation' if split == 'valid' else 'test'} loss (MSE)")
        # Top row: every method's whole curve (log scale, from the best value to the largest
        # any method reaches after its first evaluation). Bottom row: the last few percent
        # where the methods differ (lines above it leave the panel).
        ys = [y for line in ax.get_lines() for y in line.get_ydata()[1:] if math.isfinite(y) and y > 0]
        if ys and not zoom:
            ax.set_yscale("log")
            ax.set_ylim(min(ys) * 0.98, max(ys) * 1.05)
        elif ys:
            ax.set_ylim(min(ys) * 0.99, min(ys) * 1.08)
            ax.set_title(f"{'validation' if split == 'valid' else 'test'}: within 8 % of the best", fontsize=9)
        ax.legend(fontsize=7)
    return fig


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    name, directory = sys.argv[1], sys.argv[2]
    draw = {
        "fig3": lambda d: curve_figure(d, "fig3"),
        "fig4": lambda d: curve_figure(d, "fig4"),
        "fig5-top": fig5_top,
        "fig5-bottom": fig5_bottom,
        "fig6": fig6,
        "fig7": fig7,
    }.get(name)
    if draw is None:
        print(f"plot_experiment: unknown figure {name!r}", file=sys.stderr)
        return 2
    fig = draw(directory)
    title = summary(directory, name).get("title", name)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out = os.path.join(directory, name + ".png")
    fig.savefig(out, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
