"""The agent's context sources, cached per repository: a second job re-indexes only what
changed, and the ranking puts the files the issue is about first."""

from __future__ import annotations

from pathlib import Path

from bot.agent.sources import collect


def repo(root: Path) -> Path:
    (root / "shop").mkdir(parents=True)
    (root / "shop" / "cart.py").write_text(
        "from shop.prices import unit_price\n\n\n"
        "def cart_total(items):\n    return sum(unit_price(i) for i in items)\n")
    (root / "shop" / "prices.py").write_text("def unit_price(item):\n    return item.price\n")
    (root / "shop" / "mail.py").write_text("def send_receipt(address):\n    return address\n")
    (root / "README.md").write_text("# shop\n")
    return root


def test_a_second_collect_reuses_the_caches(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo")
    cache = tmp_path / "cache"
    task = "cart_total ignores the quantity of each item"
    first = collect(root, task, cache_dir=cache, retrieval="hashing")
    assert first.stats["parsed"] == 3 and first.stats["reused"] == 0
    assert first.stats["embedded"] == 4
    assert first.ranked[0] == "shop/cart.py"
    assert first.snippets and first.snippets[0].path == "shop/cart.py"

    (root / "shop" / "mail.py").write_text("def send_receipt(address, total):\n    return total\n")
    second = collect(root, task, cache_dir=cache, retrieval="hashing")
    assert (second.stats["parsed"], second.stats["reused"]) == (1, 2)
    assert second.stats["embedded"] == 1 and second.stats["chunks_reused"] == 3

    text = second.repo_map(200, lambda s: len(s) // 4)
    assert text.splitlines()[0] == "shop/cart.py"


def test_without_a_cache_nothing_is_written(tmp_path: Path) -> None:
    root = repo(tmp_path / "repo")
    sources = collect(root, "unit_price is wrong", cache_dir=None, retrieval="minilm")
    assert sources.snippets == []  # retrieval needs a cache folder
    assert sources.ranked[0] == "shop/prices.py"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]
