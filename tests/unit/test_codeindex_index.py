"""index_repository: the per-repository cache reuses unchanged files, drops deleted ones,
never follows symbolic links, and survives a second process and a broken cache file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.agent.codeindex import index_repository
from bot.agent.codeindex.cache import CACHE_FILE
from bot.errors import StoreError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codeindex"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for sample in FIXTURES.glob("*.*"):
        target = root / "src" / sample.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(sample.read_bytes())
    (root / "README.md").write_text("# not code\n")
    (root / "node_modules" / "dep").mkdir(parents=True)
    (root / "node_modules" / "dep" / "index.js").write_text("function vendored() {}\n")
    return root


def test_first_index_parses_every_source_file(repo: Path, tmp_path: Path) -> None:
    index, stats = index_repository(repo, tmp_path / "cache")
    assert sorted(index.files) == sorted(f"src/{p.name}" for p in FIXTURES.glob("*.*"))
    assert (stats.parsed, stats.reused, stats.removed, stats.skipped) == (7, 0, 0, 0)
    assert stats.seconds > 0
    assert index.defined_in("StripeGateway") == ["src/typescript_sample.ts"]


def test_second_index_reparses_only_what_changed(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, _ = index_repository(repo, cache)
    (repo / "src" / "go_sample.go").write_text("package store\n\nfunc Added() {}\n")
    (repo / "src" / "JavaSample.java").unlink()
    (repo / "src" / "extra.py").write_text("def extra():\n    return 1\n")

    second, stats = index_repository(repo, cache)

    assert (stats.parsed, stats.reused, stats.removed) == (2, 5, 1)
    assert "src/JavaSample.java" not in second.files
    assert [d.name for d in second.files["src/go_sample.go"].definitions] == ["Added"]
    assert second.files["src/python_sample.py"] == first.files["src/python_sample.py"]

    _, again = index_repository(repo, cache)
    assert (again.parsed, again.reused, again.removed) == (0, 7, 0)


def test_explicit_file_list_is_validated(repo: Path, tmp_path: Path) -> None:
    files = ["src/python_sample.py", "../outside.py", "/etc/passwd.py", "src/missing.py", "x.md"]
    (repo.parent / "outside.py").write_text("def secret():\n    pass\n")
    index, stats = index_repository(repo, tmp_path / "cache", files)
    assert list(index.files) == ["src/python_sample.py"]
    assert stats.skipped == 1  # the missing file; invalid paths never get that far


def test_symbolic_links_are_never_followed(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("def leaked():\n    pass\n")
    os.symlink(outside / "secret.py", repo / "src" / "link.py")
    os.symlink(outside, repo / "linked_dir")

    index, _ = index_repository(repo, tmp_path / "cache")
    listed, stats = index_repository(
        repo, tmp_path / "cache2", ["src/link.py", "linked_dir/secret.py"]
    )

    assert not any(d.name == "leaked" for d in index.definitions())
    assert listed.files == {}
    assert stats.skipped == 2


def test_a_cache_that_is_not_a_database_is_rebuilt(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / CACHE_FILE).write_bytes(b"this is not sqlite" * 100)
    index, stats = index_repository(repo, cache)
    assert stats.parsed == len(index.files) == 7


def test_two_processes_can_index_the_same_repository(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from bot.agent.codeindex import index_repository\n"
        "index, stats = index_repository(Path(sys.argv[1]), Path(sys.argv[2]))\n"
        "print(json.dumps(sorted(index.files)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(repo), str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (_out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
    expected = sorted(f"src/{p.name}" for p in FIXTURES.glob("*.*"))
    assert [json.loads(out) for out, _ in outputs] == [expected, expected]
    _, stats = index_repository(repo, cache)
    assert (stats.parsed, stats.reused) == (0, 7)


def test_rows_of_another_extractor_version_are_parsed_again(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    index_repository(repo, cache)
    with sqlite3.connect(cache / CACHE_FILE) as db:
        db.execute("UPDATE files SET version = 'older' WHERE path = 'src/go_sample.go'")
    db.close()
    _, stats = index_repository(repo, cache)
    assert (stats.parsed, stats.reused, stats.removed) == (1, 6, 0)


def test_an_unusable_cache_folder_is_a_store_error(repo: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(StoreError, match="symbol cache folder"):
        index_repository(repo, blocker / "cache")
