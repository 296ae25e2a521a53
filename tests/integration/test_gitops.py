"""bot.gitops against real git in temporary folders."""

from __future__ import annotations

import base64
import http.server
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import gitops
from bot.errors import GitError

PREFIX = "forgebot/"
BOT = gitops.Identity("forgebot", "bot@forgebot.invalid")
HUMAN = gitops.Identity("Someone Else", "someone@example.invalid")
TOKEN = "tok-3f9a1c77e2b84d5e"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def commit_all(repo: Path, message: str, identity: gitops.Identity = HUMAN) -> str:
    return gitops.commit(repo, message, identity)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare repository with one commit on main (README.md, src/app.py)."""
    bare = tmp_path / "origin.git"
    gitops.run(["init", "--bare", "--quiet", "--initial-branch=main", str(bare)])
    seed = tmp_path / "seed"
    gitops.run(["clone", "--quiet", str(bare), str(seed)])
    write(seed / "README.md", "hello\n")
    write(seed / "src" / "app.py", "print('hi')\n")
    commit_all(seed, "initial")
    gitops.run(["push", "--quiet", "origin", "HEAD:refs/heads/main"], cwd=seed)
    return bare


def human_push(origin: Path, tmp_path: Path, branch: str, filename: str) -> str:
    """Someone other than the bot commits on ``branch`` and pushes it."""
    clone = tmp_path / f"human-{filename}"
    gitops.run(["clone", "--quiet", str(origin), str(clone)])
    write(clone / filename, "theirs\n")
    sha = commit_all(clone, f"add {filename}")
    gitops.run(["push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}"], cwd=clone)
    return sha


def rev(repo: Path, ref: str) -> str:
    return gitops.run(["rev-parse", ref], cwd=repo).strip()


@pytest.fixture
def mirror(tmp_path: Path, origin: Path) -> Path:
    return gitops.ensure_mirror(tmp_path / "cache", "local/owner/repo", str(origin), {})


# ------------------------------------------------------------------ mirror & worktree


def test_mirror_then_update_sees_new_commits_and_prunes(tmp_path: Path, origin: Path) -> None:
    cache = tmp_path / "cache"
    mirror = gitops.ensure_mirror(cache, "local/owner/repo", str(origin), {})
    assert mirror == cache / "local" / "owner" / "repo.git"
    first = rev(mirror, "main")
    assert first == rev(origin, "main")

    human_push(origin, tmp_path, "main", "new.txt")
    human_push(origin, tmp_path, "feature/gone", "gone.txt")
    gitops.ensure_mirror(cache, "local/owner/repo", str(origin), {})
    assert rev(mirror, "main") == rev(origin, "main") != first
    assert rev(mirror, "feature/gone") == rev(origin, "feature/gone")

    gitops.run(["branch", "-D", "feature/gone"], cwd=origin)
    gitops.ensure_mirror(cache, "local/owner/repo", str(origin), {})
    with pytest.raises(GitError):
        rev(mirror, "refs/heads/feature/gone")
    # Only the finished mirror and its lock remain: the temporary clone was renamed away.
    assert sorted(p.name for p in mirror.parent.iterdir()) == ["repo.git", "repo.git.lock"]


def test_failed_clone_leaves_nothing_half_made(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(GitError) as info:
        gitops.ensure_mirror(cache, "x/y", str(tmp_path / "missing.git"), {})
    assert info.value.retryable
    assert [p.name for p in (cache / "x").iterdir()] == ["y.git.lock"]


@pytest.mark.parametrize("key", ["../escape", "a//b", "/abs", "a/./b", "-opt"])
def test_mirror_key_must_stay_inside_the_cache(tmp_path: Path, origin: Path, key: str) -> None:
    with pytest.raises(GitError, match="bad mirror key"):
        gitops.ensure_mirror(tmp_path / "cache", key, str(origin), {})


def test_url_with_password_is_refused_without_echoing_it(tmp_path: Path) -> None:
    url = f"https://x-access-token:{TOKEN}@example.invalid/o/r.git"
    with pytest.raises(GitError) as info:
        gitops.ensure_mirror(tmp_path / "cache", "o/r", url, {})
    assert TOKEN not in str(info.value)


def test_worktree_is_checked_out_at_base_and_retry_is_idempotent(
    tmp_path: Path, mirror: Path
) -> None:
    dest = tmp_path / "work" / "job-1"
    base = gitops.add_worktree(mirror, dest, "main")
    assert base == rev(mirror, "main")
    assert (dest / "README.md").read_text() == "hello\n"
    write(dest / "leftover.txt", "from a crashed attempt\n")

    assert gitops.add_worktree(mirror, dest, "main") == base
    assert not (dest / "leftover.txt").exists()

    gitops.remove_worktree(mirror, dest)
    assert not dest.exists()
    gitops.remove_worktree(mirror, dest)  # safe when already gone
    assert "job-1" not in gitops.run(["worktree", "list"], cwd=mirror)


def test_fetch_still_works_while_a_worktree_is_out(
    tmp_path: Path, origin: Path, mirror: Path
) -> None:
    gitops.add_worktree(mirror, tmp_path / "wt", "main")
    human_push(origin, tmp_path, "main", "later.txt")
    gitops.ensure_mirror(tmp_path / "cache", "local/owner/repo", str(origin), {})
    assert rev(mirror, "main") == rev(origin, "main")


def test_unknown_base_is_a_clear_error(tmp_path: Path, mirror: Path) -> None:
    with pytest.raises(GitError, match="not a commit"):
        gitops.add_worktree(mirror, tmp_path / "wt", "no-such-branch")


# ------------------------------------------------------------ diff, apply, commit


def make_change(worktree: Path) -> None:
    write(worktree / "src" / "app.py", "print('hello')\n")
    write(worktree / "src" / "new_module.py", "VALUE = 1\n")
    (worktree / "logo.bin").write_bytes(bytes(range(256)) * 4)
    (worktree / "latin1.txt").write_bytes(b"caf\xe9\n")  # text, but not UTF-8
    (worktree / "README.md").unlink()


def test_diff_includes_untracked_and_binary_files(tmp_path: Path, mirror: Path) -> None:
    dest = tmp_path / "wt"
    base = gitops.add_worktree(mirror, dest, "main")
    make_change(dest)
    patch = gitops.diff(dest, base)
    assert "diff --git a/src/new_module.py b/src/new_module.py" in patch
    assert "+VALUE = 1" in patch
    assert "GIT binary patch" in patch
    assert "deleted file mode" in patch


def test_apply_on_a_clean_worktree_gives_the_same_diff(tmp_path: Path, mirror: Path) -> None:
    untrusted = tmp_path / "untrusted"
    base = gitops.add_worktree(mirror, untrusted, "main")
    make_change(untrusted)
    patch = gitops.diff(untrusted, base)

    clean = tmp_path / "clean"
    gitops.add_worktree(mirror, clean, "main")
    gitops.apply_patch(clean, patch)
    assert gitops.diff(clean, base) == patch
    assert (clean / "logo.bin").read_bytes() == bytes(range(256)) * 4
    assert (clean / "latin1.txt").read_bytes() == b"caf\xe9\n"


def test_apply_refuses_a_bad_patch_and_paths_outside(tmp_path: Path, mirror: Path) -> None:
    dest = tmp_path / "wt"
    gitops.add_worktree(mirror, dest, "main")
    with pytest.raises(GitError):
        gitops.apply_patch(dest, "this is not a patch\n")
    escape = (
        "diff --git a/../outside.txt b/../outside.txt\n"
        "new file mode 100644\n--- /dev/null\n+++ b/../outside.txt\n@@ -0,0 +1 @@\n+x\n"
    )
    with pytest.raises(GitError):
        gitops.apply_patch(dest, escape)
    assert not (tmp_path / "outside.txt").exists()


def test_commit_returns_the_new_sha_and_refuses_an_empty_change(
    tmp_path: Path, mirror: Path
) -> None:
    dest = tmp_path / "wt"
    base = gitops.add_worktree(mirror, dest, "main")
    make_change(dest)
    sha = gitops.commit(dest, "Implement #1\n\nBody.", BOT)
    assert sha == rev(dest, "HEAD") != base
    author = gitops.run(["log", "-1", "--format=%an <%ae>|%s"], cwd=dest).strip()
    assert author == "forgebot <bot@forgebot.invalid>|Implement #1"
    with pytest.raises(GitError):
        gitops.commit(dest, "nothing", BOT)


# ------------------------------------------------------------------------ push


def bot_commit(tmp_path: Path, mirror: Path, name: str) -> Path:
    dest = tmp_path / name
    gitops.add_worktree(mirror, dest, "main")
    write(dest / f"{name}.txt", f"{name}\n")
    gitops.commit(dest, name, BOT)
    return dest


def test_push_creates_the_branch_then_updates_it_with_a_lease(
    tmp_path: Path, origin: Path, mirror: Path
) -> None:
    branch = gitops.branch_name(PREFIX, 7, "Add a thing")
    url = str(origin)
    assert gitops.remote_branch_sha(url, branch, {}) is None

    first = bot_commit(tmp_path, mirror, "first")
    gitops.push_branch(first, url, branch, {}, None, prefix=PREFIX)
    pushed = gitops.remote_branch_sha(url, branch, {})
    assert pushed == rev(first, "HEAD")

    # A new attempt from main rewrites the bot's own branch: allowed, the lease holds.
    second = bot_commit(tmp_path, mirror, "second")
    gitops.push_branch(second, url, branch, {}, pushed, prefix=PREFIX)
    assert gitops.remote_branch_sha(url, branch, {}) == rev(second, "HEAD")


def test_force_with_lease_refuses_when_someone_else_pushed(
    tmp_path: Path, origin: Path, mirror: Path
) -> None:
    branch = "forgebot/8-x"
    url = str(origin)
    first = bot_commit(tmp_path, mirror, "first")
    gitops.push_branch(first, url, branch, {}, None, prefix=PREFIX)
    ours = rev(first, "HEAD")
    theirs = human_push(origin, tmp_path, branch, "human.txt")

    second = bot_commit(tmp_path, mirror, "second")
    with pytest.raises(GitError, match="someone else pushed") as info:
        gitops.push_branch(second, url, branch, {}, ours, prefix=PREFIX)
    assert not info.value.retryable
    # "Must not exist yet" is a lease too.
    with pytest.raises(GitError, match="someone else pushed"):
        gitops.push_branch(second, url, branch, {}, None, prefix=PREFIX)
    assert gitops.remote_branch_sha(url, branch, {}) == theirs


@pytest.mark.parametrize(
    ("branch", "prefix"),
    [
        ("main", PREFIX),
        ("feature/x", PREFIX),
        ("forgebot/", PREFIX),
        ("forgebot/bad..name", PREFIX),
        ("main", ""),
        ("main", "ma"),
    ],
)
def test_push_refuses_branches_the_bot_does_not_own(
    tmp_path: Path, origin: Path, mirror: Path, branch: str, prefix: str
) -> None:
    dest = bot_commit(tmp_path, mirror, "wt")
    with pytest.raises(GitError):
        gitops.push_branch(dest, str(origin), branch, {}, None, prefix=prefix)
    assert rev(origin, "main") == rev(mirror, "main")


def test_branch_name() -> None:
    assert gitops.branch_name(PREFIX, 12, "Add OAuth login!") == "forgebot/12-add-oauth-login"
    assert gitops.branch_name(PREFIX, 3, "Über  --  café") == "forgebot/3-uber-cafe"
    assert gitops.branch_name(PREFIX, 4, "日本語") == "forgebot/4-change"
    long = gitops.branch_name(PREFIX, 5, "word " * 30)
    slug = long.removeprefix("forgebot/5-")
    assert len(slug) <= 40
    assert not slug.endswith("-")
    assert set(slug) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


# ----------------------------------------------------------------------- hardening

HOOKS = ("post-checkout", "pre-commit", "post-commit", "commit-msg", "pre-push")


def plant_hooks(hooks_dir: Path, marker: Path) -> None:
    hooks_dir.mkdir(parents=True, exist_ok=True)
    for hook in HOOKS:
        script = hooks_dir / hook
        script.write_text(f"#!/bin/sh\necho {hook} >> {marker}\n")
        script.chmod(0o755)


def test_hooks_in_the_repository_are_not_run(tmp_path: Path, mirror: Path, origin: Path) -> None:
    marker = tmp_path / "hook-ran"
    plant_hooks(mirror / "hooks", marker)
    # A repository's own config pointing at hooks is overridden too.
    evil = tmp_path / "evil-hooks"
    plant_hooks(evil, marker)
    gitops.run(["config", "core.hooksPath", str(evil)], cwd=mirror)

    dest = tmp_path / "wt"
    gitops.add_worktree(mirror, dest, "main")
    write(dest / "x.txt", "x\n")
    gitops.commit(dest, "x", BOT)
    gitops.push_branch(dest, str(origin), "forgebot/1-x", {}, None, prefix=PREFIX)
    assert not marker.exists()

    # The same hooks do run under plain git, so the check above is not vacuous.
    write(dest / "y.txt", "y\n")
    subprocess.run(["git", "add", "y.txt"], cwd=dest, check=True)
    plain = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "y"]
    subprocess.run(plain, cwd=dest, check=True)
    assert "pre-commit" in marker.read_text()


class _AuthProbe(http.server.BaseHTTPRequestHandler):
    """Answers every request 401 and remembers the Authorization headers it saw."""

    seen: list[str] = []  # noqa: RUF012 - reset per test by the fixture

    def do_GET(self) -> None:
        _AuthProbe.seen.append(self.headers.get("Authorization", ""))
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="probe"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def auth_server() -> Iterator[str]:
    _AuthProbe.seen = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _AuthProbe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/o/r.git"
    finally:
        server.shutdown()
        server.server_close()


def test_token_travels_by_askpass_and_never_into_the_error(auth_server: str) -> None:
    env = gitops.auth_env("x-access-token", TOKEN)
    with pytest.raises(GitError) as info:
        gitops.remote_branch_sha(auth_server, "forgebot/1-x", env, timeout=30)
    expected = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert f"Basic {expected}" in _AuthProbe.seen
    assert TOKEN not in str(info.value)
    assert "ls-remote" in str(info.value)


def test_a_hanging_remote_times_out_as_a_retryable_error() -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/o/r.git"
        with pytest.raises(GitError, match="timed out after 1s") as info:
            gitops.remote_branch_sha(url, "forgebot/1-x", {}, timeout=1)
    assert info.value.retryable


def test_error_message_redacts_env_values_even_from_arguments(tmp_path: Path) -> None:
    with pytest.raises(GitError) as info:
        gitops.run(
            ["rev-parse", "--verify", TOKEN, "forgebot"],
            cwd=tmp_path,
            env={**gitops.auth_env("forgebot", TOKEN), "GITLAB_TOKEN": "glpat-abcdef"},
        )
    message = str(info.value)
    assert TOKEN not in message
    assert "git rev-parse --verify *** forgebot failed" in message
