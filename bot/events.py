"""The normalised events that every forge's webhooks are translated into.

A forge adapter's ``parse`` turns a stored delivery into one of these, or ``None`` when the
delivery starts nothing. The planner only ever sees these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Repo:
    """A repository on one forge: ``forge`` is the registry name, ``full_name`` is owner/name."""

    forge: str
    full_name: str
    default_branch: str = "main"


@dataclass(frozen=True)
class IssueLabeled:
    """A label was added to an issue."""

    repo: Repo
    number: int
    title: str
    body: str
    label: str
    sender: str
    labels: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class CommentCreated:
    """A comment was made on an issue or a pull request."""

    repo: Repo
    number: int
    body: str
    author: str
    is_pull: bool = False


Event = IssueLabeled | CommentCreated
