"""Typed reading of Gitea JSON (webhook payloads and API answers) by dotted path.

Gitea's JSON is untrusted input: every read names the field it wanted, and a field that is
missing or of the wrong type becomes a ``ForgeError`` that says which one, not a KeyError.
"""

from __future__ import annotations

from bot.errors import ForgeError


class Fields:
    """One JSON object; ``context`` names it in errors (``gitea webhook 'push'``)."""

    def __init__(self, data: object, context: str) -> None:
        if not isinstance(data, dict):
            raise ForgeError(f"{context}: expected a JSON object")
        self.data: dict[str, object] = data
        self.context = context

    def find(self, path: str) -> object | None:
        """The value at ``path``, or None when any step is absent or null."""
        node: object = self.data
        for key in path.split("."):
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return node

    def text(self, path: str, default: str | None = None) -> str:
        """The string at ``path``; ``default`` when absent or null (ForgeError if no default)."""
        value = self.find(path)
        if value is None and default is not None:
            return default
        if not isinstance(value, str):
            raise self.error(path)
        return value

    def integer(self, path: str) -> int:
        """The integer at ``path`` (booleans are not integers here)."""
        value = self.find(path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path)
        return value

    def flag(self, path: str) -> bool | None:
        """The boolean at ``path``, or None when absent; ForgeError for another type."""
        value = self.find(path)
        if value is None or isinstance(value, bool):
            return value
        raise self.error(path)

    def login(self, path: str) -> str:
        """A user's name: Gitea sends ``login`` everywhere and ``username`` in newer versions."""
        for key in ("login", "username"):
            value = self.find(f"{path}.{key}")
            if isinstance(value, str) and value:
                return value
        raise self.error(f"{path}.login")

    def strings(self, path: str) -> tuple[str, ...]:
        """A list of strings; an absent list is empty."""
        value = self.find(path)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(path)
        return tuple(str(v) for v in value)

    def objects(self, path: str) -> list[Fields]:
        """A list of objects (``path`` ``""`` means this value is itself the list)."""
        value = self.data if path == "" else self.find(path)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(path)
        return [Fields(item, f"{self.context} {path}[{i}]") for i, item in enumerate(value)]

    def names(self, path: str) -> tuple[str, ...]:
        """The ``name`` of every object in the list at ``path`` (labels)."""
        return tuple(item.text("name") for item in self.objects(path))

    def error(self, path: str) -> ForgeError:
        """The error for a missing or mistyped field."""
        return ForgeError(f"{self.context}: missing or invalid field {path}")


def as_list(data: object, context: str) -> list[Fields]:
    """A JSON array of objects (an API list answer)."""
    if not isinstance(data, list):
        raise ForgeError(f"{context}: expected a JSON array")
    return [Fields(item, f"{context}[{i}]") for i, item in enumerate(data)]
