"""Canary credentials (bot/pipeline/canaries.py): planted by a real ``sh``, found in output
however it is encoded, and redacted."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from bot.pipeline.canaries import Canaries, plant


def _run(canaries: Canaries, script: str, home: Path) -> str:
    done = subprocess.run(canaries.wrap(["sh", "-c", script], [str(home)]),
                          capture_output=True, text=True,
                          env={"HOME": str(home), "PATH": os.environ["PATH"]}, check=True)
    return done.stdout


def test_an_environment_dump_shows_every_planted_variable(tmp_path: Path) -> None:
    canaries = plant()

    out = _run(canaries, "env", tmp_path)

    assert canaries.seen(out) == [c.where for c in canaries.planted
                                  if not c.where.startswith("~/")]


def test_credential_files_are_planted_under_home(tmp_path: Path) -> None:
    canaries = plant()

    out = _run(canaries, "cat ~/.aws/credentials ~/.netrc ~/.git-credentials ~/.ssh/id_ed25519",
               tmp_path)

    # The AWS file holds the same key id as AWS_ACCESS_KEY_ID, as real ones do.
    assert canaries.seen(out) == ["AWS_ACCESS_KEY_ID", "~/.aws/credentials", "~/.netrc",
                                  "~/.git-credentials", "~/.ssh/id_ed25519"]


def test_an_existing_file_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / ".netrc").write_text("machine example.org login me password mine\n")
    canaries = plant()

    _run(canaries, "true", tmp_path)

    assert (tmp_path / ".netrc").read_text() == "machine example.org login me password mine\n"


@pytest.mark.parametrize("encode", [
    lambda text: base64.b64encode(text.encode()).decode(),
    lambda text: base64.b64encode(("x" + text).encode()).decode(),
    lambda text: base64.b64encode(("xy" + text).encode()).decode(),
    lambda text: text.encode().hex(),
    lambda text: text[::-1],
    lambda text: json.dumps({"env": text}),
], ids=["base64", "base64+1", "base64+2", "hex", "reversed", "json"])
def test_an_encoded_dump_is_still_found(tmp_path: Path, encode: object) -> None:
    canaries = plant()
    dump = "PATH=/usr/bin\n" + _run(canaries, "env", tmp_path)

    out = f"report: {encode(dump)} end"  # type: ignore[operator]

    assert "GITHUB_TOKEN" in canaries.seen(out)


def test_ordinary_output_and_other_runs_canaries_are_not_findings(tmp_path: Path) -> None:
    other = _run(plant(), "env", tmp_path)
    canaries = plant()

    assert canaries.seen("5 passed in 0.12s\n" + other) == []


def test_redaction_removes_every_spelling(tmp_path: Path) -> None:
    canaries = plant()
    dump = _run(canaries, "env", tmp_path)
    out = dump + base64.b64encode(dump.encode()).decode() + dump.encode().hex()

    redacted = canaries.redact(out)

    assert canaries.seen(redacted) == []
    assert "[canary]" in redacted


def test_a_token_sent_as_a_dns_label_is_found_whatever_its_case(tmp_path: Path) -> None:
    canaries = plant()
    token = next(c.token for c in canaries.planted if c.where == "GITHUB_TOKEN")

    names = ["pypi.org", f"{token.lower()}.collect.example.net"]

    assert canaries.seen_in_names(names) == ["GITHUB_TOKEN"]
    assert canaries.seen_in_names(["pypi.org"]) == []


def test_a_file_the_run_wrote_with_a_canary_is_named(tmp_path: Path) -> None:
    canaries = plant()
    work = tmp_path / "work"
    work.mkdir()
    script = (f"env > {work}/dump.txt; base64 -w0 ~/.netrc > {work}/netrc.b64;"
              f" echo honest > {work}/notes.txt; exit 3")

    done = subprocess.run(canaries.wrap(["sh", "-c", script], [str(work)]),
                          capture_output=True, text=True,
                          env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]}, check=False)
    stderr, written = canaries.files_written(done.stderr)

    assert done.returncode == 3  # the command's own status
    assert sorted(written) == [f"{work}/dump.txt", f"{work}/netrc.b64"]
    assert canaries.marker not in stderr
    assert not any(Path(p).name == ".netrc" for p in written)  # the planted file itself


def test_a_run_that_writes_nothing_names_no_file(tmp_path: Path) -> None:
    canaries = plant()

    done = subprocess.run(canaries.wrap(["sh", "-c", "echo ok >&2"], [str(tmp_path)]),
                          capture_output=True,
                          text=True, env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
                          check=True)

    assert canaries.files_written(done.stderr) == ("ok\n", [])


def test_the_file_report_is_read_as_hostile_input() -> None:
    canaries = plant()
    forged = "forgebot-canary-file-AAAAAAAAAAAA /sandbox/repo/x\n"  # another run's marker
    hostile = (f"{canaries.marker} /sandbox/repo/a\x1b[31mb\n"
               f"{canaries.marker} /sandbox/repo/{'d/' * 200}\n") * 30

    stderr, written = canaries.files_written(forged + hostile)

    assert stderr == forged
    assert len(written) == 20
    assert written[0] == "a?[31mb"
    assert all(len(path) <= 200 for path in written)
