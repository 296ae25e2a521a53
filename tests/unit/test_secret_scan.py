"""The secret gate on plain diff strings.

Every secret below is fake and assembled at run time from parts, so that this file holds no
literal a scanner in CI would flag.
"""

from __future__ import annotations

import base64
import json
import random
import string

import pytest

from bot.policy.changeset import DiffError
from bot.secret_scan import Finding, describe, scan_diff, strip_pragmas

_RNG = random.Random(20261121)  # fixed seed: the same fake values on every run


def rand(alphabet: str, length: int) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(length))


ALNUM = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase + string.digits
LOWER = string.ascii_lowercase + string.digits
B64 = ALNUM + "+/"


def b64url(data: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


FAKE = {
    "aws": "AK" + "IA" + rand(UPPER, 16),
    "github": "gh" + "p_" + rand(ALNUM, 36),
    "github_fine": "github" + "_pat_" + rand(ALNUM + "_", 60),
    "gitlab": "gl" + "pat-" + rand(ALNUM, 20),
    "slack": "xo"
    + "xb-"
    + rand(string.digits, 12)
    + "-"
    + rand(string.digits, 13)
    + "-"
    + rand(LOWER, 24),
    "stripe": "sk" + "_live_" + rand(ALNUM, 24),
    "google": "AI" + "za" + rand(ALNUM + "_-", 35),
    "jwt": b64url({"alg": "HS256", "typ": "JWT"})
    + "."
    + b64url({"sub": "fake-user"})
    + "."
    + rand(ALNUM, 43),
    "base64": rand(B64, 48),
    "hex": rand("0123456789abcdef", 40),
    "weak_pw": "Fake" + "Pw-" + rand(ALNUM, 10),
}
PEM_HEADER = "-----BEGIN RSA " + "PRIVATE KEY-----"
PEM_FOOTER = "-----END RSA " + "PRIVATE KEY-----"
PEM_BODY = [rand(B64, 64) for _ in range(3)]


def added(path: str, lines: list[str]) -> str:
    body = "".join(f"+{line}\n" for line in lines)
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
        f"@@ -0,0 +1,{len(lines)} @@\n{body}"
    )


def kinds(diff: str) -> set[str]:
    return {finding.kind for finding in scan_diff(diff)}


# One line per kind; (path, line, expected kind).
KINDS = [
    ("src/cfg.py", f'AWS_KEY_ID = "{FAKE["aws"]}"', "AWS Access Key"),
    ("src/cfg.py", f'token = "{FAKE["github"]}"', "GitHub Token"),
    ("src/cfg.py", f'token = "{FAKE["github_fine"]}"', "GitHub Token"),
    (".env", f"GITLAB={FAKE['gitlab']}", "GitLab Token"),
    ("src/chat.js", f"const hook = '{FAKE['slack']}';", "Slack Token"),
    ("src/pay.rb", f"Stripe.api_key = '{FAKE['stripe']}'", "Stripe Access Key"),
    ("src/maps.ts", f"const k = `{FAKE['google']}`;", "Google API Key"),
    ("tests/test_auth.py", f"HEADER = 'Bearer {FAKE['jwt']}'", "JSON Web Token"),
    ("src/cfg.py", f'BLOB = "{FAKE["base64"]}"', "Base64 High Entropy String"),
    ("deploy/values.yaml", f"session_seed: {FAKE['base64']}", "Base64 High Entropy String"),
    ("src/cfg.py", f'SIGNING = "{FAKE["hex"]}"', "Hex High Entropy String"),
    (
        "src/db.py",
        "DSN = 'postgres://" + "app:" + FAKE["weak_pw"] + "@db:5432/x'",
        "Basic Auth Credentials",
    ),
    ("src/cfg.py", f'password = "{FAKE["weak_pw"]}"', "Secret Keyword"),
    ("keys/id_rsa", PEM_HEADER, "Private Key"),
    ("keys/id", "-----BEGIN ENCRYPTED " + "PRIVATE KEY-----", "Private Key"),
]


@pytest.mark.parametrize(("path", "line", "kind"), KINDS, ids=[k[2] + ":" + k[0] for k in KINDS])
def test_kinds_found(path: str, line: str, kind: str) -> None:
    findings = scan_diff(added(path, ["# a comment", line]))
    assert Finding(path, 2, kind) in findings


def test_number_of_kinds_covered() -> None:
    assert len({kind for _, _, kind in KINDS}) == 12


PRAGMAS = [
    "  # pragma: allowlist secret",
    "  # pragma: whitelist secret",
    "  // pragma: allowlist-secret",
    "  # nosec",
    "  # nosec B105",
    "  # detect-secrets: ignore",
    "  # gitleaks:allow",
    "  # trufflehog:ignore",
    "  # nosemgrep: generic.secrets",
]


@pytest.mark.parametrize("pragma", PRAGMAS)
def test_added_pragma_does_not_suppress(pragma: str) -> None:
    line = f'token = "{FAKE["github"]}"{pragma}'
    assert "GitHub Token" in kinds(added("src/a.py", [line]))


def test_nextline_pragma_does_not_suppress() -> None:
    lines = ["# pragma: allowlist nextline secret", f'token = "{FAKE["aws"]}"']
    assert Finding("src/a.py", 2, "AWS Access Key") in scan_diff(added("src/a.py", lines))


@pytest.mark.parametrize("pragma", ["# detect-secrets: ignore ", "# nosec ", "# gitleaks:allow "])
def test_a_pragma_cannot_swallow_what_follows_it(pragma: str) -> None:
    line = f"x = 1  {pragma}{FAKE['github']}"
    assert "GitHub Token" in kinds(added("src/a.py", [line]))


def test_strip_pragmas() -> None:
    assert strip_pragmas('x = "v"  # pragma: allowlist secret') == 'x = "v"  # '
    assert strip_pragmas("plain line") == "plain line"


def test_pem_block_over_lines() -> None:
    lines = [PEM_HEADER, *PEM_BODY, PEM_FOOTER]
    assert Finding("keys/id_rsa", 1, "Private Key") in scan_diff(added("keys/id_rsa", lines))


def test_pem_header_split_across_lines() -> None:
    # The header never appears whole on one line; joining the literals finds it.
    lines = [
        "KEY = (",
        '    "-----BEGIN RSA "',
        '    "PRIVATE KEY-----\\n"',
        *(f'    "{part}\\n"' for part in PEM_BODY),
        ")",
    ]
    findings = scan_diff(added("src/keys.py", lines))
    assert Finding("src/keys.py", 2, "Private Key") in findings


def test_token_split_across_literals_on_one_line() -> None:
    token = FAKE["github"]
    line = f'TOKEN = "{token[:9]}" + "{token[9:]}"'
    assert "GitHub Token" in kinds(added("src/a.py", [line]))


def test_token_split_across_lines() -> None:
    token = FAKE["aws"]
    lines = ["ID = (", f"    '{token[:8]}'", f"    '{token[8:]}'", ")"]
    assert Finding("src/a.py", 2, "AWS Access Key") in scan_diff(added("src/a.py", lines))


def test_base64_encoded_secret() -> None:
    encoded = base64.b64encode(f"aws_access_key_id = {FAKE['aws']}\n".encode()).decode()
    findings = scan_diff(added("deploy/secret.yaml", [f"data: {encoded}"]))
    assert Finding("deploy/secret.yaml", 1, "AWS Access Key (base64-encoded)") in findings


def test_twice_base64_encoded_secret() -> None:
    once = base64.b64encode(FAKE["github"].encode())
    twice = base64.b64encode(once).decode()
    assert "GitHub Token (base64-encoded)" in kinds(added("a.txt", [f'x = "{twice}"']))


def test_base64_of_a_pem_block() -> None:
    pem = "\n".join([PEM_HEADER, *PEM_BODY, PEM_FOOTER])
    encoded = base64.b64encode(pem.encode()).decode()
    assert "Private Key (base64-encoded)" in kinds(added("k8s/secret.yml", [f"tls.key: {encoded}"]))


def test_removed_and_context_lines_are_not_flagged() -> None:
    secret_line = f'token = "{FAKE["github"]}"'
    diff = (
        "diff --git a/src/a.py b/src/a.py\nindex 1111111..2222222 100644\n--- a/src/a.py\n"
        f"+++ b/src/a.py\n@@ -1,3 +1,3 @@\n {secret_line}\n-{secret_line}\n+token = get_token()\n"
        " x = 1\n"
    )
    assert scan_diff(diff) == []


def test_deleted_file_is_not_flagged() -> None:
    diff = (
        "diff --git a/key.pem b/key.pem\ndeleted file mode 100644\n--- a/key.pem\n+++ /dev/null\n"
        f"@@ -1,2 +0,0 @@\n-{PEM_HEADER}\n-{PEM_BODY[0]}\n"
    )
    assert scan_diff(diff) == []


def test_lock_file_hashes_are_not_flagged_but_tokens_are() -> None:
    integrity = "sha512-" + base64.b64encode(bytes(_RNG.randrange(256) for _ in range(64))).decode()
    lines = ['    "integrity": "' + integrity + '",', f'    "resolved": "{FAKE["github"]}"']
    findings = scan_diff(added("package-lock.json", lines))
    assert findings == [Finding("package-lock.json", 2, "GitHub Token")]


def test_findings_never_hold_the_value() -> None:
    lines = [line for _, line, _ in KINDS] + [PEM_HEADER, *PEM_BODY]
    findings = scan_diff(added("all.txt", lines))
    assert len({f.kind for f in findings}) >= 10
    text = describe(findings) + repr(findings)
    for value in [*FAKE.values(), *PEM_BODY]:
        assert value not in text
        assert value[-12:] not in text


def test_describe_lists_path_line_kind() -> None:
    findings = [Finding("a.py", 3, "AWS Access Key"), Finding("b.yml", 1, "Private Key")]
    assert describe(findings) == "a.py:3 AWS Access Key\nb.yml:1 Private Key"
    assert describe([]) == ""


def test_findings_are_sorted_and_deduplicated() -> None:
    lines = [PEM_HEADER, f'a = "{FAKE["aws"]}"', PEM_HEADER]
    findings = scan_diff(added("x.txt", lines))
    assert findings == sorted(set(findings))
    assert [f.line for f in findings if f.kind == "Private Key"] == [1, 3]


def test_malformed_diff_raises() -> None:
    with pytest.raises(DiffError):
        scan_diff("not a diff at all")


def test_empty_diff() -> None:
    assert scan_diff("") == []


# Ordinary changes that must produce no finding. Choices made here (see bot.secret_scan):
# UUIDs, version strings, short hex ids, environment variable names and values read from
# the environment are not secrets.
ORDINARY = {
    "src/forgebot_demo/service.py": [
        '"""Fetch and cache user records."""',
        "from __future__ import annotations",
        "",
        "import hashlib",
        "import os",
        "from dataclasses import dataclass",
        "",
        "API_URL = os.environ.get('API_URL', 'https://api.example.com/v1')",
        # Split so that a scanner in CI reading this file does not flag these lines.
        "PASSWORD_ENV" + " = 'SERVICE_DB_PASSWORD'",
        "API_KEY_HEADER" + ' = "X-Api-Key"',
        "",
        "@dataclass(frozen=True)",
        "class User:",
        "    user_id: str",
        "    display_name: str",
        "",
        "def cache_key(user: User) -> str:",
        '    """A stable cache key for a user."""',
        "    return hashlib.sha256(user.user_id.encode()).hexdigest()[:16]",
        "",
        "def password_from_env() -> str:",
        "    password = os.environ['SERVICE_DB_PASSWORD']",
        "    return password",
        "",
        "def connect(secret: str) -> None:",
        '    raise NotImplementedError("connect(secret) is provided by the driver package")',
    ],
    "tests/test_service.py": [
        "import uuid",
        "",
        "import pytest",
        "",
        "from forgebot_demo.service import User, cache_key",
        "",
        "USER_ID = '6f1c2a9e-3b7d-4e5f-9a8b-1c2d3e4f5a6b'",
        "",
        "@pytest.mark.parametrize('name', ['alice', 'bob'])",
        "def test_cache_key_is_stable(name: str) -> None:",
        "    user = User(user_id=USER_ID, display_name=name)",
        "    assert cache_key(user) == cache_key(user)",
        "    assert len(cache_key(user)) == 16",
        "",
        "def test_ids_are_uuids() -> None:",
        "    assert uuid.UUID(str(uuid.uuid4())).version == 4",
        "    commit = 'a1b2c3d'",
        "    assert len(commit) == 7",
    ],
    "pyproject.toml": [
        "[project]",
        'name = "forgebot-demo"',
        'version = "1.4.0rc2"',
        'dependencies = ["requests>=2.31", "pydantic>=2.6,<3"]',
        "[tool.ruff]",
        "line-length = 100",
    ],
    "deploy/config.yaml": [
        "service:",
        "  name: user-cache",
        "  image: registry.example.com/team/user-cache:1.4.0",
        "  replicas: 3",
        "  env:",
        "    - name: DB_PASSWORD",
        "      valueFrom:",
        "        secretKeyRef: {name: user-cache-db, key: password}",
        "  url: https://user-cache.internal.example.com/healthz",
    ],
    "web/src/client.ts": [
        "import { fetchJson } from './http';",
        "",
        "export async function loadUser(id: string): Promise<User> {",
        "  const token = await session.getToken();",
        "  const headers = { Authorization: `Bearer ${token}` };",
        "  return fetchJson(`/api/users/${id}`, { headers });",
        "}",
        "const password = process.env.PASSWORD;",
    ],
    "README.md": [
        "# forgebot-demo",
        "",
        "Set `SERVICE_DB_PASSWORD` in the environment, then run `make test`.",
        "See https://docs.example.com/getting-started for details.",
    ],
    "Dockerfile": [
        "FROM python:3.11-slim@sha256:" + "0" * 64,
        "RUN pip install --no-cache-dir forgebot-demo==1.4.0",
        'ENTRYPOINT ["python", "-m", "forgebot_demo"]',
    ],
}


@pytest.mark.parametrize("path", list(ORDINARY))
def test_ordinary_code_has_no_findings(path: str) -> None:
    assert scan_diff(added(path, ORDINARY[path])) == []


def test_a_switch_named_like_a_secret_is_not_one() -> None:
    """A policy or configuration file that turns a check off is not a credential; a password
    beside it still is."""
    diff = added(".forgebot.yml", ["checks:", "  secret_scan: off", "  secret_scan: disabled",
                                   "  require_token: true", "  password: hunter2-Xq9!zz"])

    assert [(f.line, f.kind) for f in scan_diff(diff)] == [(5, "Secret Keyword")]
