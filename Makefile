# Hypertrain — the two commands a new user needs:
#   make demo   local multi-process hyper-training run on MNIST (installs what it needs)
#   make test   the test suite (installs what it needs)
SHELL := /bin/bash
DATA ?= data/mnist
RUN_DIR ?= runs/demo
SWIFT_FLAGS ?=

.PHONY: examples demo test test-architecture test-swift test-deploy test-python deps data venv build bench experiment experiments-quick proto proto-check clean

deps:
	@scripts/install-deps.sh

data: deps
	@scripts/fetch-mnist.sh $(DATA)

# Python tools (matplotlib for the figures, the official TensorBoard reader, reference
# optimizers) in .venv; skipped when already up to date.
venv: deps
	@scripts/setup-venv.sh

build: deps
	swift build -c release $(SWIFT_FLAGS)

# Local multi-process run: this process coordinates (the validator is one of its threads), 2 training workers run as
# child processes over ipc://, in sync mode (bit-identical to the single-process run).
demo: data build
	@mkdir -p $(RUN_DIR)
	.build/release/hypertrain run --workers 2 --data $(DATA) --lambda-init=-3.5 \
	  --metrics $(RUN_DIR)/metrics.jsonl --summary $(RUN_DIR)/summary.json \
	  --checkpoint $(RUN_DIR)/checkpoint.bin
	.build/release/hypertrain export --checkpoint $(RUN_DIR)/checkpoint.bin --out $(RUN_DIR)/model.safetensors --data $(DATA)
	@echo "metrics: $(RUN_DIR)/metrics.jsonl   summary: $(RUN_DIR)/summary.json   answer: $(RUN_DIR)/model.safetensors"

# The Python SDK's two examples (python/examples; docs/sdk.md): a tabular MLP on scikit-learn's
# breast-cancer data and a small CNN on MNIST, each hyper-trained by the coordinator with Python
# workers (the SDK is installed in .venv by `make venv`).
examples: data venv build
	HT_BIN=$(CURDIR)/.build/release/hypertrain .venv/bin/python python/examples/tabular.py --out runs/tabular
	HT_BIN=$(CURDIR)/.build/release/hypertrain .venv/bin/python python/examples/mnist_cnn.py --data $(DATA) --baseline --out runs/mnist_cnn

# Release build: the numerical tests (Algorithm 3 against cross-validation on real MNIST)
# would take minutes unoptimised. Preconditions stay on in release builds.
# -enable-testing lets @testable imports work in the release build.
test: test-architecture test-swift test-deploy test-python

# Drift check, before anything is built (python3 only, well under a second): every import is a
# declared dependency in Package.swift, every dependency is imported, and README's architecture
# table is the one Package.swift gives (regenerate it with --write-readme).
test-architecture:
	python3 scripts/check-architecture.py

test-swift: data
	HYPERTRAIN_DATA=$(CURDIR)/$(DATA) swift test -c release -Xswiftc -enable-testing $(SWIFT_FLAGS)

# Deployment tests: manifests and units validated; Slurm, systemd units and a three-host
# network-namespace cluster run for real when root (skipped with a reason otherwise); the chaos
# test (deploy/tests/chaos_test.sh, ≈ 1 min) injects issue 14's faults into real processes.
test-deploy: data
	swift build -c release -Xswiftc -enable-testing $(SWIFT_FLAGS)
	HYPERTRAIN_DATA=$(CURDIR)/$(DATA) HT_BIN=$(CURDIR)/.build/release/hypertrain bash deploy/tests/run_all.sh

# Tests that need the official Python packages (TensorBoard reads our event files, ...)
# against the release binary.
test-python: data venv
	swift build -c release -Xswiftc -enable-testing $(SWIFT_FLAGS)
	HYPERTRAIN_DATA=$(CURDIR)/$(DATA) HT_BIN=$(CURDIR)/.build/release/hypertrain .venv/bin/python -m pytest -q Tests/Python

bench: data build
	.build/release/hypertrain bench step --data $(DATA)

# One figure of the paper (EXPERIMENTS.md): make experiment NAME=fig4 [QUICK=1] [OUT=dir]
NAME ?= fig4
OUT ?= runs/experiments
experiment: data venv build
	.build/release/hypertrain experiment $(NAME) --out $(OUT) --data $(DATA) $(if $(QUICK),--quick)

# Every figure at --quick scale (about 20 minutes on 2 cores).
experiments-quick: data venv build
	for f in fig3 fig4 fig5-top fig5-bottom fig6 fig7; do \
	  .build/release/hypertrain experiment $$f --quick --out $(OUT) --data $(DATA) || exit 1; done

proto: venv
	scripts/gen-proto.sh
	scripts/gen-proto-python.sh

proto-check: venv
	scripts/gen-proto.sh --check
	scripts/gen-proto-python.sh --check

clean:
	rm -rf .build
