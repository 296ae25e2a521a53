"""The chromadb chunk store on a real temporary repository, with the hashing embedder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.agent.retrieval import CodeRetriever, RetrievalError
from bot.agent.retrieval.embedders import HashingEmbedder
from bot.agent.retrieval.minilm import Array
from bot.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def function_file(name: str, words: str, count: int = 6) -> str:
    """A Python file of ``count`` 15-line functions about ``words``: several chunks."""
    blocks = []
    for n in range(count):
        body = "\n".join(f"    # {words} step {i}" for i in range(12))
        blocks.append(f"def {name}_{n}(value):\n{body}\n    return value\n")
    return "\n".join(blocks)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src" / "mail").mkdir(parents=True)
    (root / "src" / "mail" / "smtp.py").write_text(
        function_file("send_email", "smtp mailbox deliver message"))
    (root / "src" / "images.py").write_text(function_file("resize_image", "pixels width scale"))
    (root / "README.md").write_text("# Demo\n\nA small project.\n")
    return root


def files_of(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_update_is_incremental_by_file_content(tmp_path: Path, repo: Path) -> None:
    store = tmp_path / "store"
    with CodeRetriever(store, "hashing") as retriever:
        first = retriever.update(repo, files_of(repo))
        total = retriever.count()
        assert first.embedded == total > 3 and first.reused == first.removed == 0

        again = retriever.update(repo, files_of(repo))
        assert (again.embedded, again.reused, again.removed) == (0, total, 0)

        smtp = repo / "src" / "mail" / "smtp.py"
        smtp_chunks = sum(1 for c in retriever.query("send_email smtp", 1000)
                          if c.path == "src/mail/smtp.py")
        assert smtp_chunks > 1
        smtp.write_text(function_file("send_email", "smtp mailbox deliver message", count=2))
        changed = retriever.update(repo, files_of(repo))
        assert changed.removed == smtp_chunks
        assert changed.reused == total - smtp_chunks
        assert 0 < changed.embedded < smtp_chunks
        assert retriever.count() == total - smtp_chunks + changed.embedded

        (repo / "src" / "images.py").unlink()
        deleted = retriever.update(repo, files_of(repo))
        assert deleted.embedded == 0 and deleted.removed > 0
        assert all(c.path != "src/images.py" for c in retriever.query("resize_image", 1000))


def test_query_finds_the_relevant_chunk(tmp_path: Path, repo: Path) -> None:
    with CodeRetriever(tmp_path / "store", "hashing") as retriever:
        retriever.update(repo, files_of(repo))
        found = retriever.query("resize the image to a new width", 3)
    assert len(found) == 3
    assert found[0].path == "src/images.py"
    assert found[0].score >= found[1].score >= found[2].score
    assert found[0].text.startswith("def resize_image_")
    lines = (repo / "src" / "images.py").read_text().splitlines()
    assert found[0].text == "\n".join(lines[found[0].start_line - 1 : found[0].end_line])


def test_a_second_process_sees_the_stored_chunks(tmp_path: Path, repo: Path) -> None:
    store = tmp_path / "store"
    with CodeRetriever(store, "hashing") as retriever:
        retriever.update(repo, files_of(repo))
        count = retriever.count()
    code = (
        "import json, sys; from pathlib import Path;"
        "from bot.agent.retrieval import CodeRetriever\n"
        "with CodeRetriever(Path(sys.argv[1]), 'hashing') as r:\n"
        "    hits = r.query('smtp mailbox', 1)\n"
        "    stats = r.update(Path(sys.argv[2]), json.loads(sys.argv[3]))\n"
        "    print(json.dumps([r.count(), hits[0].path, stats.embedded, stats.reused]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(store), str(repo), json.dumps(files_of(repo))],
        capture_output=True, text=True, check=True, cwd=REPO, env=dict(os.environ))
    assert json.loads(out.stdout) == [count, "src/mail/smtp.py", 0, count]


def test_reads_stay_under_root_and_skip_links_and_binaries(tmp_path: Path, repo: Path) -> None:
    outside = tmp_path / "secret.py"
    outside.write_text("def leaked_secret_token(): pass\n")
    (repo / "link.py").symlink_to(outside)
    (repo / "linkdir").symlink_to(tmp_path)
    (repo / "blob.bin").write_bytes(b"\0\1\2 leaked_secret_token")
    listed = [*files_of(repo), "../secret.py", str(outside), "linkdir/secret.py", ".git/config"]
    with CodeRetriever(tmp_path / "store", "hashing") as retriever:
        retriever.update(repo, listed)
        paths = {c.path for c in retriever.query("leaked_secret_token", 1000)}
    assert paths == {"README.md", "src/images.py", "src/mail/smtp.py"}


def test_chunk_limit_skips_files_and_says_so(tmp_path: Path, repo: Path) -> None:
    with CodeRetriever(tmp_path / "store", "hashing", max_chunks=3) as retriever:
        stats = retriever.update(repo, files_of(repo))
        assert stats.skipped_files >= 1
        assert retriever.count() == stats.embedded <= 3


def test_unknown_embedder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown embedder 'tfidf'"):
        CodeRetriever(tmp_path / "store", "tfidf")


def test_empty_store_and_empty_query(tmp_path: Path) -> None:
    with CodeRetriever(tmp_path / "store", "hashing") as retriever:
        assert retriever.query("anything", 5) == []
        assert retriever.update(tmp_path, []).embedded == 0


def test_unusable_folder_is_a_retrieval_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RetrievalError, match="cannot open the retrieval store"):
        CodeRetriever(blocker / "store", "hashing")


def test_missing_root_changes_nothing(tmp_path: Path, repo: Path) -> None:
    with CodeRetriever(tmp_path / "store", "hashing") as retriever:
        retriever.update(repo, files_of(repo))
        count = retriever.count()
        with pytest.raises(RetrievalError, match="not a folder"):
            retriever.update(tmp_path / "gone", files_of(repo))
        assert retriever.count() == count


def test_never_opens_a_network_connection(tmp_path: Path, repo: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    with CodeRetriever(tmp_path / "store", "hashing") as retriever:
        retriever.update(repo, files_of(repo))
        assert retriever.query("smtp", 2)
    assert attempts == []


class FailingEmbedder(HashingEmbedder):
    """Embeds ``calls`` batches, then fails: an update interrupted half-way through."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls = calls

    def embed(self, texts: list[str]) -> Array:
        if self.calls == 0:
            raise RuntimeError("worker killed")
        self.calls -= 1
        return super().embed(texts)


def test_an_interrupted_update_is_completed_by_the_next(tmp_path: Path, repo: Path) -> None:
    big = "\n".join(f"def step_{n}(v):\n" + "\n".join(["    v += 1"] * 40) + "\n    return v\n"
                    for n in range(70))
    (repo / "big.py").write_text(big)  # 70 chunks: more than one embedding batch
    store = tmp_path / "store"
    with CodeRetriever(store, "hashing", embedder=FailingEmbedder(calls=1)) as retriever:
        with pytest.raises(RuntimeError, match="worker killed"):
            retriever.update(repo, ["big.py"])
        partial = retriever.count()
    assert 0 < partial < 70
    with CodeRetriever(store, "hashing") as retriever:
        stats = retriever.update(repo, ["big.py"])
        assert (stats.embedded, stats.reused, stats.removed) == (70, 0, partial)
        assert retriever.count() == 70
