"""Every edit format against tables of model replies kept as files.

Each case under ``tests/fixtures/model_outputs/<format>/`` is a pair: ``<case>.reply``, the
reply byte for byte as a model wrote it (CRLF, missing final newline and all), and
``<case>.yml`` with ``source`` (which model, or whose style), ``files`` (the content before),
and either ``expect`` (the changed files, ``{}`` for none) or ``error`` (a substring of the
EditFormatError the reply must raise, from parsing or applying). See the folder's README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from bot.agent.editformats import FORMATS, apply_edits, get_format
from bot.errors import EditFormatError

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "model_outputs"
RECORDED_BY = "SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class Case:
    """One reply and what parsing and applying it must give."""

    name: str
    format: str
    source: str
    reply: str
    files: dict[str, str]
    expect: dict[str, str] | None
    error: str | None
    edits: int | None


def _load(reply_path: Path) -> Case:
    spec = yaml.safe_load(reply_path.with_suffix(".yml").read_text(encoding="utf-8"))
    unknown = set(spec) - {"source", "files", "expect", "error", "edits", "note"}
    assert not unknown, f"{reply_path.name}: unknown keys {sorted(unknown)}"
    assert ("expect" in spec) != ("error" in spec), f"{reply_path.name}: expect xor error"
    return Case(
        name=f"{reply_path.parent.name}/{reply_path.stem}",
        format=reply_path.parent.name,
        source=spec["source"],
        # Bytes, not read_text: that would turn CRLF into LF, and the reply is tested exactly
        # as the model wrote it.
        reply=reply_path.read_bytes().decode("utf-8"),
        files=spec.get("files") or {},
        expect=spec.get("expect"),
        error=spec.get("error"),
        edits=spec.get("edits"),
    )


CASES = [_load(path) for path in sorted(ROOT.glob("*/*.reply"))]


def test_every_format_has_a_table_with_recorded_and_written_replies() -> None:
    for name in FORMATS:
        cases = [case for case in CASES if case.format == name]
        assert len(cases) >= 8, f"{name}: only {len(cases)} cases"
        assert any(RECORDED_BY in case.source for case in cases), f"{name}: no recorded reply"
        assert any(case.error for case in cases) and any(case.expect for case in cases)
    assert not set(path.name for path in ROOT.iterdir() if path.is_dir()) - set(FORMATS)


def test_every_case_has_both_files() -> None:
    replies = {path.with_suffix("") for path in ROOT.glob("*/*.reply")}
    specs = {path.with_suffix("") for path in ROOT.glob("*/*.yml")}
    assert replies == specs


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_model_output(case: Case) -> None:
    edit_format = get_format(case.format)
    if case.error is not None:
        with pytest.raises(EditFormatError) as caught:
            apply_edits(case.files, edit_format.parse(case.reply))
        assert case.error in str(caught.value)
        return
    edits = edit_format.parse(case.reply)
    if case.edits is not None:
        assert len(edits) == case.edits
    assert apply_edits(case.files, edits) == case.expect
