"""The policy file as typed, frozen values.

Every model forbids unknown keys (a typo is an error, never a silently ignored rule) and is
strict about types: YAML's ``"20"`` is not a number and ``"yes"`` is not a boolean, because a
policy that guesses is a policy that loosens. The defaults here are the shipped
``policies/default.yml``; ``policies/schema.json`` is generated from :class:`Policy`.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr

from bot.policy.glob import check_glob

DEFAULT_DENY: tuple[str, ...] = (
    ".github/**",
    ".forgebot.yml",
    ".forgebot/**",
    "policies/**",
    ".git/**",
)

# The branch prefix becomes part of a git ref: one or more "name/" parts of safe characters.
_BRANCH_PREFIX = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9._-]*/)+")


def check_branch_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a safe start of a git branch name; raise ``ValueError``."""
    if not _BRANCH_PREFIX.fullmatch(prefix) or ".." in prefix or ".lock/" in prefix:
        raise ValueError(
            f"branch prefix {prefix!r} must be one or more 'name/' parts of letters, digits, "
            "'.', '_' or '-', without '..'"
        )
    return prefix


Glob = Annotated[StrictStr, AfterValidator(check_glob)]
Label = Annotated[StrictStr, Field(min_length=1, max_length=100)]
BranchPrefix = Annotated[
    StrictStr,
    # The pattern is for editors reading the schema; check_branch_prefix enforces it.
    Field(max_length=100, json_schema_extra={"pattern": f"^{_BRANCH_PREFIX.pattern}$"}),
    AfterValidator(check_branch_prefix),
]

# Lists arrive from YAML and strict mode refuses a list for a tuple, so the tuple fields below
# say strict=False for the container only; each item stays a strict string.


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Trigger(_Strict):
    """What may start work."""

    labels: tuple[Label, ...] = Field(
        default=("forgebot",),
        strict=False,
        description="Issue labels that start a job; empty: labels never trigger.",
    )
    min_permission: Literal["read", "triage", "write", "maintain", "admin"] = Field(
        default="write",
        description="The least permission on the repository that a person needs for a "
        "trigger label or a command to start work; others get at most one polite reply.",
    )


class Paths(_Strict):
    """Which paths a change may touch. Globs follow ``bot.policy.glob``."""

    deny: tuple[Glob, ...] = Field(
        default=DEFAULT_DENY, strict=False, description="Globs no change may touch."
    )
    allow: tuple[Glob, ...] = Field(
        default=(),
        strict=False,
        description="When non-empty, only paths matching one of these may change.",
    )


class Limits(_Strict):
    """Size and time bounds of one job."""

    max_files_changed: int = Field(default=20, ge=1, le=10_000)
    max_lines_changed: int = Field(default=500, ge=1, le=1_000_000)
    max_iterations: int = Field(default=3, ge=1, le=50)
    job_timeout_s: int = Field(default=1800, ge=1, le=86_400)
    test_timeout_s: int = Field(default=300, ge=1, le=86_400)
    setup_timeout_s: int = Field(default=600, ge=1, le=86_400)


class Checks(_Strict):
    """Gates a change must pass before it is published as ready."""

    tests_must_pass: bool = True
    secret_scan: bool = True
    forbid_test_deletion: bool = True


class Publish(_Strict):
    """How a finished change is published."""

    draft_when_failed: bool = True
    branch_prefix: BranchPrefix = "forgebot/"


class Sandbox(_Strict):
    """What the sandbox may do beyond its fixed hardening."""

    setup_network: bool = Field(
        default=False,
        description="Whether the setup phase (installing dependencies) may use the network. "
        "The agent and test phase never has network.",
    )


class Policy(_Strict):
    """A whole policy file: the bot-wide bounds, or those bounds tightened for one repository."""

    version: Literal[1] = 1
    trigger: Trigger = Field(default_factory=Trigger)
    paths: Paths = Field(default_factory=Paths)
    limits: Limits = Field(default_factory=Limits)
    checks: Checks = Field(default_factory=Checks)
    publish: Publish = Field(default_factory=Publish)
    sandbox: Sandbox = Field(default_factory=Sandbox)


def schema_json() -> str:
    """The JSON schema of a policy file, as committed in ``policies/schema.json``.

    Regenerate with ``python -m bot.policy.model > policies/schema.json``; a unit test fails
    when the committed file and the model drift apart.
    """
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "forgebot policy"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(schema_json(), end="")
