"""Specs as triggers, with real git, the real store and the planner: a push to the default
branch that changes a spec makes one job per spec, read from the pushed commit.

The forge is the local forge's client under another forge's name, so its repositories, statuses
and issues are real files; the events come from real push payloads of GitHub, GitLab and Gitea
(tests/fixtures/webhooks), edited in the test to point at the local repository's commits and to
list a spec among the changed files (noted at each edit).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.events import Pushed, Repo
from bot.forges.gitea import webhook as gitea_webhook
from bot.forges.github import webhook as github_webhook
from bot.forges.gitlab import webhook as gitlab_webhook
from bot.forges.local import LocalForge, admin
from bot.forges.local import webhook as local_webhook
from bot.forges.local.layout import RepoLayout, read_document, read_yaml
from bot.pipeline.planner import Planner
from bot.pipeline.spec_trigger import SpecTrigger, spec_trigger_key
from bot.policy.model import Policy
from bot.store import Store
from bot.store.spec_jobs import SPEC_PUSHED, SPEC_SUPERSEDED
from tests.conftest import FIXTURES, REPO

SPEC = "specs/greeting.md"
GREETING = (REPO / "examples" / "hello-service" / SPEC).read_text()
NEW_CRITERION = ("4. `farewell(name)` also tidies the name like greet. {#farewell-tidy}\n\n"
                 "VERIFY: `GET /farewell")


def edited_spec(extra: str = "") -> str:
    """greeting.md with one more criterion (and ``extra`` at the end)."""
    text = GREETING.replace("\nVERIFY: `GET /farewell", "\n" + NEW_CRITERION, 1)
    assert text != GREETING
    return text + extra


@pytest.fixture
def store(backend_store: Store) -> Store:
    """Every test here runs on SQLite and on PostgreSQL (the spec job's queries are new)."""
    return backend_store


class NamedLocal(LocalForge):
    """The local forge's files behind another forge's name (the payload's forge)."""

    def __init__(self, root: Path, name: str) -> None:
        super().__init__(root, None)
        self.name = name


def make_repo(tmp_path: Path, full_name: str, branch: str = "main") -> Path:
    root = tmp_path / "forge"
    admin.init_repo(root, full_name, REPO / "examples" / "hello-service", branch)
    return root


def push(root: Path, full_name: str, branch: str, files: dict[str, str],
         pusher: str = "ada") -> tuple[str, str]:
    [delivery] = admin.push_files(root, full_name, branch, files, message="edit specs",
                                  pusher=pusher)
    return str(delivery.payload["before"]), str(delivery.payload["after"])


def local_event(root: Path, full_name: str, files: dict[str, str], pusher: str = "ada",
                branch: str = "main") -> Pushed:
    [delivery] = admin.push_files(root, full_name, branch, files, message="edit specs",
                                  pusher=pusher)
    commit = delivery.payload["commits"][0]
    return Pushed(repo=_repo(full_name, branch), ref=f"refs/heads/{branch}",
                  before=delivery.payload["before"], after=delivery.payload["after"],
                  pusher=pusher, added=tuple(commit["added"]),
                  modified=tuple(commit["modified"]), removed=tuple(commit["removed"]))


def _repo(full_name: str, branch: str) -> Repo:
    return Repo("local", full_name, branch)


def planner(store: Store, forge: LocalForge, policy: Policy | None = None) -> Planner:
    return Planner(store, {forge.name: forge}, policy or Policy(), "forgebot")


# --- real payloads of each forge -------------------------------------------------------------


def _payload(forge: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "webhooks" / forge / f"{name}.json").read_text())


def github_push(before: str, after: str) -> Pushed:
    payload = _payload("github", "push__default_branch")
    # Edited: the commits are the local repository's, and the last one modifies the spec.
    payload["before"], payload["after"] = before, after
    payload["commits"][-1]["modified"].append(SPEC)
    event = github_webhook.parse({"X-GitHub-Event": "push"}, json.dumps(payload).encode())
    assert isinstance(event, Pushed)
    return event


def gitlab_push(before: str, after: str) -> Pushed:
    payload = _payload("gitlab", "push_hook__default_branch")
    # Edited: the local repository's commits; the spec is listed as modified by the last one.
    payload["before"], payload["after"] = before, after
    payload["checkout_sha"] = after
    payload["commits"][-1]["modified"].append(SPEC)
    event = gitlab_webhook.parse({"X-Gitlab-Event": "Push Hook"}, json.dumps(payload).encode())
    assert isinstance(event, Pushed)
    return event


def gitea_push(before: str, after: str, folder: Path) -> Pushed:
    payload = _payload("gitea", "push__default_branch")
    # Edited: the local repository's commits; the spec is listed as modified.
    payload["before"], payload["after"] = before, after
    payload["commits"][-1]["modified"].append(SPEC)
    event = gitea_webhook.parse({"X-Gitea-Event": "push"}, json.dumps(payload).encode(),
                                gitea_webhook.LabelMemory(folder))
    assert isinstance(event, Pushed)
    return event


@pytest.mark.parametrize("forge_name", ["github", "gitlab", "gitea"])
def test_a_real_push_payload_that_touches_a_spec_makes_one_spec_job(
        store: Store, tmp_path: Path, forge_name: str) -> None:
    probe = {"github": lambda: github_push("0" * 40, "1" * 40),
             "gitlab": lambda: gitlab_push("0" * 40, "1" * 40),
             "gitea": lambda: gitea_push("0" * 40, "1" * 40, tmp_path / "labels")}[forge_name]()
    # The repository is named and branched like the payload's, so the event is read as is.
    root = make_repo(tmp_path, probe.repo.full_name, probe.repo.default_branch)
    forge = NamedLocal(root, forge_name)
    before, after = push(root, probe.repo.full_name, probe.repo.default_branch,
                         {SPEC: edited_spec()})
    event = {"github": lambda: github_push(before, after),
             "gitlab": lambda: gitlab_push(before, after),
             "gitea": lambda: gitea_push(before, after, tmp_path / "labels")}[forge_name]()
    assert event.to_default_branch and event.repo.forge == forge_name

    result = planner(store, forge).plan_event(forge, event, None)

    assert result.status == "job", result.note
    [job] = store.list_jobs()
    assert job.kind == "spec" and job.issue_number == 0
    assert job.trigger_key == spec_trigger_key(forge_name, probe.repo.full_name, SPEC)
    assert job.branch == "forgebot/spec-greeting"
    assert "`greeting#farewell-tidy`" in job.task_text
    assert '@pytest.mark.spec("greeting#farewell-tidy")' in job.task_text
    assert "Files the spec names: `hello_service/app.py`" in job.task_text
    [pushed] = [e for e in store.events(job.id) if e["kind"] == SPEC_PUSHED]
    assert pushed["data"]["criteria"] == ["greeting#farewell-tidy"]
    assert pushed["data"]["key"] == after


def test_a_push_that_changes_no_spec_or_only_prose_makes_no_job(store: Store,
                                                                 tmp_path: Path) -> None:
    root = make_repo(tmp_path, "acme/hello")
    forge = LocalForge(root, None)
    readme = planner(store, forge).plan_event(
        forge, local_event(root, "acme/hello", {"README.md": "# hi\n"}), None)
    assert (readme.status, readme.note) == ("ignored", "the push changes no spec")
    prose = GREETING.replace("hello-service greets people", "hello-service warmly greets people")
    result = planner(store, forge).plan_event(
        forge, local_event(root, "acme/hello", {SPEC: prose}), None)
    assert result.status == "ignored" and "no criterion changed" in result.note
    assert store.list_jobs() == []


def test_a_malformed_spec_makes_no_job_and_gets_a_failing_status_and_an_issue(
        store: Store, tmp_path: Path) -> None:
    root = make_repo(tmp_path, "acme/hello")
    forge = LocalForge(root, None)
    broken = GREETING.replace("owner: ada", "owner: ada\ntitle: oops", 1)
    event = local_event(root, "acme/hello", {SPEC: broken})

    result = planner(store, forge).plan_event(forge, event, None)

    assert result.status == "ignored" and "does not parse" in result.note
    assert store.list_jobs() == []
    statuses = read_yaml(RepoLayout.of(root, "acme/hello").status_path(event.after), {})
    [status] = statuses.values()
    assert status["state"] == "failure"
    assert "specs/greeting.md does not parse" in status["description"]
    assert len(status["description"]) <= 140
    [issue] = sorted((RepoLayout.of(root, "acme/hello").meta_dir / "issues").glob("*.md"))
    doc = read_document(issue)
    assert "specs/greeting.md:5: unknown front matter key 'title'" in doc.body


def test_a_deleted_spec_makes_no_job(store: Store, tmp_path: Path) -> None:
    root = make_repo(tmp_path, "acme/hello")
    forge = LocalForge(root, None)
    event = local_event(root, "acme/hello", {"README.md": "# hi\n"})
    # The payload says the spec was added, but the pushed commit has no such file (deleted).
    event = Pushed(event.repo, event.ref, event.before, event.after, event.pusher,
                   added=("specs/gone.md",), removed=(SPEC,))
    result = planner(store, forge).plan_event(forge, event, None)
    assert result.status == "ignored" and "specs/gone.md: deleted, no job" in result.note
    assert store.list_jobs() == []


def test_a_spec_pushed_by_someone_without_permission_starts_nothing_and_says_nothing(
        store: Store, tmp_path: Path) -> None:
    root = make_repo(tmp_path, "acme/hello")
    (root / "permissions.yml").write_text("ada: admin\nmallory: read\n")
    forge = LocalForge(root, None)
    event = local_event(root, "acme/hello", {SPEC: edited_spec()}, pusher="mallory")

    result = planner(store, forge).plan_event(forge, event, None)

    assert result.status == "ignored" and "mallory lacks write permission" in result.note
    assert store.list_jobs() == []
    layout = RepoLayout.of(root, "acme/hello")
    assert not list((layout.meta_dir / "issues").glob("*.md"))
    assert not list((layout.meta_dir / "comments").glob("*.md"))
    assert not layout.status_path(event.after).exists()


def test_a_spec_changed_while_its_job_runs_supersedes_that_attempt(store: Store,
                                                                   tmp_path: Path) -> None:
    root = make_repo(tmp_path, "acme/hello")
    forge = LocalForge(root, None)
    first = planner(store, forge).plan_event(
        forge, local_event(root, "acme/hello", {SPEC: edited_spec()}), None)
    claim = store.claim_next("worker-1", 60)
    assert claim is not None and claim.job.id == first.job_id

    again = edited_spec("\nVERIFY: `greet` answers in English {#english}\n")
    second_event = local_event(root, "acme/hello", {SPEC: again})
    second = planner(store, forge).plan_event(forge, second_event, None)

    assert second.status == "job" and second.job_id == first.job_id
    assert f"job {first.job_id} superseded" in second.note
    job = store.get_job(first.job_id)
    assert job is not None and job.state == "queued" and job.branch == "forgebot/spec-greeting"
    assert "greeting#english" in job.task_text
    kinds = [e["kind"] for e in store.events(job.id)]
    assert kinds.count(SPEC_SUPERSEDED) == 1 and kinds[-1] == "job.requeued"
    # The stopped attempt cannot finish the job any more; the next claim starts afresh.
    assert not store.finish(claim, "worker-1", "submitted", failed=False)
    assert store.last_request(job.id)["mode"] == "retry"
    # The same push seen again (a redelivery with a new id) changes nothing.
    repeat = planner(store, forge).plan_event(forge, second_event, None)
    assert repeat.status == "ignored" and "seen" in repeat.note


def test_specs_turned_off_by_the_repository_policy_make_no_job(store: Store,
                                                               tmp_path: Path) -> None:
    root = make_repo(tmp_path, "acme/hello")
    forge = LocalForge(root, None)
    event = local_event(root, "acme/hello", {".forgebot.yml": "specs:\n  enabled: false\n",
                                            SPEC: edited_spec()})
    result = SpecTrigger(store, Policy()).plan(forge, event, None)
    assert result.status == "ignored" and "turned off for this repository" in result.note


def test_the_repository_policy_says_which_files_are_specs(store: Store, tmp_path: Path) -> None:
    root = make_repo(tmp_path, "acme/hello")
    forge = LocalForge(root, None)
    moved = edited_spec().replace("id: greeting", "id: greeting-doc")
    event = local_event(root, "acme/hello", {
        ".forgebot.yml": "specs:\n  globs: ['docs/specs/*.md']\n",
        "docs/specs/greeting.md": moved})
    result = SpecTrigger(store, Policy(), tmp_path / "mirrors").plan(forge, event, None)
    assert result.status == "job", result.note
    [job] = store.list_jobs()
    assert job.trigger_key.endswith(":spec:docs/specs/greeting.md")
    assert job.branch == "forgebot/spec-greeting-doc"


def test_a_spec_push_whose_repository_cannot_be_fetched_is_recorded_not_raised(
        store: Store, tmp_path: Path) -> None:
    root = make_repo(tmp_path, "acme/hello")
    forge = LocalForge(root, None)
    [delivery] = admin.push_files(root, "acme/hello", "main", {SPEC: edited_spec()},
                                  message="edit specs", pusher="ada")
    body = json.dumps(delivery.payload).encode()
    store.record_delivery("local", "d-1", delivery.event,
                          local_webhook.signed_headers("s", delivery.event, body), body)
    # The repository breaks before the planner reads the pushed commit: git fails.
    shutil.rmtree(root / "acme" / "hello.git")
    (root / "acme" / "hello.git").mkdir()
    (root / "acme" / "hello.git" / "HEAD").write_text("not a git repository\n")
    assert planner(store, forge).plan_pending() == 0
    assert store.delivery_counts() == {"invalid": 1}
    assert store.list_jobs() == []
