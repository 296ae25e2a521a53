"""What reconciliation reads and keeps, below the planner: the local forge's reconciliation
calls over real files and git, and the repo_records functions on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Settings
from bot.errors import ForgeError
from bot.forges.local import LocalForge, admin
from bot.forges.local.layout import COMMENT_ID_SPAN
from bot.store import Store
from bot.store.records import claim_record, get_record, put_record, repo_jobs

REPO = "acme/hello"


@pytest.fixture
def local(settings: Settings) -> LocalForge:
    return LocalForge(settings.local_root, "secret")


def test_local_reconciliation_calls(settings: Settings, local: LocalForge) -> None:
    root = settings.local_root
    before = datetime.now(UTC) - timedelta(seconds=5)
    labelled, _ = admin.create_issue(root, REPO, "Add a farewell", "", labels=["forgebot"],
                                     author="grace")
    plain, _ = admin.create_issue(root, REPO, "Other", "", labels=[], author="grace")
    admin.add_label(root, REPO, plain, "forgebot", "alan")
    closed, _ = admin.create_issue(root, REPO, "Closed", "", labels=["forgebot"], author="x")
    admin.close_issue(root, REPO, closed, "x")
    assert [i.number for i in local.open_issues_with_label(REPO, "forgebot")] == [labelled,
                                                                                  plain]
    assert local.label_actor(REPO, labelled, "forgebot") == "grace"
    assert local.label_actor(REPO, plain, "forgebot") == "alan"
    assert local.label_actor(REPO, plain, "bug") is None
    assert local.default_branch(REPO) == "main"

    [delivery] = admin.add_comment(root, REPO, labelled, "/retry", "grace")
    admin.add_comment(root, REPO, labelled, "/status", "alan")
    found = local.comments_since(REPO, labelled, before)
    assert [(c.author, c.body) for c in found] == [("grace", "/retry"), ("alan", "/status")]
    # The webhook names the comment as reconciliation does.
    assert delivery.payload["comment"]["id"] == found[0].id == labelled * COMMENT_ID_SPAN + 1
    assert local.comments_since(REPO, labelled, datetime.now(UTC) + timedelta(seconds=5)) == []

    number = local.create_issue(REPO, "forgebot dashboard", "first")
    local.edit_issue(REPO, number, "second")
    issue = local.get_issue(REPO, number)
    assert (issue.body, issue.author, issue.labels) == ("second", "forgebot", ())
    with pytest.raises(ForgeError, match="no issue #99"):
        local.edit_issue(REPO, 99, "x")
    assert admin.repositories(root) == [REPO]


def test_local_pull_state(settings: Settings, local: LocalForge) -> None:
    from bot import gitops
    from bot.forges.base import NewPull

    layout_git = settings.local_root / "acme" / "hello.git"
    main = gitops.run(["rev-parse", "refs/heads/main"], cwd=layout_git).strip()
    gitops.run(["update-ref", "refs/heads/forgebot/1-x", main], cwd=layout_git)
    pull = local.open_pull(REPO, NewPull("forgebot/1-x", "main", "X", "", draft=False))
    assert local.pull_state(REPO, pull.number).state == "open"
    admin.close_pull(settings.local_root, REPO, pull.number, "grace")
    state = local.pull_state(REPO, pull.number)
    assert (state.state, state.head, state.by) == ("closed", "forgebot/1-x", "")
    with pytest.raises(ForgeError, match="no pull request #42"):
        local.pull_state(REPO, 42)


@pytest.mark.postgres
def test_records_on_each_backend(backend_store: Store) -> None:
    store = backend_store
    assert get_record(store, "local", REPO, "k", "a") is None
    put_record(store, "local", REPO, "k", "a", data={"n": 1})
    put_record(store, "local", REPO, "k", "a", data={"n": 2})
    put_record(store, "local", "acme/other", "k", "a", data={"n": 3})
    assert get_record(store, "local", REPO, "k", "a") == {"n": 2}
    assert get_record(store, "github", REPO, "k", "a") is None
    assert claim_record(store, "local", REPO, "k", "b", data={"first": True})
    assert not claim_record(store, "local", REPO, "k", "b", data={"first": False})
    assert get_record(store, "local", REPO, "k", "b") == {"first": True}


@pytest.mark.postgres
def test_repo_jobs_by_state_or_recent_change(backend_store: Store) -> None:
    store = backend_store
    made = [store.create_job(trigger_key=f"local:{repo}:issue:{n}", forge="local", repo=repo,
                             default_branch="main", issue_number=n, title="t",
                             requested_by="grace", delivery_row=None)
            for n, repo in ((1, REPO), (2, REPO), (3, "acme/other"))]
    assert all(job is not None for job in made)
    first = made[0]
    assert first is not None and store.cancel(first.id, by="grace")
    queued = repo_jobs(store, "local", REPO, states=("queued",))
    assert [j.issue_number for j in queued] == [2]
    future = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    assert repo_jobs(store, "local", REPO, states=("running",), updated_since=future) == []
    recent = repo_jobs(store, "local", REPO, states=("running",),
                       updated_since=future - timedelta(days=1))
    assert [j.issue_number for j in recent] == [2, 1]
