"""The secret gate's look-alike exclusions (bot/secret_lookalikes.py): each named rule with
the shapes it excludes, through the whole gate, and the secrets it must never exclude.

Digests and commits are computed here, not written out, and the "secrets" are random.
"""

from __future__ import annotations

import base64
import hashlib
import random
import string

import pytest

from bot.secret_lookalikes import RULES, excluded
from bot.secret_scan import scan_diff

_RNG = random.Random(2212)
H40 = hashlib.sha1(b"forgebot").hexdigest()
H64 = hashlib.sha256(b"forgebot").hexdigest()
H128 = hashlib.sha512(b"forgebot").hexdigest()
B384 = base64.b64encode(hashlib.sha384(b"forgebot").digest()).decode()
B512 = base64.b64encode(hashlib.sha512(b"forgebot").digest()).decode()
B40_BYTES = base64.b64encode(hashlib.sha512(b"forgebot").digest()[:40]).decode()
RANDOM = "".join(_RNG.choice(string.ascii_letters + string.digits) for _ in range(48))
RANDOM_HEX = "".join(_RNG.choice("0123456789abcdef") for _ in range(64))
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
EMPTY_SHA256_B64 = base64.b64encode(hashlib.sha256(b"").digest()).decode()
AWS_EXAMPLE_ID = "AKIA" + "IOSFODNN7" + "EXAMPLE"
AWS_EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"


def _diff(path: str, *lines: str) -> str:
    body = "".join(f"+{line}\n" for line in lines)
    return (f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n"
            f"+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n{body}")


def _found(path: str, *lines: str) -> list[str]:
    return [finding.kind for finding in scan_diff(_diff(path, *lines))]


# (rule, path, line, the value a detector matches there): each was flagged before the rule.
EXCLUDED = [
    ("hex-digest", "Dockerfile", f"FROM python@sha256:{H64}", H64),
    ("hex-digest", "deploy/app.yaml", f"    image: registry.example.org/app@sha256:{H64}", H64),
    ("hex-digest", "assets/model.bin", f"oid sha256:{H64}", H64),
    ("hex-digest", "requirements.txt", f"    --hash=sha256:{H64}", H64),
    ("hex-digest", "release.json", f'  "sha256": "{H64}",', H64),
    ("hex-digest", "Formula/tool.rb", f'  sha256 "{H64}"', H64),
    ("base64-digest", "docs/_templates/layout.html",
     f'<script src="https://cdn.example.org/x.js" integrity="sha384-{B384}"></script>',
     f"sha384-{B384}"),
    ("base64-digest", "vendor/manifest.json", f'  "integrity": "sha512-{B512}",',
     f"sha512-{B512}"),
    ("pinned-commit", ".pre-commit-config.yaml", f"    rev: {H40}", H40),
    ("empty-input-hash", "tests/test_hash.py", f'assert digest == "{EMPTY_SHA256}"',
     EMPTY_SHA256),
    ("empty-input-hash", "tests/test_hash.py", f'assert digest == "{EMPTY_SHA256_B64}"',
     EMPTY_SHA256_B64),
    ("placeholder", "config/example.yaml", "password: xxxxxxxxxxxx", "xxxxxxxxxxxx"),
    ("documented-example", "docs/aws.md", f"aws_access_key_id = {AWS_EXAMPLE_ID}",
     AWS_EXAMPLE_ID),
    ("documented-example", "docs/aws.md", f"aws_secret_access_key = {AWS_EXAMPLE_SECRET}",
     AWS_EXAMPLE_SECRET),
]


@pytest.mark.parametrize(("rule", "path", "line", "value"), EXCLUDED,
                         ids=[f"{case[0]}:{case[1]}" for case in EXCLUDED])
def test_a_look_alike_is_excluded_by_its_named_rule(rule: str, path: str, line: str,
                                                     value: str) -> None:
    vendor = rule == "documented-example"
    assert excluded(value, line, vendor=vendor) == rule
    assert _found(path, line) == []


def test_every_rule_is_named_and_tested() -> None:
    names = [rule.name for rule in RULES]
    assert len(set(names)) == len(names)
    assert set(names) == {case[0] for case in EXCLUDED} | {"pinned-commit"}
    assert all(rule.description for rule in RULES)


@pytest.mark.parametrize("value", [
    "<your-api-key>", "YOUR_API_TOKEN", "your-token-here", "api-key-here",
    "${GITHUB_TOKEN}", "{{ secrets.deploy_token }}", "%(api_key)s", "XXXX-XXXX-XXXX",
    "************",
])
def test_placeholders_are_words_or_filler(value: str) -> None:
    assert excluded(value, f'api_key = "{value}"') == "placeholder"


@pytest.mark.parametrize("value", [
    "YOUR_" + RANDOM,  # a placeholder's frame around a random value
    "YOUR_uzizigfjjuxl",  # random letters that happen to be pronounceable, naming nothing
    "<qzxkvwpmrtbn>",
    "YOUR_API_KEY_Xq7",
    "changeme-please",  # a value, however weak: not a documented placeholder shape
])
def test_what_only_looks_like_a_placeholder_is_not_one(value: str) -> None:
    assert excluded(value, f'api_key = "{value}"') is None


@pytest.mark.parametrize(("path", "line"), [
    # A random value with a placeholder written next to it.
    ("app.py", f'token = "{RANDOM}"  # YOUR_API_KEY'),
    ("app.py", f'token = "{RANDOM}"  # <your-token>, xxxxxxxx'),
    ("app.py", f'API_KEY = "YOUR_{RANDOM}"'),
    # Hex in no digest position, or with a digest written beside it.
    ("app.py", f'digest = "{RANDOM_HEX}"'),
    ("app.py", f'key = "{RANDOM_HEX}"  # sha256:{RANDOM_HEX}'),
    ("app.py", f'key = "{RANDOM_HEX}"  # FROM python@sha256:0'),
    # A digest shape given to a name that says secret.
    ("settings.yaml", f'token: "sha512-{B512}"'),
    ("app.py", f'GITHUB_TOKEN = "{H40}"'),
    ("app.py", f'API_TOKEN = "{H64}"'),
    # The wrong length for the algorithm named.
    ("app.py", f'checksum = "{H128}"'),
    # A vendor pattern that is not the documented example.
    ("docs/aws.md", "aws_access_key_id = AKIA" + "QWERTYUIOPASDFGH"),
], ids=["placeholder-comment", "placeholder-comments", "placeholder-frame", "bare-hex",
        "digest-comment", "dockerfile-comment", "named-integrity", "named-commit",
        "named-digest", "sha512-length", "other-aws-key"])
def test_a_secret_is_never_excluded_by_what_stands_beside_it(path: str, line: str) -> None:
    assert _found(path, line) != []


@pytest.mark.parametrize(("value", "line"), [
    (H64, f"FROM python@sha1:{H64}"),  # sha1 digests are 40 characters
    (H40, f"oid sha256:{H40}"),
    (f"sha384-{B40_BYTES}", f'integrity="sha384-{B40_BYTES}"'),  # 40 bytes: no sha384
    (H40, f"token: actions/checkout@{H40}"),
    (H40, f'commit = "{H40}"; secret = "{H40}"'),  # once pinned, once a secret
    (H64, f'password_hash = "sha256:{H64}"'),
])
def test_digest_rules_need_the_exact_shape_in_every_place(value: str, line: str) -> None:
    assert excluded(value, line) is None


def test_a_pinned_action_and_a_vcs_requirement_are_commits() -> None:
    assert excluded(H40, f"      - uses: actions/checkout@{H40}") == "pinned-commit"
    assert excluded(H40, f"git+https://github.com/org/repo@{H40}#egg=x") == "pinned-commit"


def test_only_documented_examples_exclude_a_vendor_pattern() -> None:
    line = f'api_key = "YOUR_API_KEY"  # {AWS_EXAMPLE_ID}'
    assert excluded("YOUR_API_KEY", line, vendor=True) is None
    assert excluded(AWS_EXAMPLE_ID, line, vendor=True) == "documented-example"


def test_a_lock_file_line_beside_a_secret_does_not_hide_it() -> None:
    lines = (f'  "integrity": "sha512-{B512}",', f'  "token": "{RANDOM}",')

    assert _found("vendor/manifest.json", *lines) == ["Base64 High Entropy String"]


@pytest.mark.parametrize(("value", "rule"), [
    ("YYYYYYYYYYYYYYYYYY", "placeholder"),  # one character repeated
    ("sk_test_...", "placeholder"),  # a prefix and an ellipsis
    ("AKIA" + "ABCDEFGHJ" + "EXAMPLE", "documented-example"),  # AWS's example shape
    ("aBcDeFgHiJkLmNoPqRsTuVwXyZ0123" + "EXAMPLEKEY", "documented-example"),
    ("xoxb-" + "1234-1243", "documented-example"),  # a Slack token of ids, no secret part
])
def test_other_shapes_that_hold_nothing(value: str, rule: str) -> None:
    assert excluded(value, f'key = "{value}"', vendor=rule == "documented-example") == rule


@pytest.mark.parametrize("value", [
    "sk_test_" + RANDOM[:24] + "...",  # too much before the ellipsis to be only a prefix
    "AKIA" + "ABCDEFGHJKLMN" + "EXAM",  # no EXAMPLE ending
    RANDOM[:31] + "EXAMPLEKEY",  # one character too many for AWS's shape
    "xoxb-" + "1234-1243-" + RANDOM[:24],  # the secret segment is there
    "Ab" * 10,  # two characters alternating are not one repeated
])
def test_shapes_with_room_for_a_secret_are_not_excluded(value: str) -> None:
    assert excluded(value, f'key = "{value}"', vendor=True) is None
    assert excluded(value, f'key = "{value}"') is None
