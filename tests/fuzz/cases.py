"""Webhook cases for the fuzzers: real captured payloads, mutated; headers; signatures.

Shared by the hypothesis tests (``test_webhook_fuzz.py``) and the optional atheris harness
(``atheris_webhooks.py``), so both attack the receiver with the same vocabulary. Everything
here is a pure function of its inputs: a case is fully described by what was drawn.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from bot.forges.verify import sign_sha256
from tests.conftest import FIXTURES, SECRET, labeled_payload

GITHUB_SECRET = "gh-fuzz-secret"
GITLAB_SECRET = "gl-fuzz-token"
GITEA_SECRET = "gt-fuzz-secret"
GITHUB_API = "https://api.github.com"
GITLAB_HOST = "https://gitlab.example"
GITEA_HOST = "https://gitea.example"

# The trigger label of the default policy. Swapping a fixture's label for it is what lets a
# fuzzed, correctly signed delivery reach job creation instead of stopping at "not a trigger".
TRIGGER = "forgebot"
FIXTURE_LABELS = (b'"bug"', b'"critical"', b'"example"')
COMMANDS = ("/help", "/status", "/retry", "@forgebot /revise make it shorter", "/cancel",
            "@forgebot /frobnicate", "/revise", "> /retry", "@forgebot /HELP\n/status")

SIGNATURE_MODES = ("none", "garbage", "wrong_hex", "other_body", "wrong_secret", "wrong_algo",
                   "correct", "correct_upper")
AUTHENTIC_MODES = frozenset({"correct", "correct_upper"})


@dataclass(frozen=True)
class ForgeSpec:
    """How one forge names its headers, and the real payloads it sends."""

    name: str
    secret: str
    event_header: str
    delivery_header: str
    signature_header: str
    prefix: str  # before the hex digest; "" for Gitea; GitLab sends a token instead
    payloads: tuple[tuple[str, bytes], ...] = field(repr=False)  # (event name, raw body)
    extra: tuple[tuple[str, str], ...] = ()  # headers the forge always sends


class Raw(bytes):
    """A body whose repr is its size: hypothesis prints strategies, and bodies are big."""

    def __repr__(self) -> str:
        return f"<{len(self)} bytes>"


def _fixture(forge: str, name: str) -> bytes:
    return Raw((FIXTURES / "webhooks" / forge / name).read_bytes())


def _local_payloads() -> tuple[tuple[str, bytes], ...]:
    comment: dict[str, Any] = {
        "action": "created",
        "repository": {"full_name": "acme/hello", "default_branch": "main"},
        "issue": {"number": 1, "title": "Add a farewell", "body": "", "labels": [],
                  "user": {"login": "ada"}},
        "comment": {"id": 7, "body": "/help", "user": {"login": "ada"}},
        "sender": {"login": "ada"},
    }
    return (("issues", Raw(json.dumps(labeled_payload()).encode())),
            ("issues", Raw(json.dumps(labeled_payload(label="bug", number=2)).encode())),
            ("issue_comment", Raw(json.dumps(comment).encode())))


def forge_specs() -> dict[str, ForgeSpec]:
    """The four receivers, each with every captured payload of its forge."""
    gh = [("issues", "issues__labeled.json"),
          ("issue_comment", "issue_comment__created_issue.json"),
          ("issue_comment", "issue_comment__created_pr.json"),
          ("push", "push__default_branch.json"),
          ("pull_request", "pull_request__closed_merged.json"),
          ("pull_request", "pull_request__closed_unmerged.json"),
          ("pull_request_review", "pull_request_review__submitted.json")]
    gl = [("Issue Hook", "issue_hook__label_update.json"),
          ("Merge Request Hook", "merge_request_hook__close.json"),
          ("Merge Request Hook", "merge_request_hook__merge.json"),
          ("Note Hook", "note_hook__issue.json"), ("Note Hook", "note_hook__merge_request.json"),
          ("Push Hook", "push_hook__default_branch.json")]
    gt = [("issues", "issues__label_updated.json"),
          ("issue_comment", "issue_comment__created_issue.json"),
          ("issue_comment", "issue_comment__created_pr.json"),
          ("push", "push__default_branch.json"),
          ("pull_request", "pull_request__closed_merged.json"),
          ("pull_request", "pull_request__closed_unmerged.json"),
          ("pull_request_approved", "pull_request__reviewed_approved.json")]
    return {
        "local": ForgeSpec("local", SECRET, "X-Forgebot-Event", "X-Forgebot-Delivery",
                           "X-Forgebot-Signature-256", "sha256=", _local_payloads()),
        "github": ForgeSpec("github", GITHUB_SECRET, "X-GitHub-Event", "X-GitHub-Delivery",
                            "X-Hub-Signature-256", "sha256=",
                            tuple((e, _fixture("github", f)) for e, f in gh)),
        "gitlab": ForgeSpec("gitlab", GITLAB_SECRET, "X-Gitlab-Event", "Idempotency-Key",
                            "X-Gitlab-Token", "",
                            tuple((e, _fixture("gitlab", f)) for e, f in gl),
                            extra=(("X-Gitlab-Event-UUID", "7f0c0b7e-uuid"),)),
        "gitea": ForgeSpec("gitea", GITEA_SECRET, "X-Gitea-Event", "X-Gitea-Delivery",
                           "X-Gitea-Signature", "",
                           tuple((e, _fixture("gitea", f)) for e, f in gt)),
    }


def signature_headers(spec: ForgeSpec, mode: str, body: bytes,
                      noise: str) -> list[tuple[str, str]]:
    """The authentication headers of ``mode``; only the AUTHENTIC_MODES are right.

    ``noise`` is drawn text that stands in for whatever an attacker sends.
    """
    if spec.name == "gitlab":
        # GitLab sends the secret itself: every mode that is not the token verbatim is wrong.
        token = {
            "none": None, "garbage": noise, "wrong_hex": hashlib.sha256(noise.encode()).hexdigest(),
            "other_body": sign_sha256(spec.secret, body), "wrong_secret": spec.secret + "x",
            "wrong_algo": "sha256=" + sign_sha256(spec.secret, body),
            "correct": spec.secret, "correct_upper": spec.secret,
        }[mode]
        return [] if token is None else [(spec.signature_header, token)]
    value: str | None
    if mode == "none":
        value = None
    elif mode == "garbage":
        value = noise
    elif mode == "wrong_hex":
        value = spec.prefix + hashlib.sha256(noise.encode("utf-8", "replace")).hexdigest()
    elif mode == "other_body":
        value = spec.prefix + sign_sha256(spec.secret, body + b" ")
    elif mode == "wrong_secret":
        value = spec.prefix + sign_sha256(spec.secret + noise + "!", body)
    elif mode == "wrong_algo":
        # The right secret through the wrong hash: SHA-1 (GitHub's legacy header) or SHA-512.
        sha1 = hmac.new(spec.secret.encode(), body, hashlib.sha1).hexdigest()
        sha512 = hmac.new(spec.secret.encode(), body, hashlib.sha512).hexdigest()
        value = spec.prefix + (sha1 if len(noise) % 2 else sha512[:64])
        if spec.name == "github" and len(noise) % 3 == 0:
            return [("X-Hub-Signature", "sha1=" + sha1)]
    elif mode == "correct":
        value = spec.prefix + sign_sha256(spec.secret, body)
    else:
        value = spec.prefix + sign_sha256(spec.secret, body).upper()
    return [] if value is None else [(spec.signature_header, value)]


# ------------------------------------------------------------------ body mutations


def flip_bytes(body: bytes, flips: list[tuple[int, int]]) -> bytes:
    data = bytearray(body)
    for position, mask in flips:
        if data:
            data[position % len(data)] ^= mask or 1
    return bytes(data)


def truncate(body: bytes, at: int) -> bytes:
    return body[: at % (len(body) + 1)]


def retarget(body: bytes, command: str) -> bytes:
    """Point the real payload at work the bot does: the trigger label, a slash command."""
    for label in FIXTURE_LABELS:
        body = body.replace(label, json.dumps(TRIGGER).encode())
    payload = json.loads(body)
    _set_comment(payload, command)
    return json.dumps(payload).encode()


def _set_comment(node: Any, command: str) -> None:
    if isinstance(node, dict):
        for key in ("comment", "object_attributes"):
            inner = node.get(key)
            if isinstance(inner, dict):
                inner["body" if key == "comment" else "note"] = command
    return


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``node`` (dict keys and list indexes)."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(paths(value, (*prefix, index)))
    return found


def mutate_at(payload: Any, path: tuple[Any, ...], op: str, value: Any) -> Any:
    """``payload`` with the value at ``path`` deleted, replaced by ``value`` or wrapped."""
    if not path:
        return value if op != "delete" else {}
    parent = payload
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "wrap":
        parent[last] = [parent[last]]
    else:
        parent[last] = value
    return payload


def nest(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


def encode(payload: Any, ascii_only: bool) -> bytes:
    # A lone surrogate cannot be UTF-8: "surrogatepass" sends its bytes anyway, as a hostile
    # client would, and the receiver must call that malformed rather than fail.
    return json.dumps(payload, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
