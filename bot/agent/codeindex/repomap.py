"""Rank a repository's files for a task and render the top ones as a compact map.

Pure functions over a RepoIndex. A file's rank blends three signals:

1. the task text: files whose path it names, and files that define identifiers it names;
2. the reference graph: an edge from file F to file G for every name F references and G
   defines, weighted so that rare, long-lived names count and names defined everywhere
   (``get``, ``run``, ``__init__``) barely do; a personalised PageRank over that graph,
   seeded by signals 1 and 3, spreads relevance to what the named code depends on;
3. the files the caller says changed recently.

The map lists files best first and, under each, its most referenced definitions as
``line│signature``. It is fitted to a token budget with the caller's ``count_tokens`` by a
binary search over how many lines to keep, so it never exceeds the budget.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from bot.agent.codeindex.index import RepoIndex
from bot.agent.codeindex.symbols import Symbol
from bot.agent.context import IssueTerms

DAMPING = 0.85
MAX_ITERATIONS = 100
# L1 change between iterations at which the ranking has settled (it only orders files).
TOLERANCE = 1e-6
# Definitions listed under one file at most: past this a map entry is a file listing.
MAX_DEFS_PER_FILE = 12
# A name defined in more files than this is generic (get, run, __init__): it links little.
_COMMON_DEFINERS = 5
_CONTAINER_KINDS = frozenset({"class", "interface", "struct", "enum"})
# Seed weights of the personalisation vector (before normalising), and bonuses added to a
# rank normalised to 0..1: a file the task names by path, or by a code-like identifier
# that only it defines (bonus 1.5 or more), outranks any file that is merely central.
_SEED_PATH, _SEED_IDENT, _SEED_WEAK, _SEED_RECENT = 10.0, 5.0, 2.0, 3.0
_BONUS_PATH, _BONUS_IDENT, _BONUS_WEAK, _BONUS_RECENT = 3.0, 1.5, 0.5, 0.5
# Cap on a file's identifier strength: naming more of its definitions helps, up to a point.
_MAX_IDENT_STRENGTH = 1.5
_BACKTICKED = re.compile(r"`([^`\n]{1,200})`")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class _Task:
    """What a task names, resolved against the index."""

    path_files: frozenset[str]  # files whose path the task names
    names: frozenset[str]  # code-like defined identifiers the task names
    ident_files: Mapping[str, float]  # file -> identifier strength (see _resolve)
    weak_files: frozenset[str]  # files named by stem, or defining a plain word of the task
    recent: frozenset[str]


def rank_files(
    index: RepoIndex, task_text: str, recent_files: Sequence[str] = ()
) -> list[tuple[str, float]]:
    """Every indexed file with its relevance to ``task_text``, best first (ties by path).

    A score is the file's PageRank normalised to 0..1 plus bonuses: 3 for a path the task
    names; 1.5 times the file's identifier strength (up to 1.5) for code-like identifiers
    the task names that the file defines, 1 for a name only this file defines; 0.5 for a
    plain word of the task naming the file or one of its definitions; 0.5 for a recent
    change. So a file the task names outranks one that is merely central.
    """
    return _rank(index, task_text, recent_files).scores


def repo_map(
    index: RepoIndex,
    task_text: str,
    recent_files: Sequence[str],
    budget_tokens: int,
    count_tokens: Callable[[str], int],
) -> str:
    """The map of the files most relevant to ``task_text``, within ``budget_tokens``.

    ``count_tokens`` is the model's tokenizer (or an estimate); the result, measured with
    it, never exceeds the budget. Empty when nothing fits or the index is empty.
    """
    if budget_tokens <= 0 or not index.files:
        return ""
    ranking = _rank(index, task_text, recent_files)
    weights = _definition_weights(ranking.ranks, ranking.by_name)
    order = [path for path, _score in ranking.scores]
    units = _map_lines(index, order, weights, ranking.task.names)
    return _fit(units, budget_tokens, count_tokens)


@dataclass(frozen=True)
class _Ranking:
    task: _Task
    ranks: Mapping[str, float]  # PageRank, summing to 1
    by_name: ByName
    scores: list[tuple[str, float]]  # best first


def _rank(index: RepoIndex, task_text: str, recent_files: Sequence[str]) -> _Ranking:
    task = _resolve(index, task_text, recent_files)
    if not index.files:
        return _Ranking(task, {}, {}, [])
    edges, by_name = _edges(index, task.names)
    ranks = _pagerank(sorted(index.files), edges, _seeds(index, task))
    top = max(ranks.values()) or 1.0
    scores = [(path, ranks[path] / top + _bonus(path, task)) for path in index.files]
    scores.sort(key=lambda item: (-item[1], item[0]))
    return _Ranking(task, ranks, by_name, scores)


# --------------------------------------------------------------------- the task


def _resolve(index: RepoIndex, task_text: str, recent_files: Sequence[str]) -> _Task:
    """Match the task's words against paths and definitions.

    An identifier counts fully when it looks like code (``parse_config``, ``DockerSandbox``,
    ``HTTP2``) or the task quotes it in backticks; a plain word that happens to name a
    definition or a file stem (``report``, ``sandbox``) is a weak signal only. A file's
    identifier strength sums 1/k over the named identifiers it defines, k being how many
    files define that name: the one file defining ``HttpCompressionMiddleware`` gets 1,
    each of twenty middlewares defining ``process_response`` gets 0.05.
    """
    terms = IssueTerms.of(task_text)
    quoted = {w for q in _BACKTICKED.findall(task_text) for w in _WORD.findall(q)}
    words = terms.words | quoted
    path_files = frozenset(p for p in index.files if any(_names_path(m, p) for m in terms.paths))
    lowered = {w.lower() for w in words}
    weak = {p for p in index.files if len(_stem(p)) > 3 and _stem(p) in lowered}
    definers: defaultdict[str, list[str]] = defaultdict(list)
    for path, symbols in index.files.items():
        for name in {d.name for d in symbols.definitions} & words:
            definers[name].append(path)
    names = {n for n in definers if n in quoted or _looks_like_code(n)}
    ident_files: defaultdict[str, float] = defaultdict(float)
    for name, paths in definers.items():
        for path in paths:
            if name in names:
                ident_files[path] += 1.0 / len(paths)
            else:
                weak.add(path)
    recent = frozenset(p for p in recent_files if p in index.files)
    return _Task(path_files, frozenset(names), ident_files, frozenset(weak), recent)


def _looks_like_code(name: str) -> bool:
    return "_" in name.strip("_") or any(c.isupper() or c.isdigit() for c in name[1:])


def _names_path(mention: str, path: str) -> bool:
    # "see src/app/models.py" names app/models.py; "models.py" names src/app/models.py.
    mention = mention.removeprefix("./")
    return mention == path or mention.endswith("/" + path) or path.endswith("/" + mention)


def _stem(path: str) -> str:
    return path.rsplit("/", 1)[-1].split(".", 1)[0].lower()


def _seeds(index: RepoIndex, task: _Task) -> dict[str, float]:
    seeds = {path: 1.0 / len(index.files) for path in index.files}
    for path in task.path_files:
        seeds[path] += _SEED_PATH
    for path, strength in task.ident_files.items():
        seeds[path] += _SEED_IDENT * min(strength, _MAX_IDENT_STRENGTH)
    for path in task.weak_files:
        seeds[path] += _SEED_WEAK
    for path in task.recent:
        seeds[path] += _SEED_RECENT
    return seeds


def _bonus(path: str, task: _Task) -> float:
    bonus = _BONUS_PATH if path in task.path_files else 0.0
    bonus += _BONUS_IDENT * min(task.ident_files.get(path, 0.0), _MAX_IDENT_STRENGTH)
    if path in task.weak_files:
        bonus += _BONUS_WEAK
    if path in task.recent:
        bonus += _BONUS_RECENT
    return bonus


# --------------------------------------------------------------------- the graph

# (referencing file, defining file) -> weight; and per name the edges it made, for
# weighting definitions afterwards: name -> [(from, to, weight)].
Edges = dict[tuple[str, str], float]
ByName = dict[str, list[tuple[str, str, float]]]


def _edges(index: RepoIndex, named: frozenset[str]) -> tuple[Edges, ByName]:
    definers: defaultdict[str, set[str]] = defaultdict(set)
    for path, symbols in index.files.items():
        for definition in symbols.definitions:
            definers[definition.name].add(path)
    edges: Edges = defaultdict(float)
    by_name: ByName = defaultdict(list)
    for path, symbols in index.files.items():
        for name, count in Counter(r.name for r in symbols.references).items():
            targets = definers.get(name, set()) - {path}
            if not targets:
                continue
            weight = math.sqrt(count) * _name_weight(name, named, len(definers[name]))
            share = weight / len(targets)
            for target in targets:
                edges[path, target] += share
                by_name[name].append((path, target, share))
    return dict(edges), dict(by_name)


def _name_weight(name: str, named: frozenset[str], definer_count: int) -> float:
    weight = 1.0
    if name in named:
        weight *= 10.0
    if name.startswith("_"):
        weight *= 0.1
    if definer_count > _COMMON_DEFINERS:
        weight *= 0.1
    if len(name) >= 8 and ("_" in name or any(c.isupper() for c in name[1:])):
        weight *= 2.0  # a long compound name links two files for a reason
    return weight


def _pagerank(nodes: list[str], edges: Edges, seeds: Mapping[str, float]) -> dict[str, float]:
    """Personalised PageRank by power iteration; a node with no out-edges gives its rank
    back to the seeds, so rank is conserved and sums to 1."""
    position = {node: i for i, node in enumerate(nodes)}
    total_seed = sum(seeds.values())
    seed = [seeds[node] / total_seed for node in nodes]
    out_weight = [0.0] * len(nodes)
    for (source, _target), weight in edges.items():
        out_weight[position[source]] += weight
    # Per target: (source index, share of the source's rank it receives).
    incoming: list[list[tuple[int, float]]] = [[] for _ in nodes]
    for (source, target), weight in edges.items():
        i = position[source]
        incoming[position[target]].append((i, weight / out_weight[i]))
    dangling_nodes = [i for i, weight in enumerate(out_weight) if weight == 0.0]
    rank = list(seed)
    for _ in range(MAX_ITERATIONS):
        dangling = sum(rank[i] for i in dangling_nodes)
        base = 1.0 - DAMPING + DAMPING * dangling
        new = [
            base * seed[n] + DAMPING * sum(rank[i] * share for i, share in incoming[n])
            for n in range(len(nodes))
        ]
        delta = sum(abs(a - b) for a, b in zip(new, rank, strict=True))
        rank = new
        if delta < TOLERANCE:
            break
    return dict(zip(nodes, rank, strict=True))


def _definition_weights(
    ranks: Mapping[str, float], by_name: ByName
) -> dict[tuple[str, str], float]:
    """(defining file, name) -> the rank that flows into that definition from its users."""
    weights: defaultdict[tuple[str, str], float] = defaultdict(float)
    for name, links in by_name.items():
        for source, target, weight in links:
            weights[target, name] += ranks[source] * weight
    return dict(weights)


# --------------------------------------------------------------------- rendering


def _map_lines(
    index: RepoIndex,
    order: Sequence[str],
    weights: Mapping[tuple[str, str], float],
    named: frozenset[str],
) -> list[list[str]]:
    """The map as units of lines to keep or drop whole, best first: a file's path, then one
    unit per shown definition (a method brings the line of its class along)."""
    units: list[list[str]] = []
    for path in order:
        definitions = index.files[path].definitions
        units.append([path])
        chosen = sorted(
            definitions,
            key=lambda d: (d.name not in named, -weights.get((path, d.name), 0.0), d.line),
        )[:MAX_DEFS_PER_FILE]
        shown: set[int] = set()
        for definition in sorted(chosen, key=lambda d: d.line):
            unit = []
            for symbol in (_container(definitions, definition), definition):
                if symbol is not None and symbol.line not in shown:
                    unit.append(f"{symbol.line:>5}│{symbol.signature}")
                    shown.add(symbol.line)
            if unit:
                units.append(unit)
    return units


def _container(definitions: Sequence[Symbol], member: Symbol) -> Symbol | None:
    """The nearest class-like definition above a method: the context a reader needs."""
    if member.kind not in {"method", "constructor", "property"}:
        return None
    above = [d for d in definitions if d.kind in _CONTAINER_KINDS and d.line < member.line]
    return max(above, key=lambda d: d.line) if above else None


def _render(units: Sequence[list[str]]) -> str:
    return "".join(line + "\n" for unit in units for line in unit)


def _fit(units: list[list[str]], budget: int, count_tokens: Callable[[str], int]) -> str:
    """The rendering of the longest prefix of ``units`` that fits ``budget`` tokens.

    A binary search over the prefix length; only measured renderings are kept, so even a
    tokenizer that is not monotonic in the text cannot push the answer over the budget.
    """
    low, high = 0, len(units)
    best = ""
    while low < high:
        middle = (low + high + 1) // 2
        text = _render(units[:middle])
        if count_tokens(text) <= budget:
            low, best = middle, text
        else:
            high = middle - 1
    return best
