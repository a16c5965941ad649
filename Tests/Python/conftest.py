"""Shared fixtures for the Python-side tests: the release binary and the MNIST directory."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ht_bin() -> str:
    path = os.environ.get("HT_BIN", str(ROOT / ".build/release/hypertrain"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"hypertrain binary not found at {path}; run `make test-python` (it builds it)")
    return path


@pytest.fixture(scope="session")
def mnist_dir() -> str:
    return os.environ.get("HYPERTRAIN_DATA", str(ROOT / "data/mnist"))
