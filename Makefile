# Two commands: `make serve` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
REPO   ?= model_repository
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: setup serve test bench repository clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned to the local CPU wheel (see DEVELOPERS.md): any other spec pulls CUDA builds.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[train,serve,cpu,test]"
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest -n 2 --dist loadgroup -q

serve: setup
	$(PY) -m service.launch --repository $(REPO) --host $(HOST) --port $(PORT)

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache
