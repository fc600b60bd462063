# `make demo` and `make test` work on a fresh Debian/Ubuntu machine (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: demo test test-deps test-postgres test-warm lint format system-deps install clean docker-base docker-image

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
	@# a private Docker engine and a static busybox image for tests/sandbox/test_docker.py (nothing is pulled);
	@# debootstrap (the image's base from Debian's packages) and docker-compose for tests/docker/test_image.py
	@if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1 \
	    || ! command -v docker-compose >/dev/null 2>&1 \
	    || ! dpkg-query -W -f='$${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io busybox-static \
	      debootstrap docker-compose; \
	  else \
	    echo "Missing Docker tools for the Docker tests. Run:" \
	      "sudo apt-get install docker.io busybox-static debootstrap docker-compose"; exit 1; \
	  fi; \
	fi

# The Docker image (Dockerfile). DOCKER_CA: a PEM file to trust while building (a TLS-inspecting proxy), e.g.
# `make docker-image DOCKER_CA=/etc/ssl/certs/ca-certificates.crt`. BuildKit is needed: with Debian's docker.io
# (20.10) client it is DOCKER_BUILDKIT=1, set here; a newer client needs the buildx plugin.
DOCKER       ?= docker
DOCKER_IMAGE ?= workshop-server:latest
DOCKER_CA    ?=
DOCKER_BUILD_ARGS ?=
comma := ,
docker-image:
	DOCKER_BUILDKIT=1 $(DOCKER) build --network host $(if $(DOCKER_CA),--secret id=ca$(comma)src=$(DOCKER_CA)) \
	  $(DOCKER_BUILD_ARGS) -t $(DOCKER_IMAGE) .

# debian:bookworm-slim made from Debian's packages, for engines that cannot pull images (needs root and debootstrap)
DEBIAN_MIRROR ?= http://deb.debian.org/debian
docker-base:
	@command -v debootstrap >/dev/null 2>&1 || { echo "Missing debootstrap. Run: sudo apt-get install debootstrap"; exit 1; }
	@rootfs=$$(mktemp -d) && trap 'rm -rf "$$rootfs"' EXIT \
	&& debootstrap --variant=minbase bookworm "$$rootfs" $(DEBIAN_MIRROR) >"$$rootfs.log" 2>&1 \
	  || { tail -20 "$$rootfs.log"; rm -f "$$rootfs.log"; exit 1; }; rm -f "$$rootfs.log" \
	&& printf 'deb %s %s main\n' $(DEBIAN_MIRROR) bookworm $(DEBIAN_MIRROR) bookworm-updates \
	  $(DEBIAN_MIRROR)-security bookworm-security >"$$rootfs/etc/apt/sources.list" \
	&& rm -rf "$$rootfs"/var/lib/apt/lists/* "$$rootfs"/var/cache/apt/*.bin "$$rootfs"/var/cache/apt/archives/*.deb \
	&& tar -C "$$rootfs" -c . | $(DOCKER) import --change 'CMD ["bash"]' - debian:bookworm-slim

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

# The database-facing tests again on the real PostgreSQL: each test's app gets a database of its own on
# POSTGRES_URL's server, created and dropped (tests/conftest.py). .ci/run runs it after `make test`.
POSTGRES_URL ?= postgresql+psycopg://127.0.0.1:5432/test
test-postgres: test-deps
	WORKSHOP_DATABASE_URL=$(POSTGRES_URL) $(BIN)/python -m pytest -p no:cacheprovider \
	  -m "not slow and not sandbox and not browser and not hostile" tests/web tests/event tests/jobs tests/cli tests/data

# The hostile suite again with warm slots (every job in a sandbox started before it, TensorFlow imported):
# isolation must hold exactly as cold. .ci/run runs it after `make test`.
test-warm: test-deps
	WORKSHOP_WARM_SLOTS=1 $(BIN)/python -m pytest -p no:cacheprovider tests/hostile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
