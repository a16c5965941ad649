#!/usr/bin/env python3
"""Checks hyper-training runs for stability from their metrics (JSON Lines of `hypertrain run
--metrics F --eval-every N`): every logged loss finite, and after the first 10 % of the steps
the full-split validation loss never above 2x its running minimum. Prints one line per file
and exits 1 when any file fails.

    scripts/check_stability.py runs/stability/*.jsonl [--max-final-valid deep=0.02]
"""
import json
import math
import sys


def check(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    if not rows:
        return False, "no metrics", math.nan
    last_step = max(r["step"] for r in rows)
    problems = []
    running_min = math.inf
    worst_ratio = 0.0
    for r in rows:
        for key in ("train_loss", "valid_batch_loss", "valid_loss", "test_loss"):
            v = r.get(key)
            if v is not None and not math.isfinite(v):
                problems.append(f"{key} not finite at step {r['step']}")
        v = r.get("valid_loss")
        if v is None or not math.isfinite(v):
            continue
        if r["step"] > 0.1 * last_step and math.isfinite(running_min):
            ratio = v / running_min
            worst_ratio = max(worst_ratio, ratio)
            if ratio > 2:
                problems.append(f"valid {v:.5g} > 2x running minimum {running_min:.5g} at step {r['step']}")
        running_min = min(running_min, v)
    final = [r["valid_loss"] for r in rows if r.get("valid_loss") is not None][-1]
    text = f"steps {last_step}, final valid {final:.5f}, worst valid/running-min after 10 % {worst_ratio:.3f}"
    return not problems, text + ("" if not problems else "; " + "; ".join(problems[:3])), final


def main(argv):
    limits = {}
    files = []
    i = 0
    while i < len(argv):
        if argv[i] == "--max-final-valid":
            name, value = argv[i + 1].split("=")
            limits[name] = float(value)
            i += 2
        else:
            files.append(argv[i])
            i += 1
    all_ok = True
    for f in files:
        ok, text, final = check(f)
        for name, limit in limits.items():
            if name in f.rsplit("/", 1)[-1] and not final < limit:
                ok = False
                text += f"; final valid {final:.5f} not below {limit}"
        all_ok &= ok
        print(("ok    " if ok else "FAIL  ") + f + ": " + text)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
