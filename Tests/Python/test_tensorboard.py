"""`hypertrain run --tensorboard DIR` writes event files that the official tensorboard package
reads back, with the same numbers as the JSON Lines metrics file.

Run after building: HT_BIN=.build/release/hypertrain HYPERTRAIN_DATA=data/mnist \
    .venv/bin/python -m pytest -q Tests/Python/test_tensorboard.py
"""
import json
import math
import os
import pathlib
import subprocess
import time

import pytest

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
from tensorboard.backend.event_processing import event_file_loader  # noqa: E402

STEPS = 400
LOG_EVERY = 50
EVAL_EVERY = 200
# Small data so each run takes seconds; the numbers are not the point here.
SMALL = ["--n-train", "1000", "--n-valid", "500", "--n-test", "500"]

# JSON Lines field → TensorBoard scalar tag.
SCALAR_FIELDS = {
    "train_loss": "loss/train",
    "valid_batch_loss": "loss/valid_batch",
    "valid_loss": "loss/valid",
    "test_loss": "loss/test",
    "test_error": "error/test",
    "lambda_hat_mean": "lambda_hat/mean",
    "lambda_hat_min": "lambda_hat/min",
    "lambda_hat_max": "lambda_hat/max",
}


def run(ht_bin, mnist_dir, tmp_path: pathlib.Path, *extra):
    logdir = tmp_path / "tb"
    metrics = tmp_path / "metrics.jsonl"
    cmd = [ht_bin, "run", "--steps", str(STEPS), "--log-every", str(LOG_EVERY), "--eval-every", str(EVAL_EVERY),
           "--tensorboard", str(logdir), "--metrics", str(metrics), "--quiet", "--data", mnist_dir, *SMALL, *extra]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(cmd)}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    lines = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    accumulator = event_accumulator.EventAccumulator(str(logdir), size_guidance={
        event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0, event_accumulator.TENSORS: 0,
        event_accumulator.COMPRESSED_HISTOGRAMS: 0, event_accumulator.IMAGES: 0, event_accumulator.AUDIO: 0})
    accumulator.Reload()
    return logdir, lines, accumulator


def close(a, b):
    """Equal after rounding to float32 (simple_value is a float)."""
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return math.isnan(a)
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-30)


def check_scalars(lines, accumulator):
    tags = set(accumulator.Tags()["scalars"])
    for field, tag in SCALAR_FIELDS.items():
        expected = {line["step"]: line[field] for line in lines if line.get(field) is not None}
        assert expected, f"no {field} in the metrics file"
        assert tag in tags, f"{tag} missing; scalar tags: {sorted(tags)}"
        got = {e.step: e.value for e in accumulator.Scalars(tag)}
        assert sorted(got) == sorted(expected), tag
        for step, value in expected.items():
            assert close(got[step], value), f"{tag} at step {step}: {got[step]} vs {value}"
    logged = sorted(line["step"] for line in lines)
    speeds = accumulator.Scalars("speed/steps_per_second")
    assert sorted(e.step for e in speeds) == logged
    assert all(e.value > 0 for e in speeds)
    assert logged[-1] == STEPS
    evaluated = sorted(line["step"] for line in lines if "valid_loss" in line)
    assert evaluated == [EVAL_EVERY, 2 * EVAL_EVERY]
    wall = [e.wall_time for e in accumulator.Scalars("loss/valid_batch")]
    assert wall == sorted(wall) and abs(wall[-1] - time.time()) < 3600


def check_components(lines, accumulator):
    """lambda_hat/<i> for each component when the metrics file lists them."""
    tags = set(accumulator.Tags()["scalars"])
    count = len(lines[0]["lambda_hat"])
    assert {f"lambda_hat/{i}" for i in range(count)} <= tags
    assert f"lambda_hat/{count}" not in tags
    for i in range(count):
        got = {e.step: e.value for e in accumulator.Scalars(f"lambda_hat/{i}")}
        for line in lines:
            assert close(got[line["step"]], line["lambda_hat"][i])


def check_files(logdir):
    files = sorted(p for p in logdir.iterdir())
    assert len(files) == 1 and files[0].name.startswith("events.out.tfevents."), files
    first = next(iter(event_file_loader.EventFileLoader(str(files[0])).Load()))
    assert first.file_version == "brain.Event:2"


def test_single_process_global(ht_bin, mnist_dir, tmp_path):
    logdir, lines, acc = run(ht_bin, mnist_dir, tmp_path)
    check_files(logdir)
    check_scalars(lines, acc)
    check_components(lines, acc)
    assert acc.Tags()["histograms"] == []  # one λ component: no histogram


def test_single_process_per_class_histogram(ht_bin, mnist_dir, tmp_path):
    logdir, lines, acc = run(ht_bin, mnist_dir, tmp_path, "--scope", "per-class")
    check_files(logdir)
    check_scalars(lines, acc)
    check_components(lines, acc)
    assert len(lines[0]["lambda_hat"]) == 10
    histograms = {e.step: e.histogram_value for e in acc.Histograms("lambda_hat")}
    assert sorted(histograms) == sorted(line["step"] for line in lines)
    for line in lines:
        h = histograms[line["step"]]
        values = line["lambda_hat"]
        assert h.num == len(values)
        assert math.isclose(h.min, min(values), rel_tol=1e-9) and math.isclose(h.max, max(values), rel_tol=1e-9)
        assert math.isclose(h.sum, sum(values), rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(h.sum_squares, sum(v * v for v in values), rel_tol=1e-9)
        assert sum(h.bucket) == len(values) and len(h.bucket) == len(h.bucket_limit)
        assert list(h.bucket_limit) == sorted(h.bucket_limit)
        for v in values:  # each value counted in the first bucket whose limit exceeds it
            index = next(i for i, limit in enumerate(h.bucket_limit) if limit > v)
            assert h.bucket[index] >= 1


def test_local_cluster(ht_bin, mnist_dir, tmp_path):
    logdir, lines, acc = run(ht_bin, mnist_dir, tmp_path, "--workers", "1")
    check_files(logdir)
    check_scalars(lines, acc)


def test_unwritable_directory_fails_at_start(ht_bin, mnist_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cmd = [ht_bin, "run", "--steps", "5", "--tensorboard", str(blocker / "tb"), "--quiet", "--data", mnist_dir, *SMALL]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert str(blocker) in result.stderr and "Not a directory" in result.stderr, result.stderr
    assert not (blocker.parent / "metrics.jsonl").exists()
