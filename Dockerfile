# syntax=docker/dockerfile:1.7
# The workshop server image, three roles from one build:
#   web     `workshop serve` (gunicorn inside, one process), the default command;
#   worker  `workshop worker`, which starts jobs with WORKSHOP_SANDBOX=docker through the host's engine;
#   job     what DockerSandbox runs participants' code in: this image's interpreter and virtualenv,
#           read-only, no network, no capabilities (see SECURITY.md).
# Installed with the same steps as `make install` (a virtualenv in .venv, `pip install -e .`).
# Not built in this repository's CI: the development machine has no Docker engine.
#
#   docker build -t workshop-server:latest .
#   docker build --build-arg EXTRAS='[test]' -t workshop-server:test .             # with the test tools
#   docker build --build-arg TF_PACKAGE='tensorflow[and-cuda]' -t workshop-server:gpu .   # GPU hosts

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG DOCKER_CLI_IMAGE=docker:27-cli

FROM ${DOCKER_CLI_IMAGE} AS docker-cli

FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=""
ARG TF_PACKAGE=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY grader ./grader
# the Makefile's $(STAMP) target, step by step
RUN python -m venv .venv \
 && .venv/bin/python -m pip install --quiet --upgrade pip \
 && .venv/bin/python -m pip install --quiet -e ".${EXTRAS}"
# GPU hosts: swap the CPU-only TensorFlow for one with CUDA (the driver comes from the host via --gpus)
RUN if [ -n "${TF_PACKAGE}" ]; then \
      .venv/bin/python -m pip uninstall --quiet -y tensorflow-cpu \
      && .venv/bin/python -m pip install --quiet "${TF_PACKAGE}"; \
    fi

FROM ${PYTHON_IMAGE}
# bubblewrap and setpriv: for WORKSHOP_SANDBOX=bwrap on hosts that run this image privileged (not the default)
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bubblewrap util-linux \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 1000 --user-group --create-home --home-dir /home/workshop workshop \
 && mkdir -p /srv/workshop && chown workshop:workshop /srv/workshop
COPY --from=docker-cli /usr/local/bin/docker /usr/local/bin/docker
WORKDIR /app
COPY --from=build /app /app
COPY exercises ./exercises
COPY templates ./templates
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    WORKSHOP_INSTANCE_PATH=/srv/workshop

COPY --chmod=0755 <<'EOF' /usr/local/bin/workshop-entrypoint
#!/bin/sh
# Create or upgrade the database (idempotent; WORKSHOP_INIT=0 skips it), then become the command.
set -eu
if [ "${WORKSHOP_INIT:-1}" = 1 ]; then
  workshop init
fi
exec "$@"
EOF

USER workshop
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/login', timeout=4)"
ENTRYPOINT ["workshop-entrypoint"]
# exec'd by the entrypoint: gunicorn serves the app (worker slots run in the worker service)
CMD ["workshop", "serve", "--host", "0.0.0.0", "--port", "5000", "--slots", "0"]
