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

from bot.hostnames import REGISTRIES, check_host
from bot.policy.glob import check_glob

DEFAULT_DENY: tuple[str, ...] = (
    ".github/**",
    ".forgebot.yml",
    ".forgebot/**",
    "policies/**",
    ".git/**",
)

# Code a model has no business adding, whatever an issue asks: each is judged on every added
# line of the change by ``checks.forbidden_patterns`` and names itself in the violation as
# ``checks.forbidden_patterns:<name>``. Single-line idioms only: they catch an obedient model
# planting the obvious, not a determined author, which is what review is for.
DEFAULT_FORBIDDEN_PATTERNS: tuple[tuple[str, str, str], ...] = (
    (
        "curl_pipe_shell",
        r"\b(?:curl|wget|fetch)\b[^|\n]*\|\s*(?:sudo\s+)?(?:env\s+)?"
        r"(?:ba|z|da|k|c|tc)?sh\b|\b(?:curl|wget)\b[^|\n]*\|\s*(?:sudo\s+)?"
        r"(?:python[0-9.]*|perl|ruby|node|php)\b",
        "pipes a download into a shell or interpreter",
    ),
    (
        "eval_decoded",
        r"\b(?:eval|exec|compile|Function|execSync)\s*\(.*"
        r"(?:b64decode|b32decode|a2b_base64|decodebytes|decompress|fromhex|unhexlify|atob|"
        r"Buffer\.from|codecs\.decode|rot13|marshal\.loads|pickle\.loads|zlib|base64)",
        "evaluates decoded or decompressed data",
    ),
    (
        "reverse_shell",
        r"/dev/(?:tcp|udp)/|\b(?:nc|ncat|netcat)\b[^\n]*\s-[a-z]*[ec]\b|\bpty\.spawn\s*\("
        r"|\bdup2\s*\([^)]*fileno|\bmkfifo\b[^\n]*\b(?:nc|ncat|sh)\b"
        r"|\bsocat\b[^\n]*\bexec:|\bbash\s+-i\b",
        "opens a reverse shell",
    ),
    (
        "shell_from_request",
        r"(?=.*\b(?:os\.system|os\.popen|subprocess\.\w+|commands\.getoutput|eval|exec"
        r"|child_process|execSync|spawnSync|shell_exec|popen)\s*\()"
        r"(?=.*\b(?:request\.(?:args|form|values|json|data|get_json|get_data|query_params|body"
        r"|GET|POST|cookies|headers)|req\.(?:query|body|params|headers)|\$_(?:GET|POST|REQUEST)))",
        "runs a command built from request input",
    ),
    (
        "env_dump",
        r"(?:\bprint|\bpprint|console\.log|json\.dumps|JSON\.stringify|\.write|\.info|\.debug"
        r"|\.warning|\.error)\s*\((?:[^()]*\()?\s*(?:os\.environ|process\.env)\s*\)"
        r"|/proc/(?:self|\d+|\$\$)/environ|^\s*(?:printenv|env|set)\s*(?:$|[>|])",
        "dumps the whole environment",
    ),
    (
        "exfiltrate_env",
        # The whole environment, or a variable named like a credential; reading one
        # setting such as a service URL is ordinary.
        r"(?=.*(?:\b(?:os\.environ|process\.env)\b(?!\s*(?:\[|\.get\b|\.setdefault\b|\.\w+\s*=))"
        r"|\bprintenv\b|(?:getenv|environ|process\.env)\W{1,8}\w*"
        r"(?:TOKEN|KEY|SECRET|PASS|CRED)))"
        r"(?=.*\b(?:requests|httpx|urlopen|urllib|http\.client|aiohttp|fetch|axios|curl|wget"
        r"|sendall|socket)\b)",
        "sends environment variables over the network",
    ),
    (
        "exfiltrate_file",
        r"(?=.*\b(?:requests|httpx|urlopen|urllib|http\.client|aiohttp|fetch|axios|curl|wget"
        r"|sendall|socket)\b)(?=.*(?:\bopen\s*\(|read_text\s*\(|read_bytes\s*\(|readFileSync"
        r"|--data-binary\s+@|-d\s+@|-F\s+\S+=@|-T\s))",
        "sends a file's content over the network",
    ),
    (
        "credential_files",
        r"/etc/(?:passwd|shadow|sudoers)\b|~?/\.ssh/|\.git-credentials|\.aws/credentials"
        r"|\.netrc\b|\.docker/config\.json|\.kube/config|/var/run/secrets"
        r"|/run/secrets/kubernetes",
        "reads a credential or system account file",
    ),
    (
        "forge_token",
        r"\b(?:GITHUB_TOKEN|GH_TOKEN|GITLAB_TOKEN|CI_JOB_TOKEN|GITEA_TOKEN|FORGEJO_TOKEN"
        r"|ACTIONS_RUNTIME_TOKEN|ACTIONS_ID_TOKEN_REQUEST_TOKEN|FORGEBOT_\w+|GIT_ASKPASS)\b",
        "reads a forge or bot credential",
    ),
    (
        "tls_verify_disabled",
        r"\bverify\s*=\s*False\b|_create_unverified_context|\bCERT_NONE\b"
        r"|check_hostname\s*=\s*False|rejectUnauthorized\s*:\s*false"
        r"|NODE_TLS_REJECT_UNAUTHORIZED|InsecureSkipVerify\s*:\s*true"
        r"|\bcurl\b[^\n]*\s(?:-k|--insecure)\b|--no-check-certificate|GIT_SSL_NO_VERIFY"
        r"|sslVerify\s*=?\s*false|PYTHONHTTPSVERIFY\s*=\s*[\"']?0",
        "disables TLS certificate verification",
    ),
    (
        "git_internals",
        r"\.git/(?:hooks|config)\b|core\.hooksPath|\bgit\s+config\b[^\n]*\b(?:credential"
        r"|core\.\w+|url\.)",
        "reaches into git's hooks or configuration",
    ),
    (
        "test_collection_disabled",
        r"\bcollect_ignore(?:_glob)?\b|--ignore(?:-glob)?[= ]\S*test|--deselect\b"
        r"|\bpytest\.exit\s*\(|\bskipif\s*\(\s*True\b|\bskipIf\s*\(\s*True\b"
        r"|--collect-only\b|\baddopts\b[^\n]*\s-k\s"
        r"|\b(?:pytest|tox|nox|go\s+test|cargo\s+test|npm\s+(?:run\s+)?test|make\s+test|jest)"
        r"\b[^\n]*(?:\|\|\s*(?:true|:|exit\s+0)\b|;\s*exit\s+0\b)",
        "stops tests from being collected or failing",
    ),
    (
        "agent_instructions",
        r"(?i)\b(?:note|notice|instructions?|message|attention|reminder|directive|rules?)"
        r"\s+(?:to|for)\s+(?:(?:all|any|the|future)\s+)*(?:(?:ai|llm|gpt|automated|autonomous"
        r"|language[- ]model)\s+(?:coding\s+|code\s+)?(?:agents?|assistants?|llms?|copilots?"
        r"|models?)|(?:coding\s+|code\s+)?(?:agents?|assistants?|llms?|copilots?))\b"
        r"|\bif\s+you\s+are\s+an?\s+(?:ai|llm|language\s+model|(?:ai\s+)?(?:coding\s+)?"
        r"(?:assistant|agent))\b"
        r"|\b(?:ai|llm)\s+(?:coding\s+)?(?:agents?|assistants?)\b[^\n]{0,80}?\b(?:must|shall"
        r"|are\s+required|always|never|do\s+not|don't)\b",
        "plants instructions addressed to AI agents",
    ),
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


def check_regex(pattern: str) -> str:
    """Return ``pattern`` if it compiles as a Python regular expression; raise ``ValueError``."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from exc
    return pattern


Glob = Annotated[StrictStr, AfterValidator(check_glob)]
Regex = Annotated[StrictStr, Field(min_length=1, max_length=2000), AfterValidator(check_regex)]
PatternName = Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
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
    concurrent_jobs_per_repo: int = Field(
        default=2, ge=1, le=1000,
        description="Jobs of one repository that may run at once; more wait in the queue.")
    open_pulls_per_repo: int = Field(
        default=10, ge=1, le=10_000,
        description="Open bot pull requests a repository may have; a new job waits until one "
        "is merged or closed.")
    pulls_per_user_per_day: int = Field(
        default=10, ge=1, le=10_000,
        description="Pull requests the bot opens for one requesting user in 24 hours.")
    jobs_per_hour: int = Field(
        default=30, ge=1, le=100_000,
        description="Attempts started for one repository in an hour.")


class ForbiddenPattern(_Strict):
    """A regular expression that no added line may match."""

    name: PatternName = Field(
        description="Stable name; the rule is checks.forbidden_patterns:<name>."
    )
    pattern: Regex = Field(description="A Python regular expression, searched in each added line.")
    description: StrictStr = Field(
        default="", max_length=200, description="Why it is forbidden, shown in the violation."
    )


def default_forbidden_patterns() -> tuple[ForbiddenPattern, ...]:
    """The built-in forbidden patterns, as :data:`DEFAULT_FORBIDDEN_PATTERNS` lists them."""
    return tuple(
        ForbiddenPattern(name=name, pattern=pattern, description=description)
        for name, pattern, description in DEFAULT_FORBIDDEN_PATTERNS
    )


class Checks(_Strict):
    """Gates a change must pass before it is published as ready."""

    tests_must_pass: bool = True
    require_failing_test: bool = Field(
        default=True,
        description="The change must add or change a test that fails on the base commit and "
        "passes with the change; otherwise the pull request is a draft (outcome unproven).",
    )
    secret_scan: bool = True
    forbid_test_deletion: bool = True
    forbid_test_weakening: bool = Field(
        default=True,
        description="When a change touches existing tests or a test runner's configuration, "
        "the suite also runs on the base commit: a test that ran there and is skipped with "
        "the change, or fewer tests run, is the violation checks.tests_weakened.",
    )
    forbid_network_in_tests: bool = Field(
        default=True,
        description="The verify run of the tests sits behind a network sink that answers "
        "every DNS lookup and records it, and catches connections to ports 80, 443, 21, 22 "
        "and 25: a destination the base commit's tests never tried is the violation "
        "checks.network, named. Docker backend only.",
    )
    forbid_invisible_characters: bool = Field(
        default=True,
        description="An added line may not hold bidirectional controls, zero-width or Unicode "
        "tag characters (the Trojan Source class), in any file.",
    )
    analysis: bool = Field(
        default=True,
        description="A maintained analyzer (semgrep's engine, rules under policies/semgrep/) "
        "reads the changed files and judges what the added lines do: the environment sent "
        "to output or the network, downloaded code run, a literal credential checked, network "
        "in tests, credential files read, tests silenced. A finding is the violation "
        "checks.analysis:<rule>.",
    )
    forbidden_patterns: tuple[ForbiddenPattern, ...] = Field(
        default_factory=default_forbidden_patterns,
        strict=False,
        description="Patterns no added line may match. A repository may add patterns, never "
        "remove or replace one.",
    )
    new_dependencies: Literal["allow", "draft", "block"] = Field(
        default="draft",
        description="What a change that adds, removes or changes dependencies (in a manifest "
        "or lockfile) gets: allow (published as usual, listed in the body), draft (a draft "
        "pull request that names them), block (not published). A repository may only make "
        "it stricter.",
    )


class Publish(_Strict):
    """How a finished change is published."""

    draft_when_failed: bool = True
    branch_prefix: BranchPrefix = "forgebot/"


class Lifecycle(_Strict):
    """What the bot does when its pull request or its issue changes on the forge."""

    close_issue_on_merge: bool = Field(
        default=True,
        description="When the bot's pull request is merged, close its issue with a comment "
        "that links the pull request.",
    )


class Review(_Strict):
    """How reviews of the bot's pull requests are taken."""

    revise_on_changes_requested: bool = Field(
        default=True,
        description="A review requesting changes, or a review comment, on the bot's pull "
        "request by someone with trigger.min_permission starts a revision (/revise) with the "
        "review's text as feedback. An approval never does.",
    )


class LargeChange(_Strict):
    """What makes a change large enough to need plan approval under ``plan_approval: large``."""

    files: int = Field(default=5, ge=1, le=10_000,
                       description="A plan that touches more files than this is large.")
    lines: int = Field(default=200, ge=1, le=1_000_000,
                       description="A plan estimated to change more lines than this is large.")
    sensitive: tuple[Glob, ...] = Field(
        default=(), strict=False,
        description="Paths whose change always needs approval (for example src/auth/**).")


class CI(_Strict):
    """What the bot does with the forge's own checks on its pull request."""

    repair: Literal["off", "comment", "fix"] = Field(
        default="comment",
        description="A failing required check: off (nothing), comment (a diagnosis), or fix "
        "(a repair attempt on the same branch with the failure as feedback).")
    max_repairs: int = Field(default=2, ge=0, le=20,
                             description="Repair attempts per job; a check that fails the same "
                             "way twice stops the loop sooner.")
    ready_when_green: bool = Field(
        default=False,
        description="Open the pull request as a draft and mark it ready only when the "
        "forge's checks pass.")


class Queue(_Strict):
    """Priorities from labels, ordered by the scheduler (urgent first, background last)."""

    urgent_label: Label = "forgebot:urgent"
    background_label: Label = "forgebot:background"


class Specs(_Strict):
    """Specs on the default branch as triggers (docs/specs.md)."""

    enabled: bool = Field(default=True, description="A push that changes a spec starts a job.")
    globs: tuple[Glob, ...] = Field(default=("specs/**/*.md",), strict=False,
                                    description="Which files are specs.")


class DashboardIssue(_Strict):
    """One issue per repository that lists the bot's jobs, with a checkbox to retry a failed
    one."""

    enabled: bool = False
    title: StrictStr = Field(default="forgebot dashboard", max_length=200)


def _egress_host(value: str) -> str:
    return value if value == REGISTRIES else check_host(value)


EgressHost = Annotated[StrictStr, Field(max_length=253), AfterValidator(_egress_host)]


class Sandbox(_Strict):
    """What the sandbox may do beyond its fixed hardening."""

    setup_network: bool = Field(
        default=True,
        description="Whether the setup phase (installing dependencies) may reach the hosts "
        "of setup_egress, through the egress proxy; it never has any other network. The "
        "agent and test phases never have network.",
    )
    setup_egress: tuple[EgressHost, ...] = Field(
        default=(REGISTRIES,), strict=False,
        description="The hosts the setup phase may reach through the egress proxy: host "
        "names (pypi.org), domains with their subdomains (.example.com), and 'registries' "
        "for the public package registries of the detected toolchain. A repository may only "
        "narrow it.",
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
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    review: Review = Field(default_factory=Review)
    plan_approval: Literal["never", "large", "always"] = Field(
        default="never",
        description="When the bot posts its plan and waits for /approve before it edits: "
        "never, for large changes (see large_change), or always.")
    large_change: LargeChange = Field(default_factory=LargeChange)
    ci: CI = Field(default_factory=CI)
    queue: Queue = Field(default_factory=Queue)
    specs: Specs = Field(default_factory=Specs)
    dashboard_issue: DashboardIssue = Field(default_factory=DashboardIssue)


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
