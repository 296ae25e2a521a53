"""git through its CLI: the mirror cache, worktrees, diffs, commits and pushes.

Every call goes through :func:`run`, which hardens git the same way each time
(Invariant 5): hooks point at ``/dev/null``, no system or global config is read,
fsmonitor and credential helpers are off, nothing prompts, ``HOME`` is a fresh
temporary folder, and a token reaches git only through the environment, read by a
small askpass script that holds no secret itself. Failures become ``GitError`` whose
message names the command and the tail of stderr, with every auth value redacted.

Pushes obey Invariant 7: :func:`push_branch` pushes only a branch under the bot's
prefix and always with ``--force-with-lease`` against the sha the bot last saw.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unicodedata
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bot.errors import GitError

LOCAL_TIMEOUT = 120.0
"""Seconds a git command that touches only local repositories may take."""

NETWORK_TIMEOUT = 600.0
"""Seconds a clone, fetch, push or ls-remote may take."""

USERNAME_ENV = "FORGEBOT_GIT_USERNAME"
PASSWORD_ENV = "FORGEBOT_GIT_PASSWORD"  # noqa: S105 - the name of a variable, not a secret

PROTECTED_BRANCHES = frozenset({"main", "master", "trunk", "develop", "development", "HEAD"})
"""Names the bot never pushes to, whatever the configured prefix."""

# Hardening passed before every subcommand. Command-line ``-c`` beats any config a
# repository carries, so a hostile ``.git/config`` cannot re-enable hooks or helpers.
_HARDENING = (
    "-c", "core.hooksPath=/dev/null",
    "-c", "protocol.file.allow=always",
    "-c", "core.fsmonitor=false",
    "-c", "credential.helper=",
    "-c", "core.pager=cat",
    "-c", "gc.autoDetach=false",
)  # fmt: skip

# Answers git's "Username for ..." and "Password for ..." prompts from the environment.
_ASKPASS_SCRIPT = f"""#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "${USERNAME_ENV}" ;;
  *) printf '%s\\n' "${PASSWORD_ENV}" ;;
esac
"""

_STDERR_TAIL = 2000
_MIN_REDACT_LEN = 4
_SECRET_WORDS = ("PASSWORD", "TOKEN", "SECRET", "AUTH", "KEY", "CREDENTIAL")
_SHA_RE = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_KEY_PART_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SLUG_MAX = 40


@dataclass(frozen=True)
class Identity:
    """The author and committer of the bot's commits."""

    name: str
    email: str


def auth_env(username: str, password: str) -> dict[str, str]:
    """The environment that lets :func:`run` authenticate over HTTPS (read by askpass).

    Forge adapters return this from ``git_auth``; it is never written to disk.
    """
    return {USERNAME_ENV: username, PASSWORD_ENV: password}


# --------------------------------------------------------------------------- runner


def run(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = LOCAL_TIMEOUT,
    retryable: bool = False,
) -> str:
    """Run ``git <args>`` hardened, and return its stdout.

    ``env`` carries auth (see :func:`auth_env`) and identity variables; it is merged
    under the hardening variables, so it cannot switch them off. Text is decoded as
    UTF-8 with ``surrogateescape``, so bytes that are not UTF-8 survive a round trip
    through ``stdin`` of another call. Raises ``GitError`` (``retryable`` when git
    exits non-zero and the caller says a retry can help, and always on a timeout).
    """
    extra = dict(env or {})
    with tempfile.TemporaryDirectory(prefix="forgebot-git-") as home:
        full_env = _git_env(Path(home), extra)
        argv = ["git", *_HARDENING, *args]
        data = stdin.encode("utf-8", "surrogateescape") if stdin is not None else None
        try:
            code, out, err = _execute(argv, cwd or Path(home), full_env, data, timeout)
        except subprocess.TimeoutExpired:
            raise GitError(
                _describe(args, extra, f"timed out after {timeout:g}s"), retryable=True
            ) from None
        except OSError as exc:
            raise GitError(_describe(args, extra, f"could not start git: {exc.strerror}")) from None
    if code != 0:
        tail = err.decode("utf-8", "replace")[-_STDERR_TAIL:].strip()
        raise GitError(_describe(args, extra, f"exit {code}: {tail}"), retryable=retryable)
    return out.decode("utf-8", "surrogateescape")


def _git_env(home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """A closed environment: nothing inherited except PATH, the hardening always last."""
    askpass = home / "askpass.sh"
    askpass.write_text(_ASKPASS_SCRIPT)
    askpass.chmod(0o700)
    return {
        **extra,
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "LANG": "C",
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": str(askpass),
    }


def _execute(
    argv: list[str], cwd: Path, env: dict[str, str], data: bytes | None, timeout: float
) -> tuple[int, bytes, bytes]:
    """Run in its own process group, so a timeout also kills remote helpers and ssh."""
    with subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        return proc.returncode, out, err


def _describe(args: Sequence[str], env: Mapping[str, str], what: str) -> str:
    """The error text: the command (never env values) and what happened.

    Values of credential-like variables are blanked out even if git echoed them or a
    caller passed one as an argument; identity values such as the author name stay.
    """
    message = f"git {' '.join(args)} failed: {what}"
    for key, value in env.items():
        if any(word in key.upper() for word in _SECRET_WORDS) and len(value) >= _MIN_REDACT_LEN:
            message = message.replace(value, "***")
    return message


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ------------------------------------------------------------------ mirror & worktree


def ensure_mirror(cache_dir: Path, key: str, url: str, env: Mapping[str, str]) -> Path:
    """Clone ``url`` as a mirror under ``cache_dir`` once; afterwards fetch and prune.

    ``key`` names the mirror (``/`` makes sub-folders: ``github/owner/repo``). The
    first clone goes to a temporary name and is renamed into place, so a crash never
    leaves a half-made mirror; a lock file serialises processes on the same key.
    Returns the mirror's path (``<cache_dir>/<key>.git``).
    """
    _check_url(url)
    mirror = cache_dir / f"{_check_key(key)}.git"
    with file_lock(mirror.with_name(mirror.name + ".lock")):
        if (mirror / "HEAD").is_file():
            run(["remote", "set-url", "origin", url], cwd=mirror)
            run(
                ["fetch", "--prune", "--quiet", "origin"],
                cwd=mirror,
                env=env,
                timeout=NETWORK_TIMEOUT,
                retryable=True,
            )
        else:
            _clone_mirror(mirror, url, env)
    return mirror


def _clone_mirror(mirror: Path, url: str, env: Mapping[str, str]) -> None:
    mirror.parent.mkdir(parents=True, exist_ok=True)
    # Only this process can have left these: we hold the key's lock.
    for stale in mirror.parent.glob(f".{mirror.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = mirror.with_name(f".{mirror.name}.tmp-{uuid.uuid4().hex}")
    try:
        run(
            ["clone", "--mirror", "--quiet", "--", url, str(tmp)],
            env=env,
            timeout=NETWORK_TIMEOUT,
            retryable=True,
        )
        if mirror.exists():  # a broken leftover without HEAD; replace it
            shutil.rmtree(mirror)
        tmp.rename(mirror)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def add_worktree(mirror: Path, dest: Path, base: str) -> str:
    """Check out ``base`` (a branch or sha of the mirror) at ``dest``; return its sha.

    The worktree has a detached HEAD. A local branch would live among the mirror's
    refs, where the next ``fetch --prune`` deletes it or refuses to update a branch
    that is checked out, and a ``/revise`` from ``forgebot/x`` would collide with the
    mirror's own copy of it; :func:`push_branch` names the remote branch instead.
    A stale ``dest`` from an earlier attempt is removed first, so retries are safe.
    """
    if base.startswith("-"):
        raise GitError(f"refusing base {base!r}: it looks like an option")
    try:
        sha = run(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{base}^{{commit}}"],
            cwd=mirror,
        ).strip()
    except GitError as exc:
        raise GitError(f"{base!r} is not a commit in the mirror {mirror}") from exc
    remove_worktree(mirror, dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    run(["worktree", "add", "--detach", "--quiet", str(dest.absolute()), sha], cwd=mirror)
    return sha


def remove_worktree(mirror: Path, dest: Path) -> None:
    """Remove the worktree at ``dest`` and its registration; nothing happens if missing."""
    if (mirror / "HEAD").is_file():
        with contextlib.suppress(GitError):  # dest was never (or no longer) a worktree
            run(["worktree", "remove", "--force", "--force", str(dest.absolute())], cwd=mirror)
    if dest.exists() or dest.is_symlink():
        shutil.rmtree(dest, ignore_errors=True)
    if (mirror / "HEAD").is_file():
        run(["worktree", "prune"], cwd=mirror)


# ------------------------------------------------------------ diff, apply, commit


def diff(worktree: Path, base_sha: str) -> str:
    """The whole change of the worktree against ``base_sha``, untracked files included.

    Binary-safe (``--binary``, ``--full-index``) and free of anything a repository
    could configure to run (external diff, textconv). Renames are shown as a delete
    and an add, so the policy and secret gates see every added line under its path.
    """
    _check_sha(base_sha)
    run(["add", "--all"], cwd=worktree)
    return run(
        [
            "diff", "--cached", "--binary", "--full-index", "--no-ext-diff",
            "--no-textconv", "--no-color", "--no-renames",
            "--src-prefix=a/", "--dst-prefix=b/", base_sha, "--",
        ],
        cwd=worktree,
    )  # fmt: skip


def read_file(worktree: Path, rev: str, path: str) -> str:
    """The content of ``path`` at commit ``rev``, as stored (no filters, no textconv);
    bytes that are not UTF-8 kept as surrogate escapes."""
    return run(["cat-file", "blob", f"{_check_sha(rev)}:{path}"], cwd=worktree)


def apply_patch(worktree: Path, patch: str) -> None:
    """Apply ``patch`` to the worktree and its index.

    No ``--unsafe-paths``: git refuses paths outside the worktree and paths through a
    symbolic link. Raises ``GitError`` when the patch does not apply (or is empty).
    """
    run(["apply", "--index", "--whitespace=nowarn", "-"], cwd=worktree, stdin=patch)


def commit(worktree: Path, message: str, identity: Identity) -> str:
    """Commit everything in the worktree as ``identity`` and return the new sha.

    An empty change is refused by git and raises ``GitError``.
    """
    env = {
        "GIT_AUTHOR_NAME": identity.name,
        "GIT_AUTHOR_EMAIL": identity.email,
        "GIT_COMMITTER_NAME": identity.name,
        "GIT_COMMITTER_EMAIL": identity.email,
    }
    run(["add", "--all"], cwd=worktree)
    # The message goes through stdin, so it never shows in an argument list or error.
    run(
        ["commit", "--quiet", "--no-verify", "--no-gpg-sign", "--file=-"],
        cwd=worktree,
        env=env,
        stdin=message,
    )
    return run(["rev-parse", "HEAD"], cwd=worktree).strip()


# ------------------------------------------------------------------------ remote


def push_branch(
    worktree: Path,
    url: str,
    branch: str,
    env: Mapping[str, str],
    expect_remote_sha: str | None,
    *,
    prefix: str,
) -> None:
    """Push HEAD to ``refs/heads/<branch>`` only if the remote branch is still as expected.

    ``expect_remote_sha`` is the sha the bot last pushed (``None``: the branch must not
    exist yet). If anyone else pushed meanwhile, git rejects the lease and this raises
    a non-retryable ``GitError``. ``branch`` must start with ``prefix`` and may never be
    a protected name (Invariant 7).
    """
    check_bot_branch(branch, prefix)
    _check_url(url)
    expected = ""
    if expect_remote_sha is not None:
        expected = _check_sha(expect_remote_sha)
    ref = f"refs/heads/{branch}"
    try:
        run(
            ["push", "--quiet", "--no-verify",
             f"--force-with-lease={ref}:{expected}", url, f"HEAD:{ref}"],
            cwd=worktree, env=env, timeout=NETWORK_TIMEOUT, retryable=True,
        )  # fmt: skip
    except GitError as exc:
        if "stale info" in str(exc):  # what git says when a lease does not hold
            raise GitError(
                f"not pushing {branch}: the remote branch is not at the expected "
                f"{expected or 'nothing'} (someone else pushed to it)",
                retryable=False,
            ) from exc
        raise


def remote_branch_sha(
    url: str, branch: str, env: Mapping[str, str], *, timeout: float = NETWORK_TIMEOUT
) -> str | None:
    """The sha of ``refs/heads/<branch>`` on the remote, or ``None`` if it does not exist."""
    _check_url(url)
    ref = f"refs/heads/{branch}"
    out = run(["ls-remote", "--heads", "--", url, ref], env=env, timeout=timeout, retryable=True)
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name == ref:  # ls-remote matches patterns by their tail; want this exact ref
            return sha
    return None


def check_bot_branch(branch: str, prefix: str) -> None:
    """Raise ``GitError`` unless ``branch`` is one the bot may push: under ``prefix``,
    with something after it, not protected, and a valid branch name."""
    if not prefix or not branch.startswith(prefix) or len(branch) == len(prefix):
        raise GitError(f"refusing to push {branch!r}: not a bot branch under {prefix!r}")
    if branch in PROTECTED_BRANCHES or branch.startswith("-"):
        raise GitError(f"refusing to push {branch!r}: a protected branch")
    run(["check-ref-format", "--branch", branch])


def branch_name(prefix: str, number: int, title: str) -> str:
    """``<prefix><number>-<slug>`` with the slug made of lowercase ASCII, digits and ``-``.

    ``branch_name("forgebot/", 12, "Add OAuth login!")`` is ``forgebot/12-add-oauth-login``.
    The slug is at most 40 characters and never empty.
    """
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    slug = slug[:_SLUG_MAX].rstrip("-") or "change"
    return f"{prefix}{number}-{slug}"


# --------------------------------------------------------------------- validation


def _check_sha(sha: str) -> str:
    if not _SHA_RE.fullmatch(sha):
        raise GitError(f"not a full commit sha: {sha!r}")
    return sha


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not all(_KEY_PART_RE.fullmatch(p) and p not in {".", ".."} for p in parts):
        raise GitError(f"bad mirror key {key!r}: use letters, digits, '.', '_', '-' and '/'")
    return key


def _check_url(url: str) -> None:
    """Refuse option-like URLs and URLs that carry a password (Invariant 5)."""
    if url.startswith("-"):
        raise GitError("refusing a remote URL that starts with '-'")
    with contextlib.suppress(ValueError):
        if urlsplit(url).password:
            # The URL itself is left out of the message: it holds the credential.
            raise GitError("refusing a remote URL with a password in it; use auth_env()")
