"""GitHub's JSON answers as the Forge protocol's values. A field of the wrong type is a
``ForgeError`` that names it, never a ``KeyError`` or a wrong value passed on."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bot.errors import ForgeError
from bot.forges.base import CheckResult, Issue, PullRequest
from bot.forges.checks import GITHUB_CONCLUSIONS, joined, state_of, tail, text_of


def text(data: Mapping[str, Any], key: str, *, optional: bool = False) -> str:
    value = data.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise ForgeError(f"GitHub answered without a text field {key!r}")
    return value


def number(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ForgeError(f"GitHub answered without a number field {key!r}")
    return value


def issue(data: Mapping[str, Any]) -> Issue:
    return Issue(
        number=number(data, "number"),
        title=text(data, "title"),
        body=text(data, "body", optional=True),
        labels=tuple(text(label, "name") for label in data.get("labels") or []),
        author=text(data.get("user") or {}, "login"),
    )


def time_of(data: Mapping[str, Any], key: str) -> datetime:
    """An ISO 8601 field (``2024-01-02T03:04:05Z``) as an aware UTC time."""
    try:
        return datetime.fromisoformat(text(data, key).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as exc:
        raise ForgeError(f"GitHub answered a bad time in {key!r}") from exc


def pull(data: Mapping[str, Any]) -> PullRequest:
    return PullRequest(
        number=number(data, "number"),
        head=text(data.get("head") or {}, "ref"),
        base=text(data.get("base") or {}, "ref"),
        title=text(data, "title"),
        body=text(data, "body", optional=True),
        draft=data.get("draft") is True,
        url=text(data, "html_url"),
    )


def check_run(item: Mapping[str, Any]) -> CheckResult:
    """A check run of ``GET .../check-runs``: pending until its status is ``completed``."""
    found = item.get("output")
    output: Mapping[str, Any] = found if isinstance(found, dict) else {}
    done = item.get("status") == "completed"
    return CheckResult(
        name=text_of(item.get("name")),
        state=state_of(GITHUB_CONCLUSIONS, item.get("conclusion")) if done else "pending",
        summary=joined(text_of(output.get("title")), text_of(output.get("summary"))),
        log=tail(text_of(output.get("text"))),
        url=text_of(item.get("html_url")) or text_of(item.get("details_url")),
    )


def pull_of(found: Any) -> PullRequest:
    """From a github3 pull request's attributes, which ``update()`` refreshes (its
    ``as_dict()`` keeps the first answer)."""
    return pull({
        "number": found.number,
        "head": {"ref": found.head.ref},
        "base": {"ref": found.base.ref},
        "title": found.title,
        "body": found.body,
        "draft": getattr(found, "draft", False),  # a ShortPullRequest finds it in its JSON
        "html_url": found.html_url,
    })
