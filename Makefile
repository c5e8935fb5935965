# Two commands: `make serve` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
REPO   ?= model_repository
CHECKPOINTS ?= runs
HOST   ?= 127.0.0.1
PORT   ?= 8000
BUILD_LOG ?= runs/build.log
# No usage telemetry from ONNX Runtime in the build, the tests or the benchmarks (service/__init__.py).
export ORT_DISABLE_TELEMETRY ?= 1

.PHONY: setup serve repository catalog test bench screenshots clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned to the local CPU wheel (see DEVELOPERS.md): any other spec pulls CUDA builds.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[train,serve,cpu,test]"
	touch $@

setup: $(VENV)/.installed

# KServe's stock gRPC client for tests/service/test_grpc.py, in an environment of its own: the kserve
# package pins a protobuf (< 7) and a web stack of its own that the service's environment must not take.
KSERVE_VENV := .venv-kserve
$(KSERVE_VENV)/.installed:
	$(PYTHON) -m venv $(KSERVE_VENV)
	$(KSERVE_VENV)/bin/python -m pip install --quiet "kserve==0.21.0"
	touch $@

# Build (or bring up to date) the default set in the background while the service polls the
# repository: each model is served as soon as it is published, LeNet-5 within seconds.
serve: setup
	@mkdir -p $(dir $(BUILD_LOG))
	@echo "building the default models in the background (log: $(BUILD_LOG)); each is served when published"
	@$(PY) -m export build --repository $(REPO) --checkpoints $(CHECKPOINTS) >> $(BUILD_LOG) 2>&1 & build=$$!; \
	trap 'kill $$build 2>/dev/null' EXIT INT TERM; \
	CNNSERVE_POLL_INTERVAL_S=$${CNNSERVE_POLL_INTERVAL_S:-2} $(PY) -m service --repository $(REPO) --host $(HOST) --port $(PORT)

# The default set, trained, exported and published in the foreground (no server).
repository: setup
	$(PY) -m export build --repository $(REPO) --checkpoints $(CHECKPOINTS)

# The architecture catalog: every network's canonical summary as data, what the service serves at /zoo
# (a test checks it is current).
catalog: setup
	$(PY) -m models catalog --out service/catalog

test: setup $(KSERVE_VENV)/.installed
	$(PY) -m pytest -n 2 --dist loadgroup -q

bench: setup
	$(PY) -m bench

# docs/img/page-*.png: the web page's views in headless Chromium, on a quick repository built for them.
screenshots: setup
	$(PY) -m tests.page.screenshots

clean:
	rm -rf $(VENV) $(KSERVE_VENV) .pytest_cache build
