# The workshop server image, three roles from one build:
#   web     `workshop serve` (gunicorn inside, one process), the default command;
#   worker  `workshop worker`, which starts jobs with WORKSHOP_SANDBOX=docker through the host's engine;
#   job     what DockerSandbox runs participants' code in: this image's interpreter and virtualenv,
#           read-only, no network, no capabilities (see SECURITY.md, "Docker backend").
# Debian's Python 3.11 and the same steps as `make install` (a virtualenv in /app/.venv, `pip install -e .`).
# Built and run in CI by tests/docker/test_image.py; BuildKit is needed (the default builder since Docker 23;
# with Debian's docker.io 20.10 client: DOCKER_BUILDKIT=1).
#
#   docker build --network host -t workshop-server:latest .
#   docker build --network host --build-arg GPU=1 -t workshop-server:gpu .        # CUDA TensorFlow, GPU hosts
#   docker build --network host --secret id=ca,src=/path/to/proxy-ca.pem ...      # behind a TLS-inspecting proxy
#
# The CA (a PEM file, one certificate or a bundle) is trusted while building (apt, pip) and stays in the image's
# trust store (/usr/local/share/ca-certificates/build-ca.crt), so the containers trust the same proxy.
# The base: Debian's official debian:bookworm-slim, or one made from Debian's packages (`make docker-base`).

ARG BASE_IMAGE=debian:bookworm-slim

# --- Debian's Python, the CA, the tools every role needs ----------------------------------------------------------
FROM ${BASE_IMAGE} AS system
# Job containers run this image too, and inherit its ENV: only what the sandbox's allowlist holds (LANG, PATH,
# PYTHONUNBUFFERED) is set here; the instance folder's default comes from the entrypoint, and no HEALTHCHECK
# (docker-compose.yml's web service has one).
ARG DEBIAN_FRONTEND=noninteractive
ENV LANG=C.UTF-8
# bubblewrap and setpriv (util-linux): for WORKSHOP_SANDBOX=bwrap on hosts that run this image privileged
RUN --mount=type=secret,id=ca,target=/run/secrets/ca \
    apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv bubblewrap util-linux \
 && if [ -s /run/secrets/ca ]; then \
      cp /run/secrets/ca /usr/local/share/ca-certificates/build-ca.crt && update-ca-certificates; \
    fi \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb

# --- the docker client for the worker's Docker sandbox backend: Debian's docker.io, the client alone -------------
FROM system AS docker-cli
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && cd /tmp && apt-get download docker.io \
 && dpkg-deb --fsys-tarfile docker.io_*.deb | tar -x ./usr/bin/docker \
 && mv /tmp/usr/bin/docker /usr/local/bin/docker \
 && rm -rf /var/lib/apt/lists/* /tmp/*

# --- the virtualenv: dependencies first (a layer that survives code changes), then the code -----------------------
FROM system AS build
# EXTRAS: pyproject extras, e.g. '[test]'. GPU=1: the `gpu` extra (tensorflow[and-cuda]) INSTEAD of tensorflow-cpu,
# as the Makefile does on a GPU host: both install the `tensorflow` module, so the requirements are written out
# without tensorflow-cpu and the project goes in with --no-deps.
# EXTRA_PACKAGES: what the image needs beyond `make install`: psycopg for PostgreSQL (docker-compose.yml).
ARG EXTRAS=""
ARG GPU=0
ARG EXTRA_PACKAGES="psycopg[binary]>=3.1"
ARG GPU_REQUIREMENTS="import os, tomllib; project = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
names = ['gpu'] + [name.strip() for name in os.environ['EXTRAS'].strip('[]').split(',') if name.strip()]; \
lines = project['dependencies'] + [line for name in names for line in project['optional-dependencies'][name]]; \
print(chr(10).join(line for line in lines if not line.replace(' ', '').startswith('tensorflow-cpu')))"
# pip's own CA list (certifi) would not hold a proxy's CA: use the system's store, which does
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
WORKDIR /app
COPY pyproject.toml ./
# the Makefile's $(STAMP) target, step by step, on empty packages (README.md: pyproject's readme, stubbed here)
RUN mkdir server grader && touch server/__init__.py grader/__init__.py README.md \
 && python3 -m venv .venv \
 && .venv/bin/python -m pip install --quiet --upgrade pip \
 && if [ "${GPU}" = 1 ]; then \
      EXTRAS="${EXTRAS}" .venv/bin/python -c "${GPU_REQUIREMENTS}" > /tmp/gpu-requirements.txt \
      && .venv/bin/python -m pip install --quiet -r /tmp/gpu-requirements.txt ${EXTRA_PACKAGES} \
      && .venv/bin/python -m pip install --quiet --no-deps -e ".${EXTRAS}"; \
    else \
      .venv/bin/python -m pip install --quiet -e ".${EXTRAS}" ${EXTRA_PACKAGES}; \
    fi \
 && find .venv -name __pycache__ -prune -exec rm -rf {} + \
 && rm -rf server grader README.md
COPY README.md ./
COPY server ./server
COPY grader ./grader

# --- the image ------------------------------------------------------------------------------------------------
FROM system
RUN groupadd --system --gid 1000 workshop \
 && useradd --system --uid 1000 --gid 1000 --create-home --home-dir /home/workshop workshop \
 && mkdir -p /srv/workshop && chown workshop:workshop /srv/workshop \
 && printf '%s\n' '#!/bin/sh' \
      '# Create or upgrade the database (idempotent; WORKSHOP_INIT=0 skips it), then become the command.' \
      'set -eu' \
      'export WORKSHOP_INSTANCE_PATH="${WORKSHOP_INSTANCE_PATH:-/srv/workshop}"' \
      'if [ "${WORKSHOP_INIT:-1}" = 1 ]; then workshop init; fi' \
      'exec "$@"' > /usr/local/bin/workshop-entrypoint \
 && chmod 0755 /usr/local/bin/workshop-entrypoint
COPY --from=docker-cli /usr/local/bin/docker /usr/local/bin/docker
WORKDIR /app
COPY --from=build /app /app
COPY exercises ./exercises
COPY templates ./templates
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1

USER workshop
EXPOSE 5000
ENTRYPOINT ["workshop-entrypoint"]
# exec'd by the entrypoint: gunicorn serves the app (worker slots run in the worker service)
CMD ["workshop", "serve", "--host", "0.0.0.0", "--port", "5000", "--slots", "0"]
