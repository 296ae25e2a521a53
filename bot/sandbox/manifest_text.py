"""Reading manifest files that may be anything: each reader returns an empty value for text
that does not parse, never an exception (pure)."""

from __future__ import annotations

import ast
import configparser
import tomllib
from collections.abc import Mapping
from typing import Any


def read_toml(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}


def read_ini(text: str | None) -> configparser.ConfigParser | None:
    if text is None:
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    return parser


def read_python(text: str | None) -> ast.Module | None:
    if text is None:
        return None
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def table(data: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    current: object = data
    for key in keys:
        current = current.get(key) if isinstance(current, dict) else None
    return current if isinstance(current, dict) else {}


def as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []


def strings(value: object) -> list[str]:
    return [item for item in as_list(value) if isinstance(item, str)]
