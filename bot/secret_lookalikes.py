"""Values that look like secrets and are not: the secret gate's named exclusions.

Real repositories are full of high-entropy strings that are not credentials: image digests,
subresource-integrity hashes, lock-file and ``--hash=`` checksums, Git LFS object ids, pinned
commits, the hashes of empty input, and the placeholder keys of documentation. Each rule
below names one such shape. A rule judges the *value* a detector matched and where exactly it
stands on its line, never the line's other text, so that a change cannot exempt its own
secret by writing something digest- or placeholder-like next to it:

- the shape is exact: a digest has the length of its algorithm's output (64 hex characters
  after ``sha256:``, the base64 of 48 bytes after ``sha384-``), a placeholder is made of
  words or a single repeated character, with nothing random in it;
- every occurrence of the value on the line must stand in that shape's position (after
  ``@sha256:``, ``--hash=sha256:``, ``oid sha256:``, ``integrity``'s ``sha512-`` ...);
- a value assigned to a name that says secret (``token``, ``api_key``, ``password`` ...) is
  never excluded by a digest or commit rule: there the context says credential, whatever the
  value looks like;
- vendor patterns (an AWS key id, a ``ghp_`` token, a private key header) are excluded only
  by the documented examples: the exact values vendors publish (:data:`DOCUMENTED_EXAMPLES`),
  AWS's example shape (``EXAMPLE`` in the last characters, leaving too few to hold a key) and
  a Slack token of ids without its secret segment.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

# Hex digest lengths by algorithm name, as they are written before a digest.
_HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96,
                "sha512": 128}
# Raw digest sizes in bytes, for base64 digests ("sha384-<base64>" in SRI and lock files).
_RAW_SIZES = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}

# The digests of empty input, hex and base64: a test or a fixture that hashes nothing.
EMPTY_INPUT_HASHES = frozenset(
    text for digest in (hashlib.new(name, b"").digest() for name in _HEX_LENGTHS)
    for text in (digest.hex(), base64.b64encode(digest).decode()))
# Credentials vendors print in their documentation, that no account has.
DOCUMENTED_EXAMPLES = frozenset({
    "AKIAIOSFODNN7EXAMPLE",  # AWS access key id
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",  # its secret access key
    "AKIAI44QH8DHBEXAMPLE",
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    # AWS's example session token (STS documentation), on one line: the scanner sees it whole
    "AQoEXAMPLEH4aoAH0gNCAPyJxz4BlCFFxWNE1OPTgk5TthT+FvwqnKwRcOIfrRh3c/LTo6UDdyJwOOvEVPvLXCrrrUtdnniCEXAMPLE/IvU1dYUg2RVAJBanLiHb4IgRmpRV3zrkuWJOgQs8IZZaIv2BXIa2R4OlgkBN9bkUDNCJiBeb/AXlzBBko7b15fjrBs2+cTQtpZ3CYWFXG8C5zqx37wnOE49mRl/+OtkIKGO7fAE",
})
# AWS's convention for example keys: the last characters say EXAMPLE, so that too few are
# left to hold a real key (9 of an access key id's 16, 30 of a secret key's 40).
_AWS_EXAMPLE_SHAPE = re.compile(r"AKIA[0-9A-Z]{9}EXAMPLE|[A-Za-z0-9/+]{30}EXAMPLEKEY")
# A Slack token of ids alone ("xoxb-1234-1243"): the secret part, the last alphanumeric
# segment of a real token, is not there.
_SLACK_IDS_ONLY = re.compile(r"xox[abposr]-\d+(?:-\d+)*")

_HEX = re.compile(r"[0-9a-fA-F]+")
_ALGORITHM = "|".join(sorted(_HEX_LENGTHS, key=len, reverse=True))
# What stands right before a hex digest: "sha256:" (an image digest, an LFS oid, pip's
# --hash=, a Pipfile.lock or uv.lock entry), or a key named after the algorithm
# ("sha256": "...", sha256 = "...", sha256: ..., Homebrew's sha256 "...").
_BEFORE_HEX_DIGEST = re.compile(
    rf"""(?i)\b({_ALGORITHM})["']?(?:\s*[:=]\s*|\s+)["']?$""")
# A base64 digest with its algorithm: "sha512-..." (SRI, npm and yarn lock files).
_BASE64_DIGEST = re.compile(r"\b(sha1|sha256|sha384|sha512)-([A-Za-z0-9+/]+={0,2})")
# A commit pinned by its full SHA-1: "owner/repo@<sha>" (GitHub Actions, VCS requirements)
# or the value of a key that names a revision.
_BEFORE_PINNED_COMMIT = re.compile(
    r"""(?:[\w.-]+/[\w./-]+@|\b(?:rev|revision|commit|sha|ref)["']?\s*[:=]\s*["']?)$""",
    re.IGNORECASE)
# A prefix glued to the value, which is not the name it is given: "sha256:", "owner/repo@".
_GLUED_PREFIX = re.compile(rf"""(?i)(?:\b(?:{_ALGORITHM})[:=]|[\w.-]+/[\w./-]+@|@)$""")
_KEY = re.compile(r"""([A-Za-z_][\w.-]*)["']?\s*[:=]""")
_SECRET_NAME = re.compile(r"key|pass|pwd|secret|token|auth|credential|private",
                          re.IGNORECASE)
# Placeholders: words in a frame (<your-api-token>, ${API_TOKEN}, {{ api_token }}), words
# that invite a value (YOUR_API_KEY, api-key-here), or filler (xxxxxxxx, XXXX-XXXX, ******).
_FRAMED = re.compile(r"<(.+)>|\$\{(.+)\}|\$\((.+)\)|\{\{\s*(.+?)\s*\}\}|%\((.+)\)s")
_INVITING = re.compile(r"(?i)(?:your|my|insert|replace|put|enter|paste)[ _.-](.+)"
                       r"|(.+)[ _.-](?:here|goes[ _.-]here)")
# One character repeated, or groups of X: nothing random in it.
_FILLER = re.compile(r"(?i)([\w*.])\1{5,}|(?:x{4,}-)+x{4,}")
# An elided example: a vendor's prefix at most, then an ellipsis ("sk_test_...").
_ELIDED = re.compile(r"[\w-]{0,12}(?:\.{3}|\u2026)")
# A word of a placeholder: up to 12 letters in one case, with a vowel and no run of five
# consonants, so that random letters are not words.
_WORD = re.compile(r"[a-z]{1,12}|[A-Z]{1,12}|[A-Z][a-z]{1,11}")
_UNPRONOUNCEABLE = re.compile(r"[^aeiouy]{5}|^[^aeiouy]+$", re.IGNORECASE)
# One of them must say what the value stands for.
_STANDS_FOR = frozenset({
    "access", "account", "api", "app", "auth", "bot", "client", "credential", "credentials",
    "dsn", "id", "key", "license", "org", "pass", "password", "pat", "personal", "private",
    "project", "secret", "signing", "token", "user", "username", "value", "webhook"})


@dataclass(frozen=True)
class Lookalike:
    """One named exclusion: ``applies(value, line)`` says the value is this shape where it
    stands on the line."""

    name: str
    description: str
    applies: Callable[[str, str], bool]


def _starts(value: str, line: str) -> list[int]:
    """Where ``value`` occurs on ``line`` (none: the detector matched a transformed value,
    which no position rule then excludes)."""
    starts, start = [], line.find(value)
    while start >= 0:
        starts.append(start)
        start = line.find(value, start + 1)
    return starts


def _named_secret(before: str) -> bool:
    """Whether the value after ``before`` is given to a name that says secret: the last
    ``name =`` / ``"name":`` before it, past a prefix glued to the value (``sha256:``)."""
    keys = _KEY.findall(_GLUED_PREFIX.sub("", before))
    return bool(keys) and _SECRET_NAME.search(keys[-1]) is not None


def _every(value: str, line: str, position: Callable[[int], bool]) -> bool:
    """Whether every occurrence of ``value`` stands where ``position`` says, given to no
    name that says secret."""
    starts = _starts(value, line)
    return bool(starts) and all(position(start) and not _named_secret(line[:start])
                                for start in starts)


def _hex_digest(value: str, line: str) -> bool:
    if not _HEX.fullmatch(value):
        return False

    def position(start: int) -> bool:
        match = _BEFORE_HEX_DIGEST.search(line[:start])
        return match is not None and _HEX_LENGTHS[match.group(1).lower()] == len(value)

    return _every(value, line, position)


def _base64_digest(value: str, line: str) -> bool:
    """``sha512-<base64>`` whose base64 decodes to exactly that algorithm's digest size; the
    detector may have matched the whole of it or the base64 alone."""
    spans = []
    for match in _BASE64_DIGEST.finditer(line):
        try:
            raw = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == _RAW_SIZES[match.group(1)]:
            spans += [(match.start(), match.group(0)), (match.start(2), match.group(2))]
    return _every(value, line, lambda start: (start, value) in spans)


def _pinned_commit(value: str, line: str) -> bool:
    if len(value) != 40 or not _HEX.fullmatch(value):
        return False
    return _every(value, line,
                  lambda start: _BEFORE_PINNED_COMMIT.search(line[:start]) is not None)


def _empty_input_hash(value: str, line: str) -> bool:
    return re.sub(r"^sha(?:1|256|384|512)-", "", value) in EMPTY_INPUT_HASHES


def _placeholder(value: str, line: str) -> bool:
    text = value.strip("\"'`")
    if _FILLER.fullmatch(text) or _ELIDED.fullmatch(text):
        return True
    match = _FRAMED.fullmatch(text) or _INVITING.fullmatch(text)
    return match is not None and _words(next(group for group in match.groups() if group))


def _words(text: str) -> bool:
    """Whether ``text`` is words that name a credential (``api_key``, ``GitHub-Token``), not
    random letters."""
    words = re.split(r"[ _.-]", text)
    return all(_WORD.fullmatch(word) and not _UNPRONOUNCEABLE.search(word) for word in words) \
        and any(word.lower() in _STANDS_FOR for word in words)


def _documented_example(value: str, line: str) -> bool:
    return value in DOCUMENTED_EXAMPLES or _AWS_EXAMPLE_SHAPE.fullmatch(value) is not None \
        or _SLACK_IDS_ONLY.fullmatch(value) is not None


RULES: tuple[Lookalike, ...] = (
    Lookalike("hex-digest", "a hex digest of its algorithm's length after 'sha256:' and the "
              "like (image digests, LFS oids, pip --hash=, lock-file entries)", _hex_digest),
    Lookalike("base64-digest", "'sha512-' and the like with the base64 of exactly that "
              "digest's size (subresource integrity, npm and yarn lock files)", _base64_digest),
    Lookalike("pinned-commit", "a full commit SHA pinned after 'owner/repo@' or as a "
              "revision's value (GitHub Actions, pre-commit, VCS requirements)", _pinned_commit),
    Lookalike("empty-input-hash", "the md5, sha1 or sha2 digest of empty input",
              _empty_input_hash),
    Lookalike("placeholder", "a placeholder made of words that name a credential, one "
              "repeated character, or a short prefix and an ellipsis (<your-token>, "
              "${API_KEY}, YOUR_API_KEY, xxxxxxxx, sk_test_...)", _placeholder),
    Lookalike("documented-example", "a credential vendors publish as an example, or in "
              "the shape of one (AWS's AKIAIOSFODNN7EXAMPLE and keys ending in EXAMPLEKEY, a "
              "Slack token of ids without its secret part)", _documented_example),
)
_VENDOR_RULES = tuple(rule for rule in RULES if rule.name == "documented-example")


def excluded(value: str, line: str, *, vendor: bool = False) -> str | None:
    """The name of the rule that says ``value``, where it stands on ``line``, is not a
    secret; None when none does. ``vendor``: the value matched a vendor's pattern, which
    only a documented example excludes."""
    for rule in _VENDOR_RULES if vendor else RULES:
        if rule.applies(value, line):
            return rule.name
    return None
