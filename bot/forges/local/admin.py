"""What the ``forgebot local …`` commands do: create repositories, issues, labels and
comments, show pull requests, and deliver the webhooks those actions raise.

Each action that a real forge would announce returns its deliveries instead of sending
them, so the caller decides where (and whether) to post them with :func:`deliver`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bot import gitops
from bot.errors import ForgeError, GitError
from bot.forges.local import webhook
from bot.forges.local.layout import (
    ISSUES,
    PULLS,
    Document,
    RepoLayout,
    comment_id,
    create_item,
    list_documents,
    now,
    read_document,
    require_item,
    write_document,
)
from bot.forges.local.layout import add_comment as write_comment

INITIAL_AUTHOR = gitops.Identity("forgebot local", "local@forgebot.invalid")
"""Who makes the first commit of a repository created by :func:`init_repo`."""

_IGNORED = shutil.ignore_patterns(".git", "__pycache__")
REVIEW_STATES = ("approved", "changes_requested", "commented")


@dataclass(frozen=True)
class Delivery:
    """One webhook to send: the ``X-Forgebot-Event`` name and the JSON body."""

    event: str
    payload: dict[str, Any]


# ------------------------------------------------------------------- repositories


def init_repo(
    root: Path,
    full_name: str,
    source_dir: Path,
    default_branch: str = "main",
    *,
    force: bool = False,
) -> Path:
    """Create ``<root>/<owner>/<repo>.git`` with the files of ``source_dir`` as its first commit.

    ``.git`` and ``__pycache__`` are left out. Refuses an existing repository unless
    ``force``, which replaces it together with its issues, pulls and comments. The new
    repository is built aside and renamed into place. Returns the bare repository's path.
    """
    layout = RepoLayout.of(root, full_name)
    if not source_dir.is_dir():
        raise ForgeError(f"{source_dir} is not a folder")
    if (layout.git_dir.exists() or layout.meta_dir.exists()) and not force:
        raise ForgeError(f"local repository {full_name} already exists (use force to replace it)")
    layout.git_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=layout.git_dir.parent, prefix=".init-") as tmp:
        bare = Path(tmp) / "repo.git"
        try:
            _build_bare(source_dir, Path(tmp) / "tree", bare, default_branch)
        except GitError as exc:
            raise ForgeError(f"could not create {full_name}: {exc}") from exc
        shutil.rmtree(layout.git_dir, ignore_errors=True)
        shutil.rmtree(layout.meta_dir, ignore_errors=True)
        bare.rename(layout.git_dir)
    for kind in (ISSUES, PULLS, "comments", "statuses"):
        (layout.meta_dir / kind).mkdir(parents=True, exist_ok=True)
    return layout.git_dir


def _build_bare(source_dir: Path, tree: Path, bare: Path, default_branch: str) -> None:
    gitops.run(["check-ref-format", "--branch", default_branch])
    shutil.copytree(source_dir, tree, symlinks=True, ignore=_IGNORED)
    if not any(tree.iterdir()):
        raise ForgeError(f"{source_dir} has no files to put in the first commit")
    gitops.run(["init", "--quiet", f"--initial-branch={default_branch}", str(tree)])
    gitops.commit(tree, "Initial commit", INITIAL_AUTHOR)
    gitops.run(["init", "--bare", "--quiet", f"--initial-branch={default_branch}", str(bare)])
    gitops.run(["push", "--quiet", str(bare), f"HEAD:refs/heads/{default_branch}"], cwd=tree)


def read_default_branch(layout: RepoLayout) -> str:
    """The branch the bare repository's HEAD names."""
    try:
        return gitops.run(["symbolic-ref", "--short", "HEAD"], cwd=layout.git_dir).strip()
    except GitError as exc:
        raise ForgeError(f"{layout.full_name}: cannot read the default branch: {exc}") from exc


# ------------------------------------------------------------- issues and comments


def create_issue(
    root: Path,
    full_name: str,
    title: str,
    body: str,
    *,
    labels: list[str],
    author: str,
) -> tuple[int, list[Delivery]]:
    """Open an issue; return its number and the deliveries GitHub would send.

    Those are ``issues``/``opened``, then one ``issues``/``labeled`` per label.
    """
    layout = RepoLayout.of(root, full_name).require()
    labels = list(dict.fromkeys(labels))  # de-duplicated, order kept
    front = {"title": title, "labels": labels, "author": author, "state": "open", "created": now(),
             "labeled_by": dict.fromkeys(labels, author)}
    with layout.lock():
        number = create_item(layout, ISSUES, front, body)
    doc = read_document(layout.item_path(ISSUES, number))
    deliveries = [Delivery("issues", _issues_event(layout, doc, "opened", author))]
    deliveries += [
        Delivery("issues", _issues_event(layout, doc, "labeled", author, label)) for label in labels
    ]
    return number, deliveries


def add_label(root: Path, full_name: str, number: int, label: str, sender: str) -> list[Delivery]:
    """Add ``label`` to issue ``number``; return the ``issues``/``labeled`` delivery.

    A label the issue already has changes nothing and raises no event, as on GitHub:
    to trigger again, remove and re-add it.
    """
    layout = RepoLayout.of(root, full_name).require()
    path = layout.item_path(ISSUES, number)
    with layout.lock():
        if not path.is_file():
            raise ForgeError(f"{full_name} has no issue #{number} (labels go on issues only)")
        doc = read_document(path)
        labels = [str(name) for name in doc.front.get("labels") or []]
        if label in labels:
            return []
        actors = {**(doc.front.get("labeled_by") or {}), label: sender}
        doc = Document({**doc.front, "labels": [*labels, label], "labeled_by": actors}, doc.body)
        write_document(path, doc)
    return [Delivery("issues", _issues_event(layout, doc, "labeled", sender, label))]


def remove_label(
    root: Path, full_name: str, number: int, label: str, sender: str
) -> list[Delivery]:
    """Remove ``label`` from issue ``number``; return the ``issues``/``unlabeled`` delivery
    (none when the issue did not have it, as on GitHub)."""
    layout = RepoLayout.of(root, full_name).require()
    path = layout.item_path(ISSUES, number)
    with layout.lock():
        if not path.is_file():
            raise ForgeError(f"{full_name} has no issue #{number} (labels go on issues only)")
        doc = read_document(path)
        labels = [str(name) for name in doc.front.get("labels") or []]
        if label not in labels:
            return []
        doc = Document({**doc.front, "labels": [x for x in labels if x != label]}, doc.body)
        write_document(path, doc)
    return [Delivery("issues", _issues_event(layout, doc, "unlabeled", sender, label))]


def close_issue(root: Path, full_name: str, number: int, sender: str) -> list[Delivery]:
    """Close issue ``number``; return the ``issues``/``closed`` delivery (none when it was
    closed already)."""
    layout = RepoLayout.of(root, full_name).require()
    path = layout.item_path(ISSUES, number)
    with layout.lock():
        if not path.is_file():
            raise ForgeError(f"{full_name} has no issue #{number}")
        doc = read_document(path)
        if doc.front.get("state") == "closed":
            return []
        doc = Document({**doc.front, "state": "closed", "closed": now()}, doc.body)
        write_document(path, doc)
    return [Delivery("issues", _issues_event(layout, doc, "closed", sender))]


def add_comment(root: Path, full_name: str, number: int, body: str, author: str) -> list[Delivery]:
    """Comment on issue or pull request ``number``; return the ``issue_comment`` delivery."""
    layout = RepoLayout.of(root, full_name).require()
    kind, path = require_item(layout, number)
    written = write_comment(layout, number, author, body)
    issue = _issue_object(read_document(path), pull=kind == PULLS)
    payload = webhook.comment_event(_repository(layout), issue, body, author,
                                    comment_id=comment_id(written))
    return [Delivery("issue_comment", payload)]


def _repository(layout: RepoLayout) -> dict[str, Any]:
    return webhook.repository_payload(layout.full_name, read_default_branch(layout))


def _issue_object(doc: Document, *, pull: bool) -> dict[str, Any]:
    front = doc.front
    return webhook.issue_payload(
        int(front["number"]),
        str(front.get("title", "")),
        doc.body,
        [str(name) for name in front.get("labels") or []],
        str(front.get("author", "")),
        pull=pull,
    )


def _issues_event(
    layout: RepoLayout, doc: Document, action: str, sender: str, label: str | None = None
) -> dict[str, Any]:
    issue = _issue_object(doc, pull=False)
    return webhook.issues_event(action, _repository(layout), issue, sender, label)


# ------------------------------------------------------------------ pull requests


def list_pulls(root: Path, full_name: str) -> list[dict[str, Any]]:
    """The front matter of every pull request, by number."""
    layout = RepoLayout.of(root, full_name).require()
    return [doc.front for doc in list_documents(layout, PULLS)]


def show_issue(
    root: Path, full_name: str, number: int
) -> tuple[dict[str, Any], str, list[tuple[dict[str, Any], str]]]:
    """Issue or pull request ``number``: its front matter, body and comments (oldest first)."""
    layout = RepoLayout.of(root, full_name).require()
    _, path = require_item(layout, number)
    doc = read_document(path)
    folder = layout.meta_dir / "comments"
    paths = [p for p in folder.glob(f"{number}-*.md") if p.stem.partition("-")[2].isdigit()]
    paths.sort(key=lambda p: int(p.stem.partition("-")[2]))
    comments = [(c.front, c.body) for c in map(read_document, paths)]
    return doc.front, doc.body, comments


def show_pull(root: Path, full_name: str, number: int) -> tuple[dict[str, Any], str, str]:
    """Pull request ``number``: its front matter, its body and ``git diff base...head``."""
    layout = RepoLayout.of(root, full_name).require()
    path = layout.item_path(PULLS, number)
    if not path.is_file():
        raise ForgeError(f"{full_name} has no pull request #{number}")
    doc = read_document(path)
    base, head = str(doc.front.get("base", "")), str(doc.front.get("head", ""))
    args = ["diff", "--no-ext-diff", "--no-textconv", "--no-color"]
    try:
        diff = gitops.run(
            [*args, f"refs/heads/{base}...refs/heads/{head}", "--"], cwd=layout.git_dir
        )
    except GitError as exc:
        raise ForgeError(
            f"cannot diff pull request #{number} ({base}...{head}): a branch may be gone"
        ) from exc
    return doc.front, doc.body, diff


def merge_pull(root: Path, full_name: str, number: int, sender: str) -> list[Delivery]:
    """Merge open pull request ``number`` with a merge commit on its base branch (as
    ``sender``), mark it merged, and return the ``pull_request``/``closed`` delivery with
    ``merged: true``. A conflict is a ``ForgeError`` and changes nothing."""
    layout, doc = _open_pull(root, full_name, number)
    base, head = str(doc.front["base"]), str(doc.front["head"])
    identity = gitops.Identity(sender, f"{sender}@forgebot.invalid")
    with layout.lock():
        try:
            merged = _merge_commit(layout, base, head, f"Merge pull request #{number} from "
                                   f"{head}", identity)
        except GitError as exc:
            raise ForgeError(f"cannot merge pull request #{number} ({head} into {base}): "
                             f"{exc}") from exc
        doc = Document({**doc.front, "state": "merged", "merged": True, "merge_commit": merged,
                        "merged_by": sender, "closed": now()}, doc.body)
        write_document(layout.item_path(PULLS, number), doc)
    pull = webhook.pull_payload(number, head, base, merged=True,
                                url=layout.item_path(PULLS, number).absolute().as_uri())
    return [Delivery("pull_request", webhook.pull_closed_event(_repository(layout), pull, sender))]


def close_pull(root: Path, full_name: str, number: int, sender: str) -> list[Delivery]:
    """Close open pull request ``number`` without merging; return the
    ``pull_request``/``closed`` delivery with ``merged: false``."""
    layout, doc = _open_pull(root, full_name, number)
    with layout.lock():
        doc = Document({**doc.front, "state": "closed", "merged": False, "closed": now()},
                       doc.body)
        write_document(layout.item_path(PULLS, number), doc)
    pull = webhook.pull_payload(number, str(doc.front["head"]), str(doc.front["base"]),
                                merged=False,
                                url=layout.item_path(PULLS, number).absolute().as_uri())
    return [Delivery("pull_request", webhook.pull_closed_event(_repository(layout), pull, sender))]


def review_pull(
    root: Path, full_name: str, number: int, *, state: str, body: str, author: str
) -> list[Delivery]:
    """Submit a review (``approved``, ``changes_requested`` or ``commented``) on pull
    request ``number``: kept as a comment whose front matter names the review state, and
    announced as a ``pull_request_review``/``submitted`` delivery."""
    if state not in REVIEW_STATES:
        raise ForgeError(f"unknown review state {state!r}: expected one of {REVIEW_STATES}")
    layout, doc = _open_pull(root, full_name, number)
    path = write_comment(layout, number, author, body)
    review = read_document(path)
    write_document(path, Document({**review.front, "review": state}, review.body))
    review_id = int(path.stem.partition("-")[2])
    pull = webhook.pull_payload(number, str(doc.front["head"]), str(doc.front["base"]),
                                merged=False)
    payload = webhook.review_event(_repository(layout), pull, review_id,
                                   state=state, body=body, author=author)
    return [Delivery("pull_request_review", payload)]


def push_files(
    root: Path, full_name: str, branch: str, files: dict[str, str], *, message: str,
    pusher: str,
) -> list[Delivery]:
    """Commit ``files`` (path → new text) on top of ``branch`` as ``pusher`` and push it,
    as a person would; return the ``push`` delivery."""
    layout = RepoLayout.of(root, full_name).require()
    ref = f"refs/heads/{branch}"
    identity = gitops.Identity(pusher, f"{pusher}@forgebot.invalid")
    with tempfile.TemporaryDirectory(prefix="forgebot-push-") as tmp:
        tree = Path(tmp) / "tree"
        try:
            before = gitops.run(["rev-parse", "--verify", "--end-of-options", ref],
                                cwd=layout.git_dir).strip()
            gitops.run(["clone", "--quiet", "--branch", branch, "--", str(layout.git_dir),
                        str(tree)])
            for name, text in files.items():
                _write_inside(tree, name, text)
            if not gitops.run(["status", "--porcelain"], cwd=tree).strip():
                raise ForgeError(f"the push to {branch} of {full_name} changes no file")
            after = gitops.commit(tree, message, identity)
            status = gitops.run(["diff", "--name-status", "--no-renames", before, after],
                                cwd=tree)
            gitops.run(["push", "--quiet", "origin", f"HEAD:{ref}"], cwd=tree)
        except GitError as exc:
            raise ForgeError(f"cannot push to {branch} of {full_name}: {exc}") from exc
    changed: dict[str, list[str]] = {"A": [], "M": [], "D": []}
    for line in status.splitlines():
        kind, _, name = line.partition("\t")
        changed.setdefault(kind[:1], []).append(name)
    commit = {"id": after, "added": changed["A"], "modified": changed["M"],
              "removed": changed["D"]}
    payload = webhook.push_event(_repository(layout), ref, before, after,
                                 pusher=pusher, commits=[commit])
    return [Delivery("push", payload)]


def _write_inside(tree: Path, name: str, text: str) -> None:
    """Write ``tree/name``: never outside the checkout, into .git, or through a link (a
    repository may hold a committed symbolic link). Raises ForgeError."""
    parts = name.split("/")
    if (not name or name.startswith("/") or "\\" in name
            or any(p in ("", ".", "..") or p.lower() == ".git" for p in parts)):
        raise ForgeError(f"{name!r} is not a path inside the repository")
    location = tree
    for part in parts[:-1]:
        location = location / part
        if location.is_symlink() or (location.exists() and not location.is_dir()):
            raise ForgeError(f"{name!r}: {part!r} is not a folder of the repository")
        location.mkdir(exist_ok=True)
    target = location / parts[-1]
    if target.is_symlink() or target.is_dir():
        raise ForgeError(f"{name!r} is a link or a folder in the repository")
    target.write_text(text, encoding="utf-8")


def _open_pull(root: Path, full_name: str, number: int) -> tuple[RepoLayout, Document]:
    layout = RepoLayout.of(root, full_name).require()
    path = layout.item_path(PULLS, number)
    if not path.is_file():
        raise ForgeError(f"{full_name} has no pull request #{number}")
    doc = read_document(path)
    if doc.front.get("state") != "open":
        raise ForgeError(f"pull request #{number} of {full_name} is {doc.front.get('state')}")
    return layout, doc


def _merge_commit(
    layout: RepoLayout, base: str, head: str, message: str, identity: gitops.Identity
) -> str:
    """Merge ``head`` into ``base`` inside the bare repository (no worktree): ``merge-tree``
    writes the merged tree, ``commit-tree`` the merge commit, and ``update-ref`` moves
    ``base`` only if nobody moved it meanwhile. Returns the merge commit."""
    git_dir = layout.git_dir
    base_sha = gitops.run(["rev-parse", "--verify", f"refs/heads/{base}"], cwd=git_dir).strip()
    head_sha = gitops.run(["rev-parse", "--verify", f"refs/heads/{head}"], cwd=git_dir).strip()
    tree = gitops.run(["merge-tree", "--write-tree", base_sha, head_sha], cwd=git_dir)
    env = {"GIT_AUTHOR_NAME": identity.name, "GIT_AUTHOR_EMAIL": identity.email,
           "GIT_COMMITTER_NAME": identity.name, "GIT_COMMITTER_EMAIL": identity.email}
    merged = gitops.run(["commit-tree", tree.splitlines()[0].strip(), "-p", base_sha,
                         "-p", head_sha, "-F", "-"], cwd=git_dir, env=env, stdin=message).strip()
    gitops.run(["update-ref", f"refs/heads/{base}", merged, base_sha], cwd=git_dir)
    return merged


# ---------------------------------------------------------------------- delivery


def deliver(url: str, secret: str, event: str, payload: dict[str, Any], timeout: float = 10) -> int:
    """POST one signed delivery to the receiver at ``url``; return the HTTP status.

    ``ForgeError`` when the receiver cannot be reached or does not answer 2xx. The
    secret is only ever used to sign; no message includes it.
    """
    if not secret:
        raise ForgeError("no webhook secret configured for the local forge (forges.local.secret)")
    body = json.dumps(payload).encode("utf-8")
    headers = webhook.signed_headers(secret, event, body)
    try:
        response = requests.post(url, data=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise ForgeError(
            f"could not deliver the '{event}' webhook to {url} ({type(exc).__name__}): the "
            "receiver may not be running; start it with `forgebot serve` and try again",
            retryable=True,
        ) from exc
    if not 200 <= response.status_code < 300:
        hint = ""
        if response.status_code == 401:
            hint = " (check that both sides use the same forges.local.secret)"
        raise ForgeError(
            f"the receiver at {url} answered {response.status_code} to the '{event}' webhook{hint}",
            retryable=response.status_code >= 500,
        )
    return response.status_code


# -------------------------------------------------------------------- repositories


def repositories(root: Path) -> list[str]:
    """``owner/name`` of every repository under ``root`` (what reconciliation visits when
    ``forges.local.repositories`` is empty), sorted."""
    if not root.is_dir():
        return []
    found = []
    for git_dir in sorted(root.glob("*/*.git")):
        full_name = f"{git_dir.parent.name}/{git_dir.name.removesuffix('.git')}"
        try:
            if RepoLayout.of(root, full_name).exists():
                found.append(full_name)
        except ForgeError:
            continue  # not a name the local forge would have made
    return found
