"""The network sink's records as hostile input (bot/sandbox/netsink.py): what is kept, what is
cut, and how destinations are named."""

from __future__ import annotations

import base64
import json

from bot.sandbox.netsink import MAX_RECORDS, Attempt, destinations, parse_records


def _lines(*items: object) -> str:
    return "\n".join(json.dumps(item) for item in items)


def test_lookups_and_connections_are_read_in_order() -> None:
    text = _lines({"kind": "ready"},
                  {"kind": "dns", "name": "Collector.Example.COM", "type": "A"},
                  {"kind": "tcp", "port": 443, "bytes": 517, "host": ""},
                  {"kind": "tcp", "port": 80, "bytes": 90, "host": "collector.example.com"})

    assert parse_records(text) == [
        Attempt("dns", "collector.example.com"),
        Attempt("tcp", "", 443, 517),
        Attempt("tcp", "collector.example.com", 80, 90),
    ]


def test_destinations_are_named_once() -> None:
    attempts = parse_records(_lines(
        {"kind": "dns", "name": "a.example"}, {"kind": "dns", "name": "a.example"},
        {"kind": "tcp", "port": 443, "bytes": 5, "host": ""},
        {"kind": "tcp", "port": 80, "bytes": 5, "host": "a.example"}))

    assert destinations(attempts) == ["a.example", "port 443"]
    assert str(attempts[0]) == "a DNS lookup of a.example"
    assert str(attempts[-1]) == "a connection to a.example:80 (5 bytes sent)"


def test_what_the_code_under_test_wrote_cannot_inject_anything() -> None:
    text = "\n".join([
        "not json at all",
        json.dumps(["a", "list"]),
        json.dumps({"kind": "dns", "name": "evil.example\n[click](https://x) @admin `code`"}),
        json.dumps({"kind": "tcp", "port": "443", "bytes": 1}),
        json.dumps({"kind": "tcp", "port": 99999, "bytes": -5, "host": "h" * 1000}),
        json.dumps({"kind": "other", "name": "x"}),
        json.dumps({"kind": "dns", "name": 42}),
    ])

    attempts = parse_records(text)

    assert attempts == [Attempt("dns", "evil.exampleclickhttps:xadmincode"),
                        Attempt("tcp", "h" * 253, 65535, 0)]


def test_records_are_bounded() -> None:
    text = _lines(*({"kind": "dns", "name": f"n{i}.example"} for i in range(MAX_RECORDS * 3)))

    assert len(parse_records(text)) == MAX_RECORDS


def test_the_first_bytes_are_kept_for_the_canary_search_only() -> None:
    head = base64.b64encode(b"POST /c HTTP/1.1\r\n\r\ntoken=abc").decode()
    [kept, refused, oversized] = parse_records(_lines(
        {"kind": "tcp", "port": 80, "bytes": 29, "host": "", "head": head},
        {"kind": "tcp", "port": 80, "bytes": 3, "host": "", "head": "not base64!"},
        {"kind": "tcp", "port": 80, "bytes": 3, "host": "", "head": "QUFB" * 5000}))

    assert kept.head.endswith(b"token=abc") and refused.head == b"" and oversized.head == b""
    assert kept == Attempt("tcp", "", 80, 29)  # the bytes are not part of what is compared
    assert "token" not in str(kept) and "token" not in repr(kept)
