"""rank_files and repo_map: pure functions over an in-memory index."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.agent.codeindex import RepoIndex, rank_files, repo_map
from bot.agent.codeindex.repomap import _pagerank

# A small shop: everything uses util.py (the central file); billing and shipping are leaves.
SOURCES = {
    "shop/util.py": b"def money(x):\n    return x\n\n\ndef log_event(name):\n    pass\n",
    "shop/billing.py": (
        b"from shop.util import money, log_event\n\n\n"
        b"class InvoiceBuilder:\n"
        b"    def add_line(self, amount):\n"
        b"        log_event('line')\n"
        b"        return money(amount)\n"
    ),
    "shop/shipping.py": (
        b"from shop.util import money, log_event\n\n\n"
        b"def quote_parcel(weight):\n"
        b"    log_event('quote')\n"
        b"    return money(weight * 2)\n"
    ),
    "shop/orders.py": (
        b"from shop.util import money, log_event\n\n\n"
        b"def place_order(items):\n"
        b"    log_event('order')\n"
        b"    return money(sum(items))\n"
    ),
    "web/cart.ts": (
        b"export class CartView {\n  render(): string { return formatTotal(1); }\n}\n"
        b"export function formatTotal(n: number): string { return String(n); }\n"
    ),
}
INDEX = RepoIndex.from_sources(SOURCES)


def chars(text: str) -> int:
    return len(text)


def words(text: str) -> int:
    return len(text.split())


def test_the_central_file_leads_when_the_task_names_nothing() -> None:
    ranked = rank_files(INDEX, "Please tidy things up.")
    assert ranked[0][0] == "shop/util.py"
    assert {path for path, _ in ranked} == set(SOURCES)
    assert [score for _, score in ranked] == sorted((s for _, s in ranked), reverse=True)


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("`quote_parcel` rounds the weight wrong", "shop/shipping.py"),
        ("InvoiceBuilder.add_line should skip zero amounts", "shop/billing.py"),
        ("CartView shows NaN", "web/cart.ts"),
        ("Crash in shop/orders.py when the list is empty", "shop/orders.py"),
        ("see orders.py", "shop/orders.py"),
    ],
)
def test_what_the_task_names_moves_to_the_top(task: str, expected: str) -> None:
    assert rank_files(INDEX, task)[0][0] == expected


def test_a_plain_word_is_weaker_than_a_code_identifier() -> None:
    # "money" names util.money, but as an English word; quote_parcel is code.
    ranked = rank_files(INDEX, "the money is wrong in quote_parcel")
    assert ranked[0][0] == "shop/shipping.py"


def test_recent_files_rank_above_their_peers() -> None:
    plain = dict(rank_files(INDEX, "tidy up"))
    recent = dict(rank_files(INDEX, "tidy up", ["shop/orders.py", "not/indexed.py"]))
    assert recent["shop/orders.py"] > plain["shop/orders.py"]
    assert recent["shop/orders.py"] > recent["shop/shipping.py"]


def test_the_map_lists_the_named_file_first_with_its_signatures() -> None:
    text = repo_map(INDEX, "`quote_parcel` is wrong", [], 10_000, chars)
    lines = text.splitlines()
    assert lines[0] == "shop/shipping.py"
    assert lines[1] == "    4│def quote_parcel(weight):"
    assert "shop/util.py" in lines
    assert "    1│def money(x):" in lines


def test_a_method_brings_its_class_line() -> None:
    text = repo_map(INDEX, "add_line is wrong", [], 10_000, chars)
    block = text.split("shop/billing.py\n", 1)[1].splitlines()
    assert block[:2] == ["    4│class InvoiceBuilder:", "    5│    def add_line(self, amount):"]


@pytest.mark.parametrize("budget", [0, 1, 5, 12, 20, 40, 80, 200])
@pytest.mark.parametrize("count", [chars, words])
def test_the_budget_is_never_exceeded(budget: int, count: Callable[[str], int]) -> None:
    text = repo_map(INDEX, "`quote_parcel` is wrong", [], budget, count)
    assert count(text) <= budget
    full = repo_map(INDEX, "`quote_parcel` is wrong", [], 1_000_000, count)
    assert full.startswith(text)


def test_a_bigger_budget_shows_more() -> None:
    small = repo_map(INDEX, "tidy", [], 60, chars)
    large = repo_map(INDEX, "tidy", [], 600, chars)
    assert small and len(small) <= 60
    assert len(large) > len(small)


def test_an_empty_repository_gives_an_empty_map() -> None:
    empty = RepoIndex.from_sources({})
    assert rank_files(empty, "anything") == []
    assert repo_map(empty, "anything", ["a.py"], 1000, chars) == ""


def test_pagerank_sums_to_one_and_follows_edges() -> None:
    nodes = ["a", "b", "c"]
    ranks = _pagerank(nodes, {("a", "c"): 1.0, ("b", "c"): 1.0}, {n: 1.0 for n in nodes})
    assert sum(ranks.values()) == pytest.approx(1.0)
    assert ranks["c"] > ranks["a"] == pytest.approx(ranks["b"])


def test_a_name_many_files_define_counts_for_little() -> None:
    method = b"    def handle_event(self, e):\n        pass\n"
    handlers = {f"app/handler{i}.py": b"class Handler%d:\n" % i + method for i in range(6)}
    sources = {
        **handlers,
        "app/router.py": b"class EventRouter:\n" + method,
    }
    ranked = dict(rank_files(RepoIndex.from_sources(sources), "EventRouter.handle_event drops"))
    assert max(ranked, key=lambda p: ranked[p]) == "app/router.py"
    assert ranked["app/router.py"] - ranked["app/handler0.py"] > 1.0
