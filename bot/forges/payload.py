"""Typed reading of a webhook body by dotted path, shared by the forge adapters.

A body is untrusted input: every read names the field it wanted, and a field that is missing
or of the wrong type becomes a ``ForgeError`` that says which one — never a KeyError, and
never a guess.
"""

from __future__ import annotations

import json
from typing import Any

from bot.errors import ForgeError


def load_object(body: bytes, source: str) -> dict[str, Any]:
    """The body as a JSON object. ``source`` (e.g. ``github webhook 'issues'``) names it in
    errors. Deep nesting (RecursionError) is malformed input like any other."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ForgeError(f"{source}: the body is not JSON") from exc
    if not isinstance(payload, dict):
        raise ForgeError(f"{source}: the body is not a JSON object")
    return payload


class Fields:
    """One webhook body. ``where`` names the delivery in errors, e.g. ``github webhook
    'issues/labeled'``."""

    def __init__(self, payload: dict[str, Any], where: str) -> None:
        self._payload = payload
        self.where = where

    def find(self, path: str) -> object | None:
        """The value at ``path``, or None when any step is absent or null."""
        node: object = self._payload
        for key in path.split("."):
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return node

    def get(self, path: str) -> object:
        """The value at ``path``; ForgeError when it is absent or null."""
        value = self.find(path)
        if value is None:
            raise self.error(path)
        return value

    def text(self, path: str, *, optional: bool = False) -> str:
        """The string at ``path``; with ``optional``, ``""`` when absent or null (forges send
        null for an empty body or description)."""
        value = self.find(path)
        if value is None and optional:
            return ""
        if not isinstance(value, str):
            raise self.error(path)
        return value

    def integer(self, path: str) -> int:
        """The integer at ``path`` (a boolean is not an integer here)."""
        value = self.find(path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path)
        return value

    def optional_integer(self, path: str) -> int | None:
        return None if self.find(path) is None else self.integer(path)

    def items(self, path: str) -> list[dict[str, Any]]:
        """The list of objects at ``path``; ``[]`` when absent or null."""
        value = self.find(path)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.error(path)
        return value

    def strings(self, item: dict[str, Any], key: str, path: str) -> tuple[str, ...]:
        """The list of strings under ``key`` of ``item`` (found at ``path``)."""
        value = item.get(key) or []
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise self.error(f"{path}.{key}")
        return tuple(value)

    def names(self, path: str, key: str = "name", *, required: bool = False) -> tuple[str, ...]:
        """The ``key`` of each object at ``path`` (label names; GitLab calls them titles).
        With ``required``, an absent list is an error rather than no names."""
        if required:
            self.get(path)
        found = []
        for index, item in enumerate(self.items(path)):
            value = item.get(key)
            if not isinstance(value, str):
                raise self.error(f"{path}[{index}].{key}")
            found.append(value)
        return tuple(found)

    def error(self, path: str) -> ForgeError:
        return ForgeError(f"{self.where}: missing or invalid field {path}")


def where(forge: str, kind: str, action: object) -> str:
    """``<forge> webhook '<kind>/<action>'`` (or without the action when there is none)."""
    action = action if isinstance(action, str) else ""
    return f"{forge} webhook '{kind}/{action}'" if action else f"{forge} webhook '{kind}'"
