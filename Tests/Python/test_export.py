"""`hypertrain export` and `hypertrain predict`: the exported file, read with the official
safetensors package, holds weights whose validation and test MSE computed here in numpy from
the IDX files equal the run's summary; `predict` at λ̂ gives the same numbers; bad input is
refused with a clear message."""
import json
import math
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

# The Fig. 4 defaults (784-10, one global L2 hyperparameter, 10 training points): seconds.
RUN = ["--steps", "300", "--quiet"]
GAUSSIAN_OFFSET = -1.3836465597893728


def ht(ht_bin, *args, timeout=300):
    return subprocess.run([ht_bin, *args], capture_output=True, text=True, timeout=timeout)


def read_idx(path: pathlib.Path) -> np.ndarray:
    raw = path.read_bytes()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def splits(mnist_dir: str, config: dict):
    """validation = training images n_train … n_train+n_valid−1, test = the first n_test test images."""
    d = pathlib.Path(mnist_dir)
    x_train = read_idx(d / "train-images.idx3-ubyte").reshape(60000, 784)
    y_train = read_idx(d / "train-labels.idx1-ubyte")
    x_test = read_idx(d / "t10k-images.idx3-ubyte").reshape(10000, 784)
    y_test = read_idx(d / "t10k-labels.idx1-ubyte")
    n_train, n_valid, n_test = config["nTrain"], config["nValid"], config["nTest"]
    valid = (x_train[n_train:n_train + n_valid], y_train[n_train:n_train + n_valid])
    test = (x_test[:n_test], y_test[:n_test])
    return valid, test


def prediction_loss(tensors: dict, layers: list, images: np.ndarray, labels: np.ndarray, loss: str) -> float:
    """The elementary MLP as nn.Sequential(Linear, ReLU, …, Linear) in float64; MSE against one-hot."""
    h = images.astype(np.float64) / 255.0
    for l in range(len(layers) - 1):
        w = tensors[f"{2 * l}.weight"].astype(np.float64)
        b = tensors[f"{2 * l}.bias"].astype(np.float64)
        assert w.shape == (layers[l + 1], layers[l]) and b.shape == (layers[l + 1],)
        h = h @ w.T + b
        if l < len(layers) - 2:
            h = np.maximum(h, 0)
    mse = float(np.mean((h - np.eye(10)[labels]) ** 2))
    return mse if loss == "mse" else 50 * mse + GAUSSIAN_OFFSET


def close(a: float, b: float, rel=1e-4) -> bool:
    return abs(a - b) <= rel * abs(b)


@pytest.fixture(scope="module")
def hypernet_run(ht_bin, mnist_dir, tmp_path_factory):
    """A short single-process run: its checkpoint and summary."""
    d = tmp_path_factory.mktemp("hypernet")
    r = ht(ht_bin, "run", *RUN, "--checkpoint", str(d / "ckpt.bin"), "--summary", str(d / "summary.json"), "--data", mnist_dir)
    assert r.returncode == 0, r.stderr
    return d / "ckpt.bin", json.loads((d / "summary.json").read_text())


def export(ht_bin, mnist_dir, checkpoint, out):
    r = ht(ht_bin, "export", "--checkpoint", str(checkpoint), "--out", str(out), "--data", mnist_dir)
    assert r.returncode == 0, r.stderr
    with safe_open(str(out), framework="np") as f:
        metadata = f.metadata()
    return load_file(str(out)), metadata, r


def check_losses(tensors, metadata, mnist_dir, valid_loss, test_loss):
    config = json.loads(metadata["config"])
    layers = [int(n) for n in metadata["layers"].split("-")]
    assert layers == config["layers"]
    (xv, yv), (xt, yt) = splits(mnist_dir, config)
    valid = prediction_loss(tensors, layers, xv, yv, config["loss"])
    test = prediction_loss(tensors, layers, xt, yt, config["loss"])
    assert close(valid, valid_loss), (valid, valid_loss)
    assert close(test, test_loss), (test, test_loss)
    assert close(float(metadata["valid_loss"]), valid_loss) and close(float(metadata["test_loss"]), test_loss)


def test_export_writes_the_hypernetwork_answer_with_the_summary_losses(ht_bin, mnist_dir, hypernet_run, tmp_path):
    checkpoint, summary = hypernet_run
    tensors, metadata, r = export(ht_bin, mnist_dir, checkpoint, tmp_path / "model.safetensors")
    assert sorted(tensors) == ["0.bias", "0.weight", "lambda_hat"]
    assert tensors["0.weight"].dtype == np.float32 and tensors["0.weight"].shape == (10, 784)
    np.testing.assert_array_equal(tensors["lambda_hat"], np.array(summary["lambda_hat"], dtype=np.float32))
    assert metadata["format"] == "hypertrain-mlp-v1"
    assert metadata["layers"] == "784-10"
    assert metadata["answer"] == "hypernetwork" == summary["answer"]
    assert metadata["scope"] == "global"
    assert metadata["step"] == "300"
    assert json.loads(metadata["config"])["steps"] == 300
    check_losses(tensors, metadata, mnist_dir, summary["valid_loss"], summary["test_loss"])
    assert "wrote" in r.stdout


def test_export_of_a_deeper_centred_model_matches_numpy(ht_bin, mnist_dir, tmp_path):
    """Two layers (the ReLU between them, module names 0 and 2) and a centred hypernetwork input."""
    r = ht(ht_bin, "run", "--steps", "100", "--quiet", "--layers", "784-20-10", "--scope", "per-layer", "--hypernet-input", "centred",
           "--checkpoint", str(tmp_path / "ckpt.bin"), "--summary", str(tmp_path / "summary.json"), "--data", mnist_dir)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    tensors, metadata, _ = export(ht_bin, mnist_dir, tmp_path / "ckpt.bin", tmp_path / "model.safetensors")
    assert sorted(tensors) == ["0.bias", "0.weight", "2.bias", "2.weight", "lambda_hat"]
    assert tensors["2.weight"].shape == (10, 20) and tensors["lambda_hat"].shape == (2,)
    check_losses(tensors, metadata, mnist_dir, summary["valid_loss"], summary["test_loss"])
    p = ht(ht_bin, "predict", "--checkpoint", str(tmp_path / "ckpt.bin"), "--data", mnist_dir, "--json")
    assert p.returncode == 0, p.stderr
    assert close(json.loads(p.stdout)["valid_loss"], summary["valid_loss"], rel=1e-9)


def test_predict_at_lambda_hat_gives_the_summary_validation_loss(ht_bin, mnist_dir, hypernet_run, tmp_path):
    checkpoint, summary = hypernet_run
    r = ht(ht_bin, "predict", "--checkpoint", str(checkpoint), "--data", mnist_dir, "--json", "--weights-out", str(tmp_path / "w.safetensors"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["lambda"] == pytest.approx(summary["lambda_hat"], rel=1e-6)
    assert close(out["valid_loss"], summary["valid_loss"], rel=1e-9)
    assert close(out["train_loss"], summary["train_loss"], rel=1e-9)
    # The predicted weights at λ̂ are the exported ones.
    exported, _, _ = export(ht_bin, mnist_dir, checkpoint, tmp_path / "model.safetensors")
    predicted = load_file(str(tmp_path / "w.safetensors"))
    np.testing.assert_array_equal(predicted["0.weight"], exported["0.weight"])
    np.testing.assert_array_equal(predicted["0.bias"], exported["0.bias"])
    # The text line says the same.
    text = ht(ht_bin, "predict", "--checkpoint", str(checkpoint), "--data", mnist_dir)
    assert text.returncode == 0, text.stderr
    assert f"valid {summary['valid_loss']:.5f}" in text.stdout, text.stdout


def test_predict_at_several_lambdas_writes_one_file_each(ht_bin, mnist_dir, hypernet_run, tmp_path):
    checkpoint, _ = hypernet_run
    csv = tmp_path / "lambdas.csv"
    csv.write_text("lambda\n-4\n\n-2.5\n-1\n")
    r = ht(ht_bin, "predict", "--checkpoint", str(checkpoint), "--data", mnist_dir, "--csv", str(csv), "--json",
           "--weights-out", str(tmp_path / "w"))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.strip().splitlines()]
    assert [row["lambda"] for row in rows] == [[-4.0], [-2.5], [-1.0]]
    files = sorted(os.listdir(tmp_path / "w"))
    assert files == ["lambda-0000.safetensors", "lambda-0001.safetensors", "lambda-0002.safetensors"]
    # Each file's weights give the printed validation loss; its `lambda` tensor is the row's λ.
    for row, name in zip(rows, files):
        path = tmp_path / "w" / name
        tensors = load_file(str(path))
        with safe_open(str(path), framework="np") as f:
            metadata = f.metadata()
        assert float(tensors["lambda"][0]) == row["lambda"][0]
        check_losses(tensors, metadata, mnist_dir, row["valid_loss"], row["test_loss"])
    # --lambda, repeated, gives the same numbers as the CSV rows.
    r2 = ht(ht_bin, "predict", "--checkpoint", str(checkpoint), "--data", mnist_dir, "--json", "--lambda=-4", "--lambda=-2.5", "--lambda=-1")
    assert r2.returncode == 0, r2.stderr
    assert [json.loads(line)["valid_loss"] for line in r2.stdout.strip().splitlines()] == [row["valid_loss"] for row in rows]


def test_export_of_a_retrained_answer_writes_the_retrained_model(ht_bin, mnist_dir, tmp_path):
    r = ht(ht_bin, "run", *RUN, "--retrain-steps", "200", "--answer", "retrained", "--checkpoint", str(tmp_path / "ckpt.bin"),
           "--summary", str(tmp_path / "summary.json"), "--data", mnist_dir)
    assert r.returncode == 0, r.stderr
    assert "retrained" in r.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["answer"] == "retrained"
    assert summary["answer_valid_loss"] == summary["retrained_valid_loss"] != summary["valid_loss"]
    assert summary["retrain_seconds"] > 0
    tensors, metadata, e = export(ht_bin, mnist_dir, tmp_path / "ckpt.bin", tmp_path / "model.safetensors")
    assert "retraining" in e.stderr and "200 steps" in e.stderr, e.stderr
    assert metadata["answer"] == "retrained" and metadata["retrain_steps"] == "200"
    check_losses(tensors, metadata, mnist_dir, summary["retrained_valid_loss"], summary["retrained_test_loss"])


def test_export_refuses_data_that_is_not_the_runs(ht_bin, mnist_dir, hypernet_run, tmp_path):
    checkpoint, _ = hypernet_run
    other = tmp_path / "other"
    other.mkdir()
    for name in ("train-images.idx3-ubyte", "t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte"):
        (other / name).symlink_to(pathlib.Path(mnist_dir, name).resolve())
    labels = bytearray(pathlib.Path(mnist_dir, "train-labels.idx1-ubyte").read_bytes())
    labels[8] = (labels[8] + 1) % 10          # the first training image's label
    (other / "train-labels.idx1-ubyte").write_bytes(bytes(labels))
    out = tmp_path / "model.safetensors"
    for command in (["export", "--out", str(out)], ["predict"]):
        r = ht(ht_bin, *command, "--checkpoint", str(checkpoint), "--data", str(other))
        assert r.returncode != 0
        assert "not the data of this run" in r.stderr and "fingerprint" in r.stderr, r.stderr
    assert not out.exists()


def test_export_refuses_a_missing_or_corrupt_checkpoint(ht_bin, mnist_dir, hypernet_run, tmp_path):
    out = tmp_path / "model.safetensors"
    r = ht(ht_bin, "export", "--checkpoint", str(tmp_path / "nope.bin"), "--out", str(out), "--data", mnist_dir)
    assert r.returncode != 0 and "no such checkpoint" in r.stderr, r.stderr
    checkpoint, _ = hypernet_run
    corrupt = tmp_path / "corrupt.bin"
    data = bytearray(checkpoint.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    r = ht(ht_bin, "export", "--checkpoint", str(corrupt), "--out", str(out), "--data", mnist_dir)
    assert r.returncode != 0 and "checksum mismatch" in r.stderr, r.stderr
    assert not out.exists()


def test_export_never_replaces_a_directory(ht_bin, mnist_dir, hypernet_run, tmp_path):
    checkpoint, _ = hypernet_run
    target = tmp_path / "models"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    r = ht(ht_bin, "export", "--checkpoint", str(checkpoint), "--out", str(target), "--data", mnist_dir)
    assert r.returncode != 0 and "is a directory" in r.stderr, r.stderr
    assert target.is_dir() and (target / "keep.txt").read_text() == "x"


@pytest.mark.parametrize("args, message", [
    (["--lambda=-3,-4"], "H = 1"),
    (["--lambda=nan"], "finite"),
    (["--lambda=81"], "outside"),
    (["--lambda=abc"], "not a number"),
    (["--lambda=-3", "--lambda=-2,-1"], "--lambda #2"),
])
def test_predict_refuses_bad_lambdas(ht_bin, mnist_dir, hypernet_run, args, message):
    checkpoint, _ = hypernet_run
    r = ht(ht_bin, "predict", "--checkpoint", str(checkpoint), "--data", mnist_dir, *args)
    assert r.returncode != 0 and r.stdout.strip() == ""
    assert message in r.stderr, r.stderr


@pytest.mark.parametrize("text, message", [
    ("lambda\n-3\nfoo\n", "line 3"),
    ("-3\n-2,x\n", "line 2"),
    ("lambda\n", "no λ rows"),
    ("-3,-2\n", "H = 1"),
])
def test_predict_refuses_a_malformed_csv(ht_bin, mnist_dir, hypernet_run, tmp_path, text, message):
    checkpoint, _ = hypernet_run
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    r = ht(ht_bin, "predict", "--checkpoint", str(checkpoint), "--data", mnist_dir, "--csv", str(csv))
    assert r.returncode != 0 and r.stdout.strip() == ""
    assert message in r.stderr, r.stderr


def test_single_process_run_checkpoints_every_n_steps_so_a_killed_run_can_be_exported(ht_bin, mnist_dir, tmp_path):
    """`run --checkpoint F --checkpoint-every N` without --workers writes F while it runs: kill -9
    mid-run leaves a valid checkpoint of a step below the end, which `export` reads."""
    import signal
    import subprocess
    import time
    checkpoint = tmp_path / "ckpt.bin"
    proc = subprocess.Popen([ht_bin, "run", "--steps", "10000000", "--eval-every", "0", "--quiet",
                             "--checkpoint", str(checkpoint), "--checkpoint-every", "200", "--data", mnist_dir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert checkpoint.exists(), "no checkpoint within 60 s"
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    tensors, metadata, r = export(ht_bin, mnist_dir, checkpoint, tmp_path / "model.safetensors")
    step = int(metadata["step"])
    assert 200 <= step < 10_000_000 and step % 200 == 0
    assert "lambda_hat" in tensors
