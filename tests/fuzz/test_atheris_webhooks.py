"""Runs the atheris webhook harness (``atheris_webhooks.py``) for a bounded number of inputs
in a subprocess: libFuzzer owns the process it runs in, and ends it when it is done.

The run is seeded; ``FORGEBOT_TEST_FUZZ_SCALE=10`` runs ten times the inputs. A failing
property is printed with its traceback, and the input that broke it is kept under the test's
temporary folder (``crash-*``) to replay with ``python -m tests.fuzz.atheris_webhooks FILE``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytest.importorskip("atheris", reason="atheris is the optional 'fuzz' extra")

RUNS = int(2000 * float(os.environ.get("FORGEBOT_TEST_FUZZ_SCALE", "1")))
# Edges of forgebot's own code the run must reach: a harness whose inputs all stopped at
# the first check (no instrumentation, every body refused) would cover far fewer.
MIN_COVERAGE = 100


@pytest.mark.slow
def test_atheris_finds_no_5xx_and_no_job_from_an_unsigned_delivery(tmp_path: Path) -> None:
    state, corpus = tmp_path / "state", tmp_path / "corpus"
    state.mkdir()
    corpus.mkdir()
    env = {**os.environ, "FORGEBOT_TEST_FUZZ_DIR": str(state)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.atheris_webhooks", f"-runs={RUNS}", "-seed=1",
         "-max_len=4096", "-len_control=0", f"-artifact_prefix={tmp_path}/", str(corpus)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800, check=False)
    log = done.stderr
    tail = "\n".join(line for line in log.splitlines()[-60:]
                     if not line.startswith("INFO: Instrumenting"))
    assert done.returncode == 0, tail
    assert f"Done {RUNS} runs" in log, tail
    coverage = [int(n) for n in re.findall(r"DONE\s+cov: (\d+)", log)]
    assert coverage and coverage[-1] >= MIN_COVERAGE, tail
    assert not list(tmp_path.glob("crash-*"))
