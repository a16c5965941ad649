"""`hypertrain trial`: one Algorithm 1 trial as a JSON line, the objective external optimizers call."""
import json
import math
import subprocess

TINY = ["--layers", "784-10", "--scope", "per-class", "--n-train", "100", "--n-valid", "200", "--n-test", "200",
        "--batch-size", "50", "--trial-steps", "50"]


def run_trial(ht_bin, mnist_dir, *extra):
    return subprocess.run([ht_bin, "trial", *TINY, "--data", mnist_dir, *extra],
                          capture_output=True, text=True, timeout=120)


def test_prints_one_json_object_with_the_losses(ht_bin, mnist_dir):
    r = run_trial(ht_bin, mnist_dir, "--lambda=-4")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    for key in ("lambda", "valid_loss", "test_loss", "train_loss", "test_error", "wall_seconds", "trial_steps"):
        assert key in out, f"missing {key}: {out}"
    assert out["lambda"] == [-4.0] * 10          # one value is broadcast to H = 10
    assert out["trial_steps"] == 50
    assert out["status"] == "done"
    for key in ("valid_loss", "test_loss", "train_loss"):
        assert math.isfinite(out[key]) and 0 < out[key] < 1, out
    assert 0 <= out["test_error"] <= 1
    assert out["wall_seconds"] > 0


def test_explicit_lambda_and_lambda_file_agree(ht_bin, mnist_dir, tmp_path):
    lam = [-1.5 - 0.5 * i for i in range(10)]
    a = run_trial(ht_bin, mnist_dir, "--lambda=" + ",".join(str(v) for v in lam), "--trial-index", "3")
    f = tmp_path / "lambda.json"
    f.write_text(json.dumps(lam))
    b = run_trial(ht_bin, mnist_dir, "--lambda-file", str(f), "--trial-index", "3")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    ja, jb = json.loads(a.stdout), json.loads(b.stdout)
    assert ja["lambda"] == lam
    # Deterministic: same λ, seed and trial index give the same numbers.
    assert ja["valid_loss"] == jb["valid_loss"] and ja["test_loss"] == jb["test_loss"]


def test_wrong_lambda_count_fails_with_a_clear_message(ht_bin, mnist_dir):
    r = run_trial(ht_bin, mnist_dir, "--lambda=-3,-4,-5")
    assert r.returncode != 0
    assert r.stdout.strip() == ""
    assert "3 values" in r.stderr and "H = 10" in r.stderr, r.stderr


def test_non_finite_or_missing_lambda_fails(ht_bin, mnist_dir, tmp_path):
    r = run_trial(ht_bin, mnist_dir, "--lambda=nan")
    assert r.returncode != 0 and "finite" in r.stderr, r.stderr
    f = tmp_path / "bad.json"
    f.write_text('{"lambda": 1}')
    r = run_trial(ht_bin, mnist_dir, "--lambda-file", str(f))
    assert r.returncode != 0 and "array" in r.stderr, r.stderr
    r = run_trial(ht_bin, mnist_dir)
    assert r.returncode != 0 and "--lambda" in r.stderr, r.stderr
