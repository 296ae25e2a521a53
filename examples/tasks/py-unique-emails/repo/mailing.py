"""Helpers for the newsletter's mailing list."""

from collections.abc import Iterable


def unique_emails(addresses: Iterable[str]) -> list[str]:
    """The addresses without duplicates, first spelling kept, in their original order.

    Surrounding whitespace is ignored and blank entries are dropped.
    """
    seen: set[str] = set()
    result: list[str] = []
    for address in addresses:
        cleaned = address.strip()
        if not cleaned:
            continue
        key = cleaned
        if key in seen:
            continue
        seen.add(key)
        result.append(cleaned)
    return result
