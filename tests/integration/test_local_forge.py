"""The local forge on disk, with real git: admin actions, the Forge API, and deliveries."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
import responses

from bot import gitops
from bot.errors import ForgeError
from bot.events import (
    CommentCreated,
    Event,
    IssueLabeled,
    IssueUnlabeled,
    PullClosed,
    Pushed,
    Repo,
    ReviewSubmitted,
)
from bot.forges.base import NewPull
from bot.forges.local import LocalForge, admin
from bot.forges.local.layout import RepoLayout

REPO = "acme/hello"
SECRET = "local-secret-value"
URL = "http://receiver.test/webhooks/local"
BOT = gitops.Identity("forgebot", "bot@forgebot.invalid")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "hello.py").write_text("def hello() -> str:\n    return 'hello'\n")
    (src / "README.md").write_text("# hello\n")
    (src / ".git").mkdir()
    (src / ".git" / "config").write_text("[core]\n")
    (src / "pkg" / "__pycache__").mkdir()
    (src / "pkg" / "__pycache__" / "hello.cpython-311.pyc").write_bytes(b"\0")
    return src


@pytest.fixture
def root(tmp_path: Path, source: Path) -> Path:
    forge_root = tmp_path / "forge"
    admin.init_repo(forge_root, REPO, source)
    return forge_root


@pytest.fixture
def forge(root: Path) -> LocalForge:
    return LocalForge(root, SECRET, bot_user="forgebot")


def push_bot_branch(tmp_path: Path, forge: LocalForge, branch: str) -> str:
    """Do what the pipeline does: mirror, worktree, change, commit, push."""
    mirror = gitops.ensure_mirror(tmp_path / "mirrors", f"local/{REPO}", forge.clone_url(REPO), {})
    work = tmp_path / "work" / branch.replace("/", "-")
    gitops.add_worktree(mirror, work, "main")
    (work / "pkg" / "hello.py").write_text("def hello() -> str:\n    return 'goodbye'\n")
    (work / "tests").mkdir()
    (work / "tests" / "test_hello.py").write_text("def test_x() -> None:\n    pass\n")
    sha = gitops.commit(work, "Say goodbye", BOT)
    gitops.push_branch(work, forge.clone_url(REPO), branch, {}, None, prefix="forgebot/")
    return sha


# ------------------------------------------------------------------- repositories


def test_init_repo_commits_the_folder_without_git_or_pycache(root: Path) -> None:
    bare = root / "acme" / "hello.git"
    files = gitops.run(["ls-tree", "-r", "--name-only", "main"], cwd=bare).split()
    assert files == ["README.md", "pkg/hello.py"]
    assert gitops.run(["symbolic-ref", "HEAD"], cwd=bare).strip() == "refs/heads/main"
    author = gitops.run(["log", "-1", "--format=%an <%ae>"], cwd=bare).strip()
    assert author == "forgebot local <local@forgebot.invalid>"
    assert [p.name for p in (root / "acme").iterdir() if p.name.startswith(".")] == []


def test_init_repo_refuses_an_existing_repo_unless_forced(root: Path, source: Path) -> None:
    admin.create_issue(root, REPO, "old", "", labels=[], author="ada")
    with pytest.raises(ForgeError, match="already exists"):
        admin.init_repo(root, REPO, source)
    admin.init_repo(root, REPO, source, default_branch="trunk", force=True)
    assert not (root / "acme" / "hello" / "issues" / "1.md").exists()
    assert admin.read_default_branch(RepoLayout.of(root, REPO)) == "trunk"


@pytest.mark.parametrize("name", ["nope", "a/b/c", "../x", "a/.git", "a/b.git", "-a/b"])
def test_bad_repository_names_are_refused(tmp_path: Path, source: Path, name: str) -> None:
    with pytest.raises(ForgeError, match="bad repository name"):
        admin.init_repo(tmp_path / "forge", name, source)


def test_missing_repo_and_missing_issue_are_clear_errors(forge: LocalForge) -> None:
    with pytest.raises(ForgeError, match="acme/other does not exist"):
        forge.get_issue("acme/other", 1)
    with pytest.raises(ForgeError, match="no issue or pull request #9"):
        forge.get_issue(REPO, 9)
    with pytest.raises(ForgeError, match="no issue or pull request #9"):
        forge.comment(REPO, 9, "hi")


# ------------------------------------------------------------- issues and comments


def test_create_issue_writes_markdown_and_returns_github_like_deliveries(
    root: Path, forge: LocalForge
) -> None:
    number, deliveries = admin.create_issue(
        root, REPO, "Add a farewell", "Please add goodbye().", labels=["forgebot", "x"],
        author="ada",
    )  # fmt: skip
    assert number == 1
    text = (root / "acme" / "hello" / "issues" / "1.md").read_text()
    assert text.startswith("---\nnumber: 1\ntitle: Add a farewell\n")
    assert text.endswith("---\nPlease add goodbye().")

    assert [(d.event, d.payload["action"]) for d in deliveries] == [
        ("issues", "opened"), ("issues", "labeled"), ("issues", "labeled"),
    ]  # fmt: skip
    body = json.dumps(deliveries[1].payload).encode()
    event = forge.parse({"X-Forgebot-Event": "issues"}, body)
    assert isinstance(event, IssueLabeled)
    assert (event.number, event.label, event.sender, event.labels) == (
        1, "forgebot", "ada", ("forgebot", "x"),
    )  # fmt: skip
    assert event.repo.full_name == REPO
    issue = forge.get_issue(REPO, 1)
    assert (issue.title, issue.body, issue.labels, issue.author) == (
        "Add a farewell", "Please add goodbye().", ("forgebot", "x"), "ada",
    )  # fmt: skip


def test_add_label_raises_one_event_and_none_for_a_label_already_there(root: Path) -> None:
    admin.create_issue(root, REPO, "t", "b", labels=[], author="ada")
    deliveries = admin.add_label(root, REPO, 1, "forgebot", "grace")
    assert [d.payload["label"]["name"] for d in deliveries] == ["forgebot"]
    assert deliveries[0].payload["sender"]["login"] == "grace"
    assert admin.add_label(root, REPO, 1, "forgebot", "grace") == []
    with pytest.raises(ForgeError, match="no issue #5"):
        admin.add_label(root, REPO, 5, "forgebot", "grace")


def test_comments_are_numbered_per_item(root: Path, forge: LocalForge) -> None:
    admin.create_issue(root, REPO, "t", "b", labels=[], author="ada")
    [delivery] = admin.add_comment(root, REPO, 1, "/status", "grace")
    forge.comment(REPO, 1, "Working on it.")
    comments = root / "acme" / "hello" / "comments"
    assert sorted(p.name for p in comments.iterdir()) == ["1-1.md", "1-2.md"]
    assert "author: forgebot\n" in (comments / "1-2.md").read_text()
    body = json.dumps(delivery.payload).encode()
    event = forge.parse({"X-Forgebot-Event": delivery.event}, body)
    assert isinstance(event, CommentCreated)
    assert (event.repo.full_name, event.number, event.body, event.author, event.is_pull) == (
        REPO, 1, "/status", "grace", False,
    )  # fmt: skip


def test_numbers_are_unique_across_processes(root: Path) -> None:
    script = textwrap.dedent(f"""
        from pathlib import Path
        from bot.forges.local import admin
        for i in range(5):
            admin.create_issue(Path({str(root)!r}), {REPO!r}, f"t{{i}}", "", labels=[], author="p")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    issues = root / "acme" / "hello" / "issues"
    assert sorted(int(p.stem) for p in issues.glob("*.md")) == list(range(1, 21))


# ------------------------------------------------------------------ pull requests


def test_pulls_share_the_number_sequence_and_open_pull_is_idempotent(
    tmp_path: Path, root: Path, forge: LocalForge
) -> None:
    admin.create_issue(root, REPO, "first", "", labels=[], author="ada")
    branch = "forgebot/1-first"
    push_bot_branch(tmp_path, forge, branch)
    assert forge.find_pull(REPO, branch) is None

    new = NewPull(head=branch, base="main", title="Fix #1", body="Closes #1", draft=True)
    pull = forge.open_pull(REPO, new)
    assert (pull.number, pull.head, pull.base, pull.draft) == (2, branch, "main", True)
    assert pull.url.startswith("file://")
    assert forge.open_pull(REPO, new) == pull
    assert forge.find_pull(REPO, branch) == pull
    assert admin.create_issue(root, REPO, "second", "", labels=[], author="ada")[0] == 3

    updated = forge.update_pull(REPO, 2, body="New body", draft=False)
    assert (updated.body, updated.draft) == ("New body", False)
    assert forge.find_pull(REPO, branch) == updated
    assert [p["number"] for p in admin.list_pulls(root, REPO)] == [2]


def test_open_pull_needs_both_branches(forge: LocalForge) -> None:
    new = NewPull(head="forgebot/9-nothing", base="main", title="t", body="b", draft=False)
    with pytest.raises(ForgeError, match="no branch 'forgebot/9-nothing'"):
        forge.open_pull(REPO, new)


def test_show_pull_gives_the_diff_of_the_pushed_branch(
    tmp_path: Path, root: Path, forge: LocalForge
) -> None:
    branch = "forgebot/1-goodbye"
    push_bot_branch(tmp_path, forge, branch)
    forge.open_pull(REPO, NewPull(branch, "main", "Say goodbye", "body", False))
    front, body, diff = admin.show_pull(root, REPO, 1)
    assert (front["head"], front["state"], body) == (branch, "open", "body")
    assert "-    return 'hello'\n+    return 'goodbye'" in diff
    assert "b/tests/test_hello.py" in diff
    [delivery] = admin.add_comment(root, REPO, 1, "/revise shorter", "ada")
    assert "pull_request" in delivery.payload["issue"]
    with pytest.raises(ForgeError, match="no pull request #7"):
        admin.show_pull(root, REPO, 7)


def test_set_status_and_permission(tmp_path: Path, root: Path, forge: LocalForge) -> None:
    sha = push_bot_branch(tmp_path, forge, "forgebot/1-x")
    forge.set_status(REPO, sha, "pending", "forgebot job 1: running")
    forge.set_status(REPO, sha, "success", "forgebot job 1: submitted")
    status = (root / "acme" / "hello" / "statuses" / f"{sha}.yml").read_text()
    assert "state: success" in status
    with pytest.raises(ForgeError):
        forge.set_status(REPO, sha, "great", "")

    assert forge.permission(REPO, "anyone") == "admin"
    (root / "permissions.yml").write_text("ada: write\ngrace: read\n")
    assert forge.permission(REPO, "ada") == "write"
    assert forge.permission(REPO, "mallory") == "none"
    (root / "permissions.yml").write_text("ada: owner\n")
    with pytest.raises(ForgeError, match="permission"):
        forge.permission(REPO, "ada")


def test_git_auth_is_empty_and_clone_url_is_the_bare_repo(root: Path, forge: LocalForge) -> None:
    assert forge.git_auth(REPO) == {}
    assert Path(forge.clone_url(REPO)) == root / "acme" / "hello.git"


# ---------------------------------------------------------------------- delivery


@responses.activate
def test_deliver_posts_a_signed_webhook_the_forge_accepts(root: Path, forge: LocalForge) -> None:
    seen: list[tuple[str | None, Event | None]] = []

    def receiver(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = request.body if isinstance(request.body, bytes) else b""
        headers = dict(request.headers)
        if not forge.verify(headers, body):
            return 401, {}, "bad signature"
        seen.append((forge.delivery_id(headers), forge.parse(headers, body)))
        return 202, {}, "{}"

    responses.add_callback(responses.POST, URL, callback=receiver)
    _, deliveries = admin.create_issue(root, REPO, "t", "b", labels=["forgebot"], author="ada")
    for d in deliveries:
        assert admin.deliver(URL, SECRET, d.event, d.payload) == 202
    opened, labeled = (event for _, event in seen)
    assert opened is None  # "opened" starts nothing
    assert isinstance(labeled, IssueLabeled)
    assert labeled.label == "forgebot"
    assert len({delivery for delivery, _ in seen}) == 2

    with pytest.raises(ForgeError, match="answered 401") as info:
        admin.deliver(URL, "wrong-secret", "issues", deliveries[1].payload)
    assert "wrong-secret" not in str(info.value)


@responses.activate
def test_deliver_to_a_receiver_that_is_not_running_says_how_to_start_it() -> None:
    responses.add(responses.POST, URL, body=requests.ConnectionError("refused"))
    with pytest.raises(ForgeError, match="may not be running") as info:
        admin.deliver(URL, SECRET, "issues", {"action": "opened"})
    assert "forgebot serve" in str(info.value)
    assert SECRET not in str(info.value)
    assert info.value.retryable
    with pytest.raises(ForgeError, match="secret"):
        admin.deliver(URL, "", "issues", {})


def test_upsert_comment_edits_the_bots_own_comment(tmp_path):
    from bot.forges.local import LocalForge, admin

    root = tmp_path / "forge"
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    admin.init_repo(root, "o/r", src)
    number, _ = admin.create_issue(root, "o/r", "t", "b", labels=[], author="ada")
    forge = LocalForge(root, "s")
    admin.add_comment(root, "o/r", number, "<!-- status --> from a human", "ada")
    forge.upsert_comment("o/r", number, "<!-- status -->", "<!-- status --> one")
    forge.upsert_comment("o/r", number, "<!-- status -->", "<!-- status --> two")
    _, _, comments = admin.show_issue(root, "o/r", number)
    assert [body.strip() for _, body in comments] == [
        "<!-- status --> from a human", "<!-- status --> two"]
    forge.add_labels("o/r", number, ["a", "b"])
    forge.add_labels("o/r", number, ["b", "c"])
    forge.remove_label("o/r", number, "a")
    forge.remove_label("o/r", number, "zzz")
    assert forge.get_issue("o/r", number).labels == ("b", "c")
    forge.react("o/r", number, None, "eyes")
    head = admin.gitops.run(["rev-parse", "main"], cwd=root / "o" / "r.git").strip()
    assert forge.changed_files("o/r", head, head) == []


# ------------------------------------------------------------------------- lifecycle


def parse(forge: LocalForge, delivery: admin.Delivery) -> Event | None:
    body = json.dumps(delivery.payload).encode()
    return forge.parse({"X-Forgebot-Event": delivery.event}, body)


def test_close_issue_comments_and_closes_once(root: Path, forge: LocalForge) -> None:
    admin.create_issue(root, REPO, "Add a farewell", "", labels=[], author="ada")
    forge.close_issue(REPO, 1, "Done in #2.")
    forge.close_issue(REPO, 1)
    front, _, comments = admin.show_issue(root, REPO, 1)
    assert front["state"] == "closed"
    assert [body for _, body in comments] == ["Done in #2."]
    assert admin.close_issue(root, REPO, 1, "ada") == []  # already closed: no event


def test_delete_branch_removes_it_and_a_gone_branch_is_fine(
    tmp_path: Path, forge: LocalForge
) -> None:
    push_bot_branch(tmp_path, forge, "forgebot/1-x")
    forge.delete_branch(REPO, "forgebot/1-x")
    forge.delete_branch(REPO, "forgebot/1-x")
    with pytest.raises(ForgeError, match="no branch"):
        forge.open_pull(REPO, NewPull(head="forgebot/1-x", base="main", title="t", body="",
                                      draft=False))
    with pytest.raises(ForgeError, match="not a branch name"):
        forge.delete_branch(REPO, "bad..name")


def test_merge_pull_makes_a_merge_commit_and_a_merged_delivery(
    tmp_path: Path, root: Path, forge: LocalForge
) -> None:
    push_bot_branch(tmp_path, forge, "forgebot/1-x")
    pull = forge.open_pull(REPO, NewPull(head="forgebot/1-x", base="main", title="t", body="",
                                         draft=False))
    [delivery] = admin.merge_pull(root, REPO, pull.number, "ada")
    event = parse(forge, delivery)
    assert isinstance(event, PullClosed) and event.merged and event.head == "forgebot/1-x"
    git_dir = RepoLayout.of(root, REPO).git_dir
    parents = gitops.run(["rev-list", "--parents", "-n", "1", "main"], cwd=git_dir).split()
    assert len(parents) == 3  # a merge commit: itself and two parents
    assert "goodbye" in gitops.run(["show", "main:pkg/hello.py"], cwd=git_dir)
    assert forge.find_pull(REPO, "forgebot/1-x") is None
    with pytest.raises(ForgeError, match="is merged"):
        admin.close_pull(root, REPO, pull.number, "ada")


def test_close_pull_and_review_raise_their_events(
    tmp_path: Path, root: Path, forge: LocalForge
) -> None:
    push_bot_branch(tmp_path, forge, "forgebot/1-x")
    pull = forge.open_pull(REPO, NewPull(head="forgebot/1-x", base="main", title="t", body="",
                                         draft=False))
    [review] = admin.review_pull(root, REPO, pull.number, state="changes_requested",
                                 body="Shorter, please.", author="ada")
    event = parse(forge, review)
    assert isinstance(event, ReviewSubmitted)
    assert (event.state, event.body, event.author) == ("changes_requested", "Shorter, please.",
                                                       "ada")
    with pytest.raises(ForgeError, match="unknown review state"):
        admin.review_pull(root, REPO, pull.number, state="lgtm", body="", author="ada")
    [closed] = admin.close_pull(root, REPO, pull.number, "ada")
    event = parse(forge, closed)
    assert isinstance(event, PullClosed) and not event.merged


def test_push_files_is_a_persons_push_with_its_file_lists(
    tmp_path: Path, root: Path, forge: LocalForge
) -> None:
    before = push_bot_branch(tmp_path, forge, "forgebot/1-x")
    [push] = admin.push_files(root, REPO, "forgebot/1-x",
                              {"README.md": "# changed\n", "NEW.md": "new\n"},
                              message="by hand", pusher="ada")
    event = parse(forge, push)
    assert isinstance(event, Pushed)
    assert (event.before, event.pusher) == (before, "ada")
    assert (event.added, event.modified) == (("NEW.md",), ("README.md",))
    git_dir = RepoLayout.of(root, REPO).git_dir
    assert gitops.run(["rev-parse", "refs/heads/forgebot/1-x"], cwd=git_dir).strip() == event.after


def test_remove_label_raises_one_event_and_none_for_a_label_not_there(root: Path,
                                                                        forge: LocalForge) -> None:
    admin.create_issue(root, REPO, "t", "", labels=["forgebot", "bug"], author="ada")
    [removed] = admin.remove_label(root, REPO, 1, "forgebot", "ada")
    assert parse(forge, removed) == IssueUnlabeled(
        repo=Repo("local", REPO), number=1, label="forgebot", sender="ada", labels=("bug",))
    assert admin.remove_label(root, REPO, 1, "forgebot", "ada") == []
