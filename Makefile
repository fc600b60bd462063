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

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
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
