"""Code retrieval: index time (cold, then after one file changed) and query latency.

The corpus is a real project from PyPI: the wheel of ``flask`` (pinned), fetched with
``pip download`` into ``var/bench/retrieval/`` once and unpacked there. For each embedder
(``hashing``, ``minilm``) a fresh ``CodeRetriever`` indexes every file of the package; then
the largest source file gets a new function appended and the index is updated again (only
that file's chunks are embedded). Queries are the first docstring lines of the project's functions
(50 of them), asked with k=5.

Baselines measured in the same run: the index update after one change against the cold
index, and each query against brute-force numpy cosine over the very same vectors (read
back from the chromadb collection), with the same query embedding. The figures split a
query into embedding the text and searching.

    .venv/bin/python bench/retrieval.py [--project flask==3.1.0] [--queries 50]
                                        [--embedders hashing,minilm]
"""

from __future__ import annotations

import argparse
import ast
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import chromadb
import numpy as np
from chromadb.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.agent.retrieval import CodeRetriever, build_embedder
from bot.agent.retrieval.embedders import Embedder

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "var" / "bench" / "retrieval"
K = 5


def fetch(requirement: str) -> Path:
    """The unpacked wheel of ``requirement`` under var/bench/retrieval/ (downloaded once)."""
    name = requirement.split("==", maxsplit=1)[0].replace("-", "_").lower()
    target = CACHE / requirement.replace("==", "-")
    if not target.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary", ":all:", requirement, "-d", str(CACHE)], check=True)
        wheel = next(p for p in CACHE.glob("*.whl") if p.name.lower().startswith(name + "-"))
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(target)
    return target / name


def files_of(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


def queries_of(root: Path, count: int) -> list[str]:
    """First docstring lines of the project's functions, in file order."""
    out: list[str] = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                doc = (ast.get_docstring(node) or "").strip().splitlines()
                if doc and len(doc[0]) > 20:
                    out.append(doc[0])
    return out[:count]


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000


def stored_vectors(folder: Path, embedder_name: str) -> np.ndarray:
    client = chromadb.PersistentClient(path=str(folder),
                                       settings=Settings(anonymized_telemetry=False))
    collection = client.get_collection(f"code-{embedder_name}")
    vectors = np.asarray(collection.get(include=["embeddings"])["embeddings"], dtype=np.float32)
    client.close()
    return vectors


def bench_embedder(name: str, embedder: Embedder, source: Path, queries: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(source, tree)
        files = files_of(tree)
        store = Path(tmp) / "store"
        with CodeRetriever(store, name, embedder=embedder) as retriever:
            cold = retriever.update(tree, files)
            # The largest source file: the dearest single change to re-embed.
            changed = max((tree / f for f in files if f.endswith(".py")),
                          key=lambda p: p.stat().st_size)
            changed.write_text(changed.read_text() + "\n\ndef bench_added(x):\n"
                               "    '''Added by the benchmark.'''\n    return x\n")
            warm = retriever.update(tree, files)
            print(f"{name:8} index cold: {cold.seconds:8.2f} s ({cold.embedded} chunks of "
                  f"{len(files)} files, {cold.seconds / max(cold.embedded, 1) * 1000:.1f} ms "
                  f"per chunk)")
            print(f"{name:8} one file changed: {warm.seconds:8.2f} s (embedded {warm.embedded},"
                  f" reused {warm.reused}, removed {warm.removed}): "
                  f"{warm.seconds / cold.seconds:.3f}x the cold index")
            embed_ms: list[float] = []
            ours: list[float] = []
            for text in queries:
                begin = time.perf_counter()
                embedder.embed([text])
                embed_ms.append(time.perf_counter() - begin)
                begin = time.perf_counter()
                retriever.query(text, K)
                ours.append(time.perf_counter() - begin)
        vectors = stored_vectors(store, name)
        brute: list[float] = []
        brute_search: list[float] = []
        for text in queries:
            begin = time.perf_counter()
            query = embedder.embed([text])[0]
            searched = time.perf_counter()
            scores = vectors @ query
            top = np.argpartition(-scores, K)[:K]
            top[np.argsort(-scores[top])]
            done = time.perf_counter()
            brute.append(done - begin)
            brute_search.append(done - searched)
    search = [max(a - b, 0.0) for a, b in zip(ours, embed_ms, strict=True)]
    print(f"{name:8} query p50/p95: chromadb {pct(ours, 50):.2f} / {pct(ours, 95):.2f} ms; "
          f"numpy brute force {pct(brute, 50):.2f} / {pct(brute, 95):.2f} ms; "
          f"ratio {pct(ours, 50) / pct(brute, 50):.2f}x p50")
    print(f"{name:8}   of which embedding the query: p50 {pct(embed_ms, 50):.2f} ms; search "
          f"alone p50 chromadb {pct(search, 50):.2f} ms vs numpy {pct(brute_search, 50):.3f} ms"
          f" over {len(vectors)} vectors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default="flask==3.1.0")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--embedders", default="hashing,minilm")
    args = parser.parse_args()
    source = fetch(args.project)
    queries = queries_of(source, args.queries)
    print(f"corpus: {args.project}, {len(files_of(source))} files; {len(queries)} queries, "
          f"k={K}")
    for name in args.embedders.split(","):
        begin = time.perf_counter()
        embedder = build_embedder(name)
        print(f"{name:8} load: {(time.perf_counter() - begin) * 1000:.0f} ms")
        bench_embedder(name, embedder, source, queries)


if __name__ == "__main__":
    main()
