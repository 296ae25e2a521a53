"""Canary credentials: fakes planted in the verify run of the tests, that nothing honest reads.

The verify run gets credentials under the names real ones have (``AWS_SECRET_ACCESS_KEY``,
``GITHUB_TOKEN``, ``DATABASE_URL`` ...) in its environment, and as the files tools keep them
in under ``$HOME`` (``.aws/credentials``, ``.netrc``, ``.git-credentials``, an SSH key). Each
value carries a fresh random token, so a token that comes out of the run can only have been
read by the code under test: a change that dumps the environment into its output, or reads a
credential file, shows itself when its tests run, however it is spelled. The run's output is
searched for every token, also base64-encoded (at each of the three alignments), hex-encoded
and reversed; a token that is found is a violation, and is redacted from the output before
it is stored or posted.

When the test command is over, the same wrapper searches the files the run wrote (under
``/sandbox``, ``/tmp`` and ``$HOME``, newer than the run's start, up to 4 MB each) for every
spelling, and names the first twenty that hold one on its last lines of stderr, behind a
marker of this run's (:meth:`Canaries.files_written` reads them back). That search runs in the
sandbox, after code under test: what it reports is read as hostile input, and a run that
stops it hides only its own files, which never leave the sandbox.

A connection the run attempts is the network sink's business. A value is planted with a
``sh`` wrapper, so the test command and the sandbox are unchanged (its exit status is the
command's); files are written only where none exists already.
"""

from __future__ import annotations

import base64
import secrets
import shlex
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

_UPPER = string.ascii_uppercase + "234567"
_ALNUM = string.ascii_letters + string.digits
MAX_FILES_NAMED = 20
MAX_PATH_CHARS = 200
# The workspace and where tools write (in the sandbox, not here), and $HOME.
SEARCHED = ("/sandbox", "/tmp")  # noqa: S108


def _token(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass(frozen=True)
class Canary:
    """One planted credential: where it is planted (an environment variable or a file under
    ``$HOME``), the value planted, and the random token inside it that is searched for."""

    where: str
    value: str
    token: str


@dataclass(frozen=True)
class Canaries:
    planted: tuple[Canary, ...]
    # Starts each line of the file search's report: random per run, so that no honest test
    # output looks like one.
    marker: str = field(default_factory=lambda: "forgebot-canary-file-" + _token(_ALNUM, 12))

    def wrap(self, command: Sequence[str], searched: Sequence[str] = SEARCHED) -> list[str]:
        """``command`` run by a ``sh`` that writes the canary files (where none exists) and
        exports the canary variables first, and afterwards searches the files the command
        wrote under ``searched`` and ``$HOME``; it exits with the command's status."""
        lines, planted_files = [], []
        for canary in self.planted:
            name = canary.where
            if name.startswith("~/"):
                path = '"$HOME"/' + shlex.quote(name[2:])
                planted_files.append(path)
                lines.append(f'[ -e {path} ] || {{ mkdir -p "$(dirname {path})" && '
                             f"printf '%s\\n' {shlex.quote(canary.value)} > {path}; }} "
                             "2>/dev/null")
            else:
                lines.append(f"export {name}={shlex.quote(canary.value)}")
        patterns = " ".join(f"-e {shlex.quote(spelling)}" for canary in self.planted
                            for spelling in _spellings(canary.token))
        skipped = " ".join(f"! -path {path}" for path in ['"$mark"', *planted_files])
        roots = " ".join(shlex.quote(root) for root in searched)
        search = (f'find {roots} "${{HOME:-/tmp}}" -xdev -type f -newer "$mark" '
                  f"-size -4M {skipped} -exec grep -lF {patterns} {{}} + 2>/dev/null"
                  f" | sort -u | head -n {MAX_FILES_NAMED}"
                  f" | while IFS= read -r f; do printf '%s %s\\n' {self.marker} \"$f\" >&2; done")
        script = "\n".join([*lines, 'mark=$(mktemp) || exit 125', '"$@"', "status=$?", search,
                             'rm -f "$mark"', 'exit "$status"'])
        return ["sh", "-c", script, "forgebot-canaries", *command]

    def files_written(self, stderr: str) -> tuple[str, list[str]]:
        """``stderr`` of a wrapped run without the file search's report, and the files it
        named (paths under the workspace relative to the repository, cut to a readable
        length, printable characters only)."""
        kept: list[str] = []
        named: list[str] = []
        prefix = self.marker + " "
        for line in stderr.splitlines(keepends=True):
            if not line.startswith(prefix):
                kept.append(line)
            elif len(named) < MAX_FILES_NAMED:
                path = line[len(prefix):].rstrip("\n").removeprefix("/sandbox/repo/")
                named.append("".join(c if c.isprintable() else "?" for c in path)
                             [:MAX_PATH_CHARS])
        return "".join(kept), named

    def seen(self, text: str) -> list[str]:
        """Where each canary found in ``text`` was planted (``GITHUB_TOKEN``,
        ``~/.aws/credentials`` ...), in planting order."""
        return [c.where for c in self.planted if any(s in text for s in _spellings(c.token))]

    def seen_in_names(self, names: Iterable[str]) -> list[str]:
        """Where each canary found in a host name was planted: DNS ignores case, so a token
        sent as a label comes back in whatever case the resolver chose."""
        joined = "\n".join(names).lower()
        return [c.where for c in self.planted if c.token.lower() in joined]

    def redact(self, text: str) -> str:
        """``text`` with every spelling of every canary token replaced."""
        for canary in self.planted:
            for spelling in _spellings(canary.token):
                text = text.replace(spelling, "[canary]")
        return text


def plant() -> Canaries:
    """Fresh canaries for one run, shaped like the credentials they stand for."""
    aws_id = "AKIA" + _token(_UPPER, 16)
    tokens = {name: _token(_ALNUM, length) for name, length in (
        ("aws", 40), ("github", 36), ("npm", 36), ("openai", 48), ("database", 24),
        ("aws_file", 40), ("netrc", 32), ("git", 36), ("ssh", 64))}
    return Canaries((
        Canary("AWS_ACCESS_KEY_ID", aws_id, aws_id[4:]),
        Canary("AWS_SECRET_ACCESS_KEY", tokens["aws"], tokens["aws"]),
        Canary("GITHUB_TOKEN", "ghp_" + tokens["github"], tokens["github"]),
        Canary("NPM_TOKEN", "npm_" + tokens["npm"], tokens["npm"]),
        Canary("OPENAI_API_KEY", "sk-" + tokens["openai"], tokens["openai"]),
        Canary("DATABASE_URL",
               f"postgres://app:{tokens['database']}@db.canary.invalid:5432/app",
               tokens["database"]),
        Canary("~/.aws/credentials",
               f"[default]\naws_access_key_id = {aws_id}\n"
               f"aws_secret_access_key = {tokens['aws_file']}", tokens["aws_file"]),
        Canary("~/.netrc",
               f"machine api.canary.invalid login forgebot password {tokens['netrc']}",
               tokens["netrc"]),
        Canary("~/.git-credentials",
               f"https://forgebot:ghp_{tokens['git']}@git.canary.invalid", tokens["git"]),
        Canary("~/.ssh/id_ed25519",
               f"-----BEGIN OPENSSH PRIVATE KEY-----\n{tokens['ssh']}\n"
               "-----END OPENSSH PRIVATE KEY-----", tokens["ssh"]),
    ))


def _spellings(token: str) -> Iterator[str]:
    """``token`` as written, reversed, hex-encoded (both cases), and the part of its base64
    encoding that does not depend on what comes before or after it, at each alignment."""
    yield token
    yield token[::-1]
    raw = token.encode()
    yield raw.hex()
    yield raw.hex().upper()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        core = encoded[4 if shift else 0:len(encoded) - 4]
        if len(core) >= 12:
            yield core
