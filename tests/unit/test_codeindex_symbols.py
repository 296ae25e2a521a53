"""Symbols per language from small real-looking files (tests/fixtures/codeindex)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.agent.codeindex import FileSymbols, extract_symbols, language_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codeindex"


def symbols_of(name: str) -> FileSymbols:
    result = extract_symbols(name, (FIXTURES / name).read_bytes())
    assert result is not None
    return result


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("app/models.py", "python"),
        ("typing/stubs.pyi", "python"),
        ("web/cart.js", "javascript"),
        ("web/App.JSX", "javascript"),
        ("lib/index.mjs", "javascript"),
        ("src/gateway.ts", "typescript"),
        ("src/Badge.tsx", "tsx"),
        ("store/store.go", "go"),
        ("src/main/java/Invoice.java", "java"),
        ("Shipping/Quoter.cs", "csharp"),
        ("README.md", None),
        ("Makefile", None),
        (".py", None),
        ("src/lib.rs", None),
    ],
)
def test_language_is_chosen_by_suffix(path: str, language: str | None) -> None:
    assert language_of(path) == language


# (fixture, language, definitions expected as (name, kind, line))
DEFINITIONS = [
    (
        "python_sample.py",
        "python",
        {
            ("TAX_RATE", "constant", 8),
            ("LineItem", "class", 13),
            ("Order", "class", 19),
            ("__init__", "method", 20),
            ("subtotal", "method", 24),
            ("total", "method", 27),
            ("sum_money", "function", 31),
        },
    ),
    (
        "javascript_sample.js",
        "javascript",
        {
            ("Cart", "class", 4),
            ("add", "method", 10),
            ("renderCart", "function", 16),
            ("totalOf", "function", 20),
        },
    ),
    (
        "typescript_sample.ts",
        "typescript",
        {
            ("Gateway", "interface", 2),
            ("Receipt", "type", 6),
            ("Currency", "enum", 8),
            ("BaseGateway", "class", 13),
            ("StripeGateway", "class", 17),
            ("charge", "method", 18),
            ("pickGateway", "function", 24),
        },
    ),
    (
        "tsx_sample.tsx",
        "tsx",
        {("BadgeProps", "interface", 4), ("Badge", "function", 8), ("Toolbar", "function", 12)},
    ),
    (
        "go_sample.go",
        "go",
        {
            ("MaxOrders", "constant", 6),
            ("Order", "struct", 8),
            ("Repository", "interface", 13),
            ("ID", "type", 17),
            ("MemoryStore", "struct", 19),
            ("Save", "method", 23),
            ("NewMemoryStore", "function", 31),
            ("validate", "function", 35),
        },
    ),
    (
        "JavaSample.java",
        "java",
        {
            ("InvoiceService", "class", 6),
            ("InvoiceService", "constructor", 9),
            ("issue", "method", 13),
            ("applyTax", "method", 19),
            ("Billing", "interface", 24),
            ("Status", "enum", 28),
            ("Money", "class", 30),
        },
    ),
    (
        "CSharpSample.cs",
        "csharp",
        {
            ("IQuoter", "interface", 6),
            ("Parcel", "struct", 11),
            ("Carrier", "enum", 16),
            ("QuoteReady", "type", 18),
            ("FlatRateQuoter", "class", 20),
            ("FlatRateQuoter", "constructor", 22),
            ("Rate", "property", 24),
            ("Quote", "method", 26),
        },
    ),
]


@pytest.mark.parametrize(("name", "language", "expected"), DEFINITIONS)
def test_definitions_have_name_kind_and_line(
    name: str, language: str, expected: set[tuple[str, str, int]]
) -> None:
    symbols = symbols_of(name)
    assert symbols.language == language
    found = {(d.name, d.kind, d.line) for d in symbols.definitions}
    assert expected <= found, expected - found
    assert all(d.path == name for d in symbols.definitions)


# (fixture, names the file references, names it must not report as references)
REFERENCES = [
    ("python_sample.py", {"round_half_even", "sum_money", "BaseOrder", "LineItem", "Money"}, set()),
    ("javascript_sample.js", {"formatPrice", "CartEvent", "EventTarget", "push"}, {"Cart"}),
    ("typescript_sample.ts", {"HttpClient", "createGateway", "BaseGateway", "Receipt"}, set()),
    ("tsx_sample.tsx", {"formatLabel", "BadgeProps", "Badge"}, set()),
    ("go_sample.go", {"validate", "New", "Order", "MemoryStore"}, set()),
    ("JavaSample.java", {"Invoice", "applyTax", "TaxTable", "BaseService"}, set()),
    ("CSharpSample.cs", {"RateTable", "Lookup", "BaseQuoter", "Parcel"}, set()),
]


@pytest.mark.parametrize(("name", "expected", "absent"), REFERENCES)
def test_references_name_what_the_file_uses(
    name: str, expected: set[str], absent: set[str]
) -> None:
    references = {r.name for r in symbols_of(name).references}
    assert expected <= references, expected - references
    assert not absent & references


def test_a_definition_is_not_also_a_reference() -> None:
    # The TypeScript grammar tags a class's own name as a type_identifier too.
    symbols = symbols_of("typescript_sample.ts")
    definition_sites = {(d.name, d.line) for d in symbols.definitions}
    assert not {(r.name, r.line) for r in symbols.references} & definition_sites


def test_signature_is_the_definition_line() -> None:
    symbols = symbols_of("python_sample.py")
    by_name = {d.name: d for d in symbols.definitions}
    assert by_name["total"].signature == "    def total(self) -> Money:"
    assert by_name["Order"].signature == "class Order(BaseOrder):"


def test_python_lowercase_module_names_are_not_constants() -> None:
    names = {d.name for d in symbols_of("python_sample.py").definitions}
    assert "log" not in names


def test_unknown_language_gives_none() -> None:
    assert extract_symbols("notes.txt", b"def f(): pass") is None


@pytest.mark.parametrize(
    "source",
    [
        b"\xff\xfe\x00def \x80broken(:\n",
        b"def " + b"x" * 5000 + b"():\n    pass\n",
        b"class A:\n    def m(self):\n" + b"        pass\n" * 3,
        b"",
    ],
)
def test_hostile_source_never_raises(source: bytes) -> None:
    result = extract_symbols("evil.py", source)
    assert result is not None
    assert all(len(d.name) <= 200 and len(d.signature) <= 120 for d in result.definitions)


def test_long_signature_is_cut() -> None:
    source = b"def f(" + b", ".join(b"a%d" % i for i in range(100)) + b"):\n    pass\n"
    (definition,) = extract_symbols("long.py", source).definitions  # type: ignore[union-attr]
    assert len(definition.signature) == 120
    assert definition.signature.endswith("…")
