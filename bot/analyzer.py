"""The structural gate: a maintained analyzer reads what a change's added lines do.

The regular expressions of ``checks.forbidden_patterns`` are a fast first pass over spellings;
this gate judges structure. semgrep's engine (``semgrep-core``, which its wheel ships, run as
``osemgrep``: the OCaml command line, with none of the Python wrapper's dependencies) parses
each changed file in its language and matches the rules kept as data under
``policies/semgrep/``: the whole environment sent to output, downloaded data executed, a
literal credential compared against request input, network calls in tests, credential files
read. Rules name themselves: a finding becomes the violation ``checks.analysis:<rule id>``.

Only findings that touch an added line count: what the repository already held is not this
change's doing; with the base's copy of the files, a match the base does not have counts too
(a taint match sits where the data ends up, and a change may add only where it comes from).
The analyzer runs on the trusted side, over the files of the trusted worktree; it reads code
and never runs it. The engine is found in the installed ``semgrep`` package, else as
``semgrep-core`` on ``PATH``. A missing engine, a rule file it refuses or a run that fails raises
:class:`AnalyzerError`: a gate that could not look never passes a change.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import ForgebotError

log = logging.getLogger(__name__)

RULES_DIR = Path(__file__).resolve().parent.parent / "policies" / "semgrep"
# Files larger than this are not read: generated bundles, not changes a model writes.
MAX_FILE_BYTES = 512 * 1024
DEFAULT_TIMEOUT_S = 120.0


class AnalyzerError(ForgebotError):
    """The analyzer could not judge the change: not installed, a bad rule file, a failed run."""


@dataclass(frozen=True)
class Finding:
    """One rule matched on an added line: the rule's id, where, and the rule's message."""

    rule: str
    path: str
    line: int
    message: str


def engine() -> Path:
    """The ``semgrep-core`` binary: the installed ``semgrep`` package's, else ``PATH``'s."""
    spec = importlib.util.find_spec("semgrep")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(folder) / "bin" / "semgrep-core"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("semgrep-core")
    if found is not None:
        return Path(found)
    raise AnalyzerError(
        "the structural gate needs semgrep's engine and it is not installed: run `make deps`, "
        "or `pip install --no-deps semgrep` in forgebot's environment "
        "(or set checks.analysis: false in the policy to go without it)")


def analyze(tree: Path, added: Mapping[str, Iterable[int]], rules: Path = RULES_DIR, *,
            base: Path | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Finding]:
    """Findings of ``rules`` in the files of ``tree`` named by ``added`` (path → the line
    numbers the change added) that are the change's doing.

    A finding is the change's doing when it touches an added line, or, with ``base`` (a
    folder holding the same paths as they were before the change), when the base has no
    finding of the same rule on the same code: a taint finding is reported where the data
    ends up, and a change can add the source alone, above a sink that was already there.
    ``tree`` is a trusted worktree with the change applied; paths are relative to it and
    already judged by the path rules. Files that are missing, symbolic links or too large are
    skipped.
    """
    if not rules.is_dir() or not any(rules.rglob("*.yml")):
        raise AnalyzerError(f"no analyzer rules in {rules} (the analysis_rules setting)")
    lines = {path: frozenset(numbers) for path, numbers in added.items() if numbers}
    targets = [path for path in sorted(lines) if _readable(tree, path)]
    if not targets:
        return []
    found: set[Finding] = set()
    rest: list[_Result] = []
    for result in _run(tree, targets, rules, timeout_s):
        finding = result.on(lines.get(result.path, frozenset()))
        if finding is None:
            rest.append(result)
        else:
            found.add(finding)
    if rest and base is not None:
        before = [path for path in sorted({r.path for r in rest}) if _readable(base, path)]
        seen = Counter(r.key(base) for r in _run(base, before, rules, timeout_s)) if before \
            else Counter()
        for result in rest:
            key = result.key(tree)
            if seen[key] > 0:
                seen[key] -= 1
            else:
                found.add(Finding(result.rule, result.path, result.first, result.message))
    return sorted(found, key=lambda f: (f.path, f.line, f.rule))


def _readable(tree: Path, path: str) -> bool:
    file = tree / path
    try:
        return (not file.is_symlink() and file.is_file()
                and file.stat().st_size <= MAX_FILE_BYTES)
    except OSError:
        return False


def _run(tree: Path, targets: list[str], rules: Path, timeout_s: float) -> list[_Result]:
    """One ``osemgrep scan`` over ``targets`` in ``tree``; its results."""
    core = engine()
    # Targets named on the command line are scanned whatever ignore files say (semgrep's
    # default one skips test folders), and the change's own ``nosemgrep`` comments are not
    # honoured: a change never vouches for itself.
    command = ["osemgrep", "scan", "--experimental", "--config", str(rules), "--json",
               "--quiet", "--metrics=off", "--disable-version-check", "--novcs",
               "--no-git-ignore", "--disable-nosem", "--timeout", "30", "--", *targets]
    try:
        with tempfile.TemporaryDirectory(prefix="forgebot-analyzer-") as scratch:
            # Its settings and logs go to a scratch home, never the operator's.
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": scratch,
                   "XDG_CONFIG_HOME": scratch, "XDG_CACHE_HOME": scratch,
                   "SEMGREP_SEND_METRICS": "off", "SEMGREP_ENABLE_VERSION_CHECK": "0",
                   "LANG": "C.UTF-8"}
            done = subprocess.run(command, executable=core, cwd=tree, env=env,
                                  timeout=timeout_s, capture_output=True, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AnalyzerError(f"the analyzer did not finish in {timeout_s:.0f} s") from exc
    except OSError as exc:
        raise AnalyzerError(f"the analyzer could not start: {exc}") from exc
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        report = {}
    if done.returncode not in (0, 1) or "results" not in report:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise AnalyzerError(
            f"the analyzer failed (exit {done.returncode}): {' / '.join(tail) or 'no output'}")
    for error in report.get("errors") or []:
        if error.get("level") == "error" and "rule" in str(error.get("type", "")).lower():
            raise AnalyzerError(f"a rule under {rules} is invalid: {error.get('message')}")
        log.info("analyzer: %s", str(error.get("message", error))[:300])
    return [_Result.read(item) for item in report.get("results") or []]


@dataclass(frozen=True)
class _Result:
    """One match as the engine reports it: the rule, the file and the lines it spans."""

    rule: str
    path: str
    first: int
    last: int
    message: str

    @classmethod
    def read(cls, item: Mapping[str, Any]) -> _Result:
        first = int((item.get("start") or {}).get("line", 0))
        last = max(first, int((item.get("end") or {}).get("line", first)))
        message = str((item.get("extra") or {}).get("message", ""))
        return cls(str(item.get("check_id", "")).rsplit(".", 1)[-1], str(item.get("path", "")),
                   first, last, " ".join(message.split()))

    def on(self, added: frozenset[int]) -> Finding | None:
        """The finding at the first added line the match spans; None when it spans none."""
        for number in range(self.first, self.last + 1):
            if number in added:
                return Finding(self.rule, self.path, number, self.message)
        return None

    def key(self, tree: Path) -> tuple[str, str, str]:
        """What the match is, wherever it sits: the rule, the file and the code it spans."""
        try:
            text = (tree / self.path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        code = text.splitlines()[self.first - 1:self.last]
        return self.rule, self.path, " ".join(" ".join(code).split())
