# `make demo` and `make test` work on a fresh Debian/Ubuntu machine (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: demo test test-deps lint format system-deps install clean

# System packages: bubblewrap (the sandbox) and python3-venv, through apt when missing and root.
system-deps:
	@if ! command -v bwrap >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap python3-venv; \
	  else \
	    echo "Missing system packages. Run: sudo apt-get install bubblewrap python3-venv"; exit 1; \
	  fi; \
	fi

# GPU=auto (default): a CUDA build of TensorFlow where nvidia-smi lists a GPU, else tensorflow-cpu as always;
# GPU=1 or GPU=0 force either. The CUDA build is pyproject's `gpu` extra (tensorflow[and-cuda]); it replaces
# tensorflow-cpu, which installs the same `tensorflow` module (the two together overwrite each other's files),
# so on a GPU host the requirements are written out without tensorflow-cpu and the project goes in --no-deps.
# Switching an existing .venv from GPU back to CPU: `make clean` first.
GPU ?= auto
define GPU_REQUIREMENTS
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
for line in project["dependencies"] + extras["test"] + extras["gpu"]:
    if not line.replace(" ", "").startswith("tensorflow-cpu"):
        print(line)
endef
export GPU_REQUIREMENTS

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if [ "$(GPU)" = 1 ] || { [ "$(GPU)" = auto ] && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; }; then \
	  echo "NVIDIA GPU: installing TensorFlow with CUDA (the gpu extra) in place of tensorflow-cpu"; \
	  $(BIN)/python -m pip uninstall --quiet -y tensorflow-cpu 2>/dev/null; \
	  $(BIN)/python -c "$$GPU_REQUIREMENTS" > $(VENV)/gpu-requirements.txt \
	  && $(BIN)/python -m pip install --quiet -r $(VENV)/gpu-requirements.txt \
	  && $(BIN)/python -m pip install --quiet --no-deps -e .; \
	else \
	  $(BIN)/python -m pip install --quiet -e '.[test]'; \
	fi
	@touch $(STAMP)

install: system-deps $(STAMP)

# The browser tests drive Debian's Chromium (Playwright's own browser download is not used).
test-deps: install
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "Missing Chromium for the browser tests. Run: sudo apt-get install chromium"; exit 1; \
	  fi; \
	fi
	@# a private Docker engine and a static busybox image for tests/sandbox/test_docker.py (nothing is pulled)
	@if ! command -v dockerd >/dev/null 2>&1 || ! dpkg-query -W -f='$${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io busybox-static; \
	  else \
	    echo "Missing Docker or busybox-static for the Docker test. Run: sudo apt-get install docker.io busybox-static"; exit 1; \
	  fi; \
	fi

# Pretrained weights: downloaded where there is internet; offline, random-init stand-ins (marked as
# such on every job that loads one) so that every exercise still runs.
demo: install
	$(BIN)/workshop data synth
	@$(BIN)/workshop prepare-weights || { \
	  echo "No ImageNet weights could be downloaded: writing stand-ins so the exercises run (no ImageNet gain)."; \
	  $(BIN)/workshop prepare-weights --stand-in; }
	$(BIN)/workshop init --demo
	$(BIN)/workshop serve --host $(HOST) --port $(PORT)

test: test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
