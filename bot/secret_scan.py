"""The secret gate: find credentials in the lines a diff adds. Pure over values, no IO.

Only added lines are judged: removing a secret is never a finding, and what the repository
already holds is not this change's doing. The change judges itself, so nothing in it can
vouch for itself: allow-list pragmas it adds (``pragma: allowlist secret``, ``# nosec``,
``gitleaks:allow`` ...) are stripped before scanning, and detect-secrets' filters that honour
them are never run.

How a line is judged:

1. detect-secrets' default plugins (every plugin but ``IPPublicDetector``: an address is not
   a credential) are called directly with ``analyze_line``. ``SecretsCollection.scan_diff``
   finds nothing here (its ``is_invalid_file`` filter drops paths that are not files in the
   working directory) and ``scan_line`` runs in eager mode, which floods ordinary code with
   findings.
2. The entropy plugins keep detect-secrets' limits (base64 above 4.5 bits a character, hex
   above 3.0). Their matches and the keyword plugin's pass detect-secrets' heuristic
   filters: UUIDs, sequences like ``ABCDEF...``, ``${templated}`` values, values read from a
   call or an index. Keyword values that are names or prose are dropped too: an environment
   variable's name, a header or field name made of words that include key, pass, secret,
   token or auth, an enum-style constant's value that spells the constant's own name, a
   sentence of five words or more. Hex strings shorter than 16 characters are dropped
   (short ids and abbreviated commit hashes). Vendor-pattern plugins (AWS, GitHub, private
   keys...) are never filtered heuristically: their match is the evidence.
3. Unquoted ``key: value`` / ``KEY=value`` values (YAML, ``.env``) and Markdown code spans
   (`` `value` ``) are offered to the entropy plugins as if quoted, since those plugins only
   look inside quotes. An unquoted value, or a code span that prose assigns to a code span
   naming a secret (``Set `DB_PASSWORD` to `...```), is offered to the keyword plugin as a
   quoted assignment, so ``.env`` passwords and documented passwords are found too.
4. Base64-looking tokens (20 to 8192 characters) and hex tokens (32 characters or more) that
   decode to text are decoded, twice at most, and the text is scanned too; such a finding's
   kind ends in ``(base64-encoded)`` or ``(hex-encoded)`` (the outermost encoding).
5. Each run of consecutive added lines is also read as one string made of the string
   literals of its lines (or the whole line when it has none), and the vendor-pattern
   plugins run on it, so a key split over lines or literals is still found at the line
   where it starts.

Lock files (``package-lock.json``, ``go.sum`` ...) skip the entropy plugins: their integrity
hashes are high-entropy by design. Elsewhere, values that look like secrets and are not
(image digests, subresource integrity, ``--hash=`` and lock-file checksums, LFS oids, pinned
commits, the hashes of empty input, placeholders, vendors' documented example keys) are
excluded by the named rules of :mod:`bot.secret_lookalikes`, which judge the value and where
it stands, never the text around it. What is flagged on purpose though it may be harmless:
a quoted hex string of 16 characters or more that stands in no digest position (a SHA-256 in
a test looks exactly like a hex API key), URLs with a user and password, and
``password = "..."``-style literals. UUIDs, version strings and ordinary identifiers are not
flagged.

A :class:`Finding` holds the path, the line and the kind, never the value.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from detect_secrets.filters import heuristic
from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.high_entropy_strings import (
    HexHighEntropyString,
    HighEntropyStringsPlugin,
)
from detect_secrets.plugins.keyword import KeywordDetector
from detect_secrets.settings import default_settings, get_plugins

from bot.policy.changeset import ChangeSet, Line, parse_diff
from bot.secret_lookalikes import excluded

BASE64_LIMIT = 4.5  # detect-secrets' default: bits of entropy per character
HEX_LIMIT = 3.0  # detect-secrets' default
HEX_MIN_LENGTH = 16
DISABLED_PLUGINS = ("IPPublicDetector",)
ENCODED_SUFFIX = " (base64-encoded)"
HEX_ENCODED_SUFFIX = " (hex-encoded)"

# Only fixed phrases: a pattern that swallowed what follows a pragma could swallow a secret.
_PRAGMAS = re.compile(
    r"pragma:\s*(?:allow|white)list(?:[ -]nextline)?[ -]secret"
    r"|\bnosec\b"
    r"|\bdetect-secrets\s*:\s*(?:ignore|disable|allow)\b"
    r"|\bgitleaks\s*:\s*allow\b"
    r"|\btrufflehog\s*:\s*ignore\b"
    r"|\bnosemgrep\b",
    re.IGNORECASE,
)
# Patterns detect-secrets 1.5 lacks: fine-grained GitHub tokens, private key headers it does
# not list (ENCRYPTED, and any future "<ALGO> PRIVATE KEY"), Google API keys, npm's granular
# tokens (its plugin knows only ".npmrc" lines), and URLs with a password whose user is empty
# ("redis://:pw@host") or which holds characters its basic-auth plugin refuses ("!", "-"...,
# which belong percent-encoded there but are written as they are in real configuration).
_EXTRA_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("GitHub Token", re.compile(r"github_pat_[A-Za-z0-9_]{22,255}")),
    ("Private Key", re.compile(r"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----")),
    ("Google API Key", re.compile(r"AIza[0-9A-Za-z_-]{35}")),
    ("NPM tokens", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("Basic Auth Credentials",
     re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@'\"`{}$<>]*:[^\s/@'\"`{}$<>%*]{3,}@")),
)
_BASE64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{20,8192}={0,2}")
_HEX_TOKEN = re.compile(r"\b(?:[0-9a-fA-F]{2}){16,4096}\b")
_MAX_TOKENS_PER_LINE = 16
_DECODE_DEPTH = 2
_UNQUOTED_VALUE = re.compile(r"[:=]\s*([A-Za-z0-9+/=_.-]{16,})\s*$")
# "NAME=value" / "name: value" with nothing quoted: the keyword plugin's file-type rules
# miss it in files it does not know (".env", Markdown). Only in configuration and text files:
# in code an unquoted value is an expression ("self.password = password").
_UNQUOTED_ASSIGNMENT = re.compile(
    r"""^\s*(?:export\s+)?([A-Za-z_][\w.-]*)\s*[:=]\s*([^\s"'`#()\[\]{}]{8,})\s*$"""
)
_TEXT_SUFFIXES = (
    ".cfg",
    ".conf",
    ".env",
    ".ini",
    ".md",
    ".properties",
    ".rst",
    ".toml",
    ".txt",
    ".yaml",
    ".yml",
)
# Values a configuration key takes that are switches, not secrets (YAML, INI, TOML).
_SWITCH_WORDS = frozenset({"on", "off", "true", "false", "yes", "no", "null", "none", "~",
                           "enabled", "disabled", "enable", "disable", "required", "optional"})
_CODE_SPAN = re.compile(r"`([^`\s]{16,})`")
# Prose that gives a value to a named setting: "Set `DB_PASSWORD` to `value`".
_PROSE_ASSIGNMENT = re.compile(r"`([A-Za-z_][\w.-]*)`\s*(?:to|=|:|is)\s*`([^`\s]{8,})`")
_STRING_LITERAL = re.compile(r"""(["'`])((?:\\.|(?!\1).)*)\1""")
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_SEPARATED_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z][A-Za-z0-9]*)+")
_SECRET_WORD = re.compile(r"key|pass|pwd|secret|token|auth", re.IGNORECASE)
_ASSIGNED_NAME = re.compile(r"""\s*["']?([A-Za-z_]\w*)["']?\s*:?=""")
_LOCK_FILES = frozenset(
    {
        "bun.lock",
        "flake.lock",
        "go.sum",
        "gradle.lockfile",
        "npm-shrinkwrap.json",
        "pdm.lock",
        "pnpm-lock.yaml",
        "uv.lock",
    }
)


@dataclass(frozen=True, order=True)
class Finding:
    """A secret of some ``kind`` on an added ``line`` of ``path``. Never holds the value."""

    path: str
    line: int
    kind: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.kind}"


def scan_diff(diff_text: str) -> list[Finding]:
    """Findings in the lines ``diff_text`` adds, by file in diff order, then line and kind.

    Raises ``bot.policy.changeset.DiffError`` if the text is not a diff: a gate must not
    pass what it cannot read.
    """
    return scan_changes(parse_diff(diff_text))


def scan_changes(changes: ChangeSet) -> list[Finding]:
    """Like :func:`scan_diff` for an already parsed change set (the policy gate's)."""
    scanner = _default_scanner()
    findings: list[Finding] = []
    for change in changes.files:
        findings.extend(scanner.scan_file(change.path, change.added))
    return findings


REDACTED = "[redacted]"
_MIN_KNOWN_SECRET = 6  # shorter configured values would redact ordinary words


def redact(text: str, known: Iterable[str] = (), path: str = "transcript.md") -> str:
    """``text`` fit to store: every ``known`` secret (the tokens and keys forgebot itself
    holds) replaced, then every line the scanner flags replaced by a note naming its kinds.

    For transcripts, which hold file contents, model replies and test output. Whole lines
    go, since the scanner knows the line of a secret and not always its span.
    """
    for value in sorted({k for k in known if len(k) >= _MIN_KNOWN_SECRET}, key=len,
                        reverse=True):
        text = text.replace(value, REDACTED)
    lines = _redact_key_bodies(text.split("\n"))
    findings = _default_scanner().scan_file(
        path, [Line(number, line) for number, line in enumerate(lines, start=1)])
    kinds: dict[int, set[str]] = {}
    for finding in findings:
        kinds.setdefault(finding.line, set()).add(finding.kind)
    for number, found in kinds.items():
        lines[number - 1] = f"[line redacted: {', '.join(sorted(found))}]"
    return "\n".join(lines)


_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*-----")
_PEM_BODY = re.compile(r"^[\s>\"'|+-]*[A-Za-z0-9+/=]{8,}[\s\"',\\n]*$")


def _redact_key_bodies(lines: list[str]) -> list[str]:
    """The base64 lines of a private key block: the scanner flags the BEGIN line, but each
    body line alone looks like any other base64. Redacted up to the END line, or to the first
    line that is not base64 when the block has none."""
    out: list[str] = []
    inside = False
    for line in lines:
        if _PEM_BEGIN.search(line):
            inside = True
            out.append("[line redacted: Private Key]")
            continue
        if inside and _PEM_END.search(line):
            inside = False
            out.append("[line redacted: Private Key]")
            continue
        if inside and _PEM_BODY.match(line):
            out.append("[line redacted: Private Key]")
            continue
        inside = False
        out.append(line)
    return out


def describe(findings: Iterable[Finding]) -> str:
    """One ``path:line kind`` per line, for a pull request body or a log; no values."""
    return "\n".join(str(finding) for finding in findings)


def strip_pragmas(text: str) -> str:
    """``text`` without allow-list pragmas, so that a change cannot exempt its own lines."""
    return _PRAGMAS.sub("", text)


class _Scanner:
    """The plugin instances, split by how their matches are trusted."""

    def __init__(self, plugins: Sequence[BasePlugin]) -> None:
        self.plugins = tuple(plugins)
        self.entropy = tuple(p for p in plugins if isinstance(p, HighEntropyStringsPlugin))
        self.keyword = tuple(p for p in plugins if isinstance(p, KeywordDetector))
        # Joining lines glues unrelated text together; only patterns distinctive enough
        # not to match across a seam run on it (a URL followed by "user:x@" is not one).
        self.patterned = tuple(
            p
            for p in plugins
            if isinstance(p, RegexBasedDetector) and not isinstance(p, BasicAuthDetector)
        )

    def scan_file(self, path: str, lines: Sequence[Line]) -> list[Finding]:
        """Findings on the added ``lines`` of one file, sorted by line and kind."""
        lock_file = _is_lock_file(path)
        found: set[tuple[int, str]] = set()
        for line in lines:
            for text in _variants(line.text):
                kinds = self._line_kinds(path, text, lock_file)
                found.update((line.number, kind) for kind in kinds)
                for suffix, decoded in _decoded_texts(text, _DECODE_DEPTH):
                    for decoded_line in decoded.splitlines():
                        kinds = self._line_kinds(path, decoded_line, lock_file)
                        found.update((line.number, kind + suffix) for kind in kinds)
        for run in _runs(lines):
            found.update(self._joined_kinds(run))
        return [Finding(path, number, kind) for number, kind in sorted(found)]

    def _line_kinds(self, path: str, text: str, lock_file: bool) -> set[str]:
        kinds: set[str] = set()
        for plugin in self.plugins:
            if lock_file and isinstance(plugin, HighEntropyStringsPlugin):
                continue
            if any(
                _accept(plugin, secret.secret_value, text)
                for secret in plugin.analyze_line(filename=path, line=text, line_number=0)
            ):
                kinds.add(plugin.secret_type)
        kinds.update(kind for kind, pattern in _EXTRA_PATTERNS if pattern.search(text))
        if not lock_file:
            kinds.update(self._unquoted_value_kinds(path, text))
        return kinds

    def _unquoted_value_kinds(self, path: str, text: str) -> set[str]:
        values = [match.group(1) for match in _CODE_SPAN.finditer(text)]
        match = _UNQUOTED_VALUE.search(text)
        if match is not None:
            values.append(match.group(1))
        kinds = {
            plugin.secret_type
            for value in values
            for plugin in self.entropy
            # the entropy plugins only look inside quotes
            for secret in plugin.analyze_line(filename=path, line=f'"{value}"', line_number=0)
            if _accept(plugin, secret.secret_value, text)
        }
        return kinds | self._assignment_kinds(path, text)

    def _assignment_kinds(self, path: str, text: str) -> set[str]:
        """The keyword plugin's verdict on unquoted or prose assignments, written as the
        quoted Python assignment it understands everywhere."""
        pairs = [(m.group(1), m.group(2)) for m in _PROSE_ASSIGNMENT.finditer(text)]
        unquoted = _UNQUOTED_ASSIGNMENT.match(text) if _is_text_file(path) else None
        if unquoted is not None:
            pairs.append((unquoted.group(1), unquoted.group(2)))
        kinds: set[str] = set()
        for name, value in pairs:
            line = f'{name} = "{value}"'
            for plugin in self.keyword:
                for secret in plugin.analyze_line(filename="x.py", line=line, line_number=0):
                    if _accept(plugin, secret.secret_value, line):
                        kinds.add(plugin.secret_type)
        return kinds

    def _joined_kinds(self, run: Sequence[Line]) -> Iterator[tuple[int, str]]:
        joined, starts = _join_run(run)
        for plugin in self.patterned:
            for value in plugin.analyze_string(joined):
                offset = joined.find(value) if value else -1
                if offset >= 0 and excluded(value, joined, vendor=True) is None:
                    yield run[bisect.bisect_right(starts, offset) - 1].number, plugin.secret_type
        for kind, pattern in _EXTRA_PATTERNS:
            for match in pattern.finditer(joined):
                yield run[bisect.bisect_right(starts, match.start()) - 1].number, kind


def _variants(text: str) -> tuple[str, ...]:
    """The line without its pragmas, and as written if that differs: stripping must never
    be what hides a secret, so both are scanned when a pragma was there."""
    stripped = strip_pragmas(text)
    return (stripped,) if stripped == text else (stripped, text)


def _accept(plugin: BasePlugin, value: Any, line: str) -> bool:
    """Whether a plugin's match survives the heuristics that apply to that plugin."""
    if not isinstance(value, str) or not value:
        return False
    if heuristic.is_templated_secret(value) or heuristic.is_prefixed_with_dollar_sign(value):
        return False
    if isinstance(plugin, RegexBasedDetector):
        return excluded(value, line, vendor=True) is None
    if excluded(value, line) is not None:
        return False
    if (isinstance(plugin, HexHighEntropyString) and len(value) < HEX_MIN_LENGTH) or (
            isinstance(plugin, KeywordDetector) and _names_something(value, line)):
        return False
    return not (
        heuristic.is_sequential_string(value)
        or heuristic.is_potential_uuid(value)
        or heuristic.is_likely_id_string(value, line, plugin)
        or heuristic.is_indirect_reference(line)
        or heuristic.is_not_alphanumeric_string(value)
    )


def _names_something(value: str, line: str) -> bool:
    """Whether a keyword match is a name or prose rather than a password: an environment
    variable's name, a separated name of the concept itself (a header or field name), an
    enum-style constant whose value spells its own name, a message."""
    if _ENV_NAME.fullmatch(value) or len(value.split()) >= 5:
        return True
    if value.lower() in _SWITCH_WORDS:  # "secret_scan: off" switches a check, holds nothing
        return True
    if _SEPARATED_NAME.fullmatch(value) and _SECRET_WORD.search(value):
        return True  # names the concept: "X-Api-Key", "user_password_hash"
    assigned = _ASSIGNED_NAME.match(line)
    return assigned is not None and assigned.group(1).lower() == value.lower()


def _decoded_texts(text: str, depth: int) -> Iterator[tuple[str, str]]:
    """``(suffix, text)`` for what base64 or hex tokens of ``text`` decode to, recursively
    to ``depth``; the suffix names the outermost encoding."""
    if depth <= 0:
        return
    for suffix, pattern, decode in _DECODERS:
        for count, match in enumerate(pattern.finditer(text)):
            if count >= _MAX_TOKENS_PER_LINE:
                break
            decoded = decode(match.group(0))
            if decoded is not None:
                yield suffix, decoded
                yield from ((suffix, inner) for _, inner in _decoded_texts(decoded, depth - 1))


def _decode_hex_text(token: str) -> str | None:
    """The text ``token`` decodes to as hex, or ``None`` if that is not mostly printable."""
    try:
        return _printable_text(bytes.fromhex(token))
    except ValueError:
        return None


def _printable_text(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(char.isprintable() or char in "\n\r\t" for char in text)
    if not text or "\x00" in text or printable < 0.95 * len(text):
        return None
    return text


def _decode_base64_text(token: str) -> str | None:
    """The text ``token`` decodes to, or ``None`` if it is not base64 of mostly printable text.

    Identifiers and paths rarely decode to valid UTF-8 at all, so this is cheap to try on
    every token.
    """
    urlsafe = "-" in token or "_" in token
    if urlsafe and ("+" in token or "/" in token):
        return None  # mixes both alphabets: not base64
    altchars = b"-_" if urlsafe else b"+/"
    body = token.rstrip("=")
    padded = body + "=" * (-len(body) % 4)
    try:
        raw = base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _printable_text(raw)


# Hex first: a hex token is also valid base64, which decodes it to noise.
_DECODERS: tuple[tuple[str, re.Pattern[str], Callable[[str], str | None]], ...] = (
    (HEX_ENCODED_SUFFIX, _HEX_TOKEN, _decode_hex_text),
    (ENCODED_SUFFIX, _BASE64_TOKEN, _decode_base64_text),
)


def _runs(lines: Sequence[Line]) -> Iterator[Sequence[Line]]:
    """Runs of consecutive line numbers: the lines that sit together in the new file."""
    if not lines:
        return
    start = 0
    for index in range(1, len(lines) + 1):
        if index == len(lines) or lines[index].number != lines[index - 1].number + 1:
            # A single line is a run too: '"ghp_" + "..."' joins within one line.
            yield lines[start:index]
            start = index


def _join_run(run: Sequence[Line]) -> tuple[str, list[int]]:
    """The run as one string of its lines' literal contents, and where each line starts."""
    parts: list[str] = []
    starts: list[int] = []
    offset = 0
    for line in run:
        text = strip_pragmas(line.text)
        literals = [match.group(2) for match in _STRING_LITERAL.finditer(text)]
        fragment = "".join(literals) if literals else text.strip()
        starts.append(offset)
        parts.append(fragment)
        offset += len(fragment)
    return "".join(parts), starts


def _is_text_file(path: str) -> bool:
    """Configuration, environment and documentation files, where values go unquoted."""
    name = path.rsplit("/", 1)[-1].lower()
    return name.startswith(".env") or name.endswith(_TEXT_SUFFIXES)


def _is_lock_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name in _LOCK_FILES or name.endswith(".lock") or heuristic.is_lock_file(path)


_BUILD_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _default_scanner() -> _Scanner:
    """Build the plugin set once. detect-secrets keeps its settings in a process global that
    ``transient_settings`` swaps in and out, so building is serialised; the plugin objects
    outlive the context and are only read afterwards."""
    with _BUILD_LOCK, default_settings() as settings:
        settings.configure_plugins(
            [
                {"name": "Base64HighEntropyString", "limit": BASE64_LIMIT},
                {"name": "HexHighEntropyString", "limit": HEX_LIMIT},
            ]
        )
        settings.disable_plugins(*DISABLED_PLUGINS)
        return _Scanner(list(get_plugins()))
