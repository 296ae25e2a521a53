"""The GitHub adapter's API calls against `responses`, fed GitHub's own payload objects.

The API answers are built from the captured webhook payloads in
tests/fixtures/webhooks/github (see SOURCES.md there): a webhook's ``issue``,
``pull_request``, ``comment`` and ``repository`` objects are the REST API's objects, plus the
few fields only the API sends (``body_html``, ``body_text``, ...). The resilient session
runs for real with a fake clock, so retries and waits are exercised without sleeping.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from bot.config import GitHubSettings
from bot.errors import ForgeError
from bot.forges.base import Issue, NewPull, PullRequest
from bot.forges.github import GitHubForge
from bot.forges.http import BreakerRegistry
from bot.forges.verify import sign_sha256
from bot.gitops import PASSWORD_ENV, USERNAME_ENV
from bot.pipeline.planner import Planner, trigger_key
from bot.policy.model import Policy, Trigger
from bot.store import Store
from bot.web import create_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks" / "github"
API = "https://api.github.com"
REPO = "Codertocat/Hello-World"
REPO_API = f"{API}/repos/{REPO}"
BRANCH = "forgebot/1-spelling-error"
TOKEN = "ghp_0123456789abcdefTOKEN"
SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
MARKER = "<!-- forgebot:job:7 -->"


class FakeTime:
    """A clock whose sleeps only move it on; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def make_forge(clock: FakeTime, **settings: Any) -> GitHubForge:
    options: dict[str, Any] = {"token": TOKEN, "webhook_secret": "s3cret", "max_retries": 3}
    options.update(settings)
    return GitHubForge(
        GitHubSettings(**options), "forgebot", clock=clock, sleep=clock.sleep,
        http_options={"breakers": BreakerRegistry(), "jitter": lambda: 1.0, "clock": clock},
    )


@pytest.fixture
def github(clock: FakeTime) -> GitHubForge:
    return make_forge(clock)


# ------------------------------------------------------- API objects from real payloads


def payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_bytes())
    return data


def with_html(item: dict[str, Any]) -> dict[str, Any]:
    """What the API adds to a webhook object with github3's ``full+json`` media type."""
    body = item.get("body") or ""
    return {**item, "body_html": f"<p>{body}</p>", "body_text": body}


def api_repository() -> dict[str, Any]:
    repository = payload("pull_request__closed_unmerged")["repository"]
    return {**repository, "network_count": 0, "subscribers_count": 1}


def api_issue() -> dict[str, Any]:
    issue = payload("issues__labeled")["issue"]
    return {**with_html(issue), "closed_by": None}


def api_pull(number: int = 2, *, head: str = BRANCH, draft: bool = False,
             body: str = "Implements #1.") -> dict[str, Any]:
    pull = copy.deepcopy(payload("pull_request__closed_unmerged")["pull_request"])
    pull.update(
        number=number, url=f"{REPO_API}/pulls/{number}", state="open", draft=draft,
        html_url=f"https://github.com/{REPO}/pull/{number}", body=body, merged=False,
        issue_url=f"{REPO_API}/issues/{number}", title="Fix the spelling error",
    )
    pull["head"].update(ref=head, label=f"Codertocat:{head}")
    return with_html(pull)


def api_comment(comment_id: int, author: str, body: str) -> dict[str, Any]:
    comment = copy.deepcopy(payload("issue_comment__created_issue")["comment"])
    comment.update(id=comment_id, body=body, url=f"{REPO_API}/issues/comments/{comment_id}")
    comment["user"]["login"] = author
    return with_html(comment)


def api_label(name: str) -> dict[str, Any]:
    label = dict(payload("issues__labeled")["label"])
    return {**label, "name": name, "url": f"{REPO_API}/labels/{name}"}


def api_status(state: str, description: str) -> dict[str, Any]:
    """Shaped like the docs' example answer of ``POST /repos/{o}/{r}/statuses/{sha}``."""
    return {
        "url": f"{REPO_API}/statuses/{SHA}", "id": 1, "node_id": "MDY6U3RhdHVzMQ==",
        "state": state, "description": description, "target_url": None,
        "context": "forgebot", "created_at": "2019-05-15T15:20:33Z",
        "updated_at": "2019-05-15T15:20:33Z",
        "creator": payload("issues__labeled")["sender"],
    }


def api_compare(files: list[dict[str, Any]]) -> dict[str, Any]:
    push = payload("push__default_branch")

    def commit(sha: str, message: str) -> dict[str, Any]:
        person = {"name": "binkkatal", "email": "b@example.com", "date": "2019-05-15T15:20:30Z"}
        return {
            "url": f"{REPO_API}/commits/{sha}", "sha": sha, "html_url": f"https://x/{sha}",
            "comments_url": f"{REPO_API}/commits/{sha}/comments", "author": None,
            "committer": None, "parents": [],
            "commit": {"url": f"{REPO_API}/git/commits/{sha}", "author": person,
                       "committer": person, "message": message,
                       "tree": {"url": f"{REPO_API}/git/trees/{sha}", "sha": sha}},
        }

    return {
        "url": f"{REPO_API}/compare/{push['before']}...{push['after']}",
        "html_url": push["compare"], "permalink_url": push["compare"],
        "diff_url": f"{push['compare']}.diff", "patch_url": f"{push['compare']}.patch",
        "base_commit": commit(push["before"], "base"), "status": "ahead", "ahead_by": 1,
        "behind_by": 0, "total_commits": 1,
        "commits": [commit(c["id"], c["message"]) for c in push["commits"]], "files": files,
    }


def body_of(call: Any) -> Any:
    raw = call.request.body
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def statuses(mock: responses.RequestsMock, method: str, url: str) -> list[int | str]:
    """What each attempt of ``method url`` got: a status code or the exception's name."""
    out: list[int | str] = []
    for call in mock.calls:
        if call.request.method == method and (call.request.url or "").split("?")[0] == url:
            response = call.response
            out.append(response.status_code if isinstance(response, requests.Response)
                       else type(response).__name__)
    return out


def new_pull(draft: bool = False) -> NewPull:
    return NewPull(head=BRANCH, base="master", title="Fix the spelling error",
                   body="Implements #1.", draft=draft)


# ---------------------------------------------------------------------------- calls


def test_get_issue(mock: responses.RequestsMock, github: GitHubForge) -> None:
    mock.get(f"{REPO_API}/issues/1", json=api_issue())
    assert github.get_issue(REPO, 1) == Issue(
        number=1, title="Spelling error in the README file",
        body="It looks like you accidently spelled 'commit' with two 't's.",
        labels=("bug",), author="Codertocat",
    )
    assert mock.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert mock.calls[0].request.headers["X-GitHub-Api-Version"] == "2022-11-28"


def test_a_secondary_rate_limit_on_a_comment_waits_a_minute_and_sends_it_once(
        mock: responses.RequestsMock, github: GitHubForge, clock: FakeTime) -> None:
    mock.get(f"{REPO_API}/issues/1", json=api_issue())
    limited = {"message": "You have exceeded a secondary rate limit. Please wait a few "
               "minutes before you try again.",
               "documentation_url": "https://docs.github.com/rest/overview/rate-limits"}
    mock.post(f"{REPO_API}/issues/1/comments", status=403, json=limited)
    mock.post(f"{REPO_API}/issues/1/comments", status=201,
              json=api_comment(10, "forgebot", "hello"))
    github.get_issue(REPO, 1)

    github.comment(REPO, 1, "hello")

    assert clock.sleeps == [60.0]  # GitHub's documented minute, then the one resend
    assert [c.response.status_code for c in mock.calls if c.request.method == "POST"] \
        == [403, 201]


def test_get_issue_that_does_not_exist(mock: responses.RequestsMock,
                                       github: GitHubForge) -> None:
    mock.get(f"{REPO_API}/issues/9", status=404, json={"message": "Not Found"})
    with pytest.raises(ForgeError, match="read issue #9 of Codertocat/Hello-World: HTTP 404"):
        github.get_issue(REPO, 9)


def test_find_pull_by_head_branch(mock: responses.RequestsMock, github: GitHubForge) -> None:
    repo_call = mock.get(REPO_API, json=api_repository())
    pulls = mock.get(f"{REPO_API}/pulls", json=[api_pull(2)])
    found = github.find_pull(REPO, BRANCH)
    assert found == PullRequest(number=2, head=BRANCH, base="master",
                                title="Fix the spelling error", body="Implements #1.",
                                draft=False, url=f"https://github.com/{REPO}/pull/2")
    params = pulls.calls[0].request.params
    assert (params["state"], params["head"]) == ("open", f"Codertocat:{BRANCH}")
    mock.replace(responses.GET, f"{REPO_API}/pulls", json=[])
    assert github.find_pull(REPO, BRANCH) is None
    assert repo_call.call_count == 1  # the repository is read once, then its handle is kept


def test_open_pull_as_draft(mock: responses.RequestsMock, github: GitHubForge) -> None:
    created = mock.post(f"{REPO_API}/pulls", status=201, json=api_pull(5, draft=True))
    pull = github.open_pull(REPO, new_pull(draft=True))
    assert (pull.number, pull.draft, pull.head) == (5, True, BRANCH)
    assert body_of(created.calls[0]) == {
        "title": "Fix the spelling error", "head": BRANCH, "base": "master",
        "body": "Implements #1.", "draft": True,
    }


def test_open_pull_that_already_exists_returns_it(mock: responses.RequestsMock,
                                                  github: GitHubForge) -> None:
    mock.post(f"{REPO_API}/pulls", status=422, json={
        "message": "Validation Failed",
        "errors": [{"message": f"A pull request already exists for Codertocat:{BRANCH}."}]})
    mock.get(REPO_API, json=api_repository())
    mock.get(f"{REPO_API}/pulls", json=[api_pull(4)])
    assert github.open_pull(REPO, new_pull()).number == 4
    assert statuses(mock, "POST", f"{REPO_API}/pulls") == [422]


def test_open_pull_draft_where_drafts_are_not_supported(
    mock: responses.RequestsMock, github: GitHubForge, caplog: pytest.LogCaptureFixture
) -> None:
    refused = mock.post(f"{REPO_API}/pulls", status=422, json={
        "message": "Draft pull requests are not supported in this repository."})
    created = mock.post(f"{REPO_API}/pulls", status=201, json=api_pull(6))
    with caplog.at_level(logging.WARNING):
        assert github.open_pull(REPO, new_pull(draft=True)).number == 6
    assert body_of(refused.calls[0])["draft"] is True
    assert body_of(created.calls[0])["draft"] is False
    assert "drafts are not supported" in caplog.text


def test_open_pull_refused_for_good_is_not_retried(mock: responses.RequestsMock,
                                                   github: GitHubForge) -> None:
    mock.post(f"{REPO_API}/pulls", status=422, json={
        "message": "Validation Failed", "errors": [{"message": "No commits between"}]})
    with pytest.raises(ForgeError, match=r"HTTP 422.*No commits between") as caught:
        github.open_pull(REPO, new_pull())
    assert caught.value.retryable is False
    assert statuses(mock, "POST", f"{REPO_API}/pulls") == [422]
    assert TOKEN not in str(caught.value)


def test_update_pull_body_keeps_the_real_draft_flag(
    mock: responses.RequestsMock, github: GitHubForge, caplog: pytest.LogCaptureFixture
) -> None:
    mock.get(f"{REPO_API}/pulls/2", json=api_pull(2, draft=True, body="old"))
    patched = mock.patch(f"{REPO_API}/pulls/2", json=api_pull(2, draft=True, body="new"))
    # GraphQL refuses (a token without the scope, say): the body is still updated.
    graphql = mock.post("https://api.github.com/graphql", json={
        "data": None, "errors": [{"message": "Resource not accessible by integration"}]})
    with caplog.at_level(logging.WARNING):
        pull = github.update_pull(REPO, 2, body="new", draft=False)
    assert body_of(patched.calls[0]) == {"body": "new"}  # REST cannot change the draft flag
    assert (pull.body, pull.draft) == ("new", True)
    assert "could not mark it ready for review" in caplog.text
    assert "Resource not accessible" in caplog.text and len(graphql.calls) == 1


@pytest.mark.parametrize(("draft", "mutation"), [
    (False, "markPullRequestReadyForReview"), (True, "convertPullRequestToDraft")])
def test_update_pull_changes_the_draft_flag_through_graphql(
    mock: responses.RequestsMock, github: GitHubForge, draft: bool, mutation: str
) -> None:
    mock.get(f"{REPO_API}/pulls/2", json=api_pull(2, draft=not draft, body="old"))
    mock.patch(f"{REPO_API}/pulls/2", json=api_pull(2, draft=not draft, body="new"))
    graphql = mock.post("https://api.github.com/graphql", json={
        "data": {mutation: {"pullRequest": {"isDraft": draft}}}})
    pull = github.update_pull(REPO, 2, body="new", draft=draft)
    assert pull.draft is draft
    sent = body_of(graphql.calls[0])
    assert mutation in sent["query"]
    assert sent["variables"] == {"id": api_pull(2)["node_id"]}
    assert graphql.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_comment(mock: responses.RequestsMock, github: GitHubForge) -> None:
    issue = mock.get(f"{REPO_API}/issues/1", json=api_issue())
    posted = mock.post(f"{REPO_API}/issues/1/comments", status=201,
                       json=api_comment(10, "forgebot", "hello"))
    github.get_issue(REPO, 1)
    github.comment(REPO, 1, "hello")
    assert body_of(posted.calls[0]) == {"body": "hello"}
    assert issue.call_count == 1  # the issue read by get_issue serves the comment too


def test_upsert_comment_edits_the_bots_own_comment(mock: responses.RequestsMock,
                                                   github: GitHubForge) -> None:
    mock.get(f"{REPO_API}/issues/1", json=api_issue())
    mock.get(f"{REPO_API}/issues/1/comments", json=[
        api_comment(11, "mallory", f"{MARKER} copied by someone else"),
        api_comment(12, "forgebot[bot]", f"{MARKER}\nworking"),
    ])
    edited = mock.patch(f"{REPO_API}/issues/comments/12",
                        json=api_comment(12, "forgebot[bot]", f"{MARKER}\ndone"))
    github.upsert_comment(REPO, 1, MARKER, f"{MARKER}\ndone")
    assert body_of(edited.calls[0]) == {"body": f"{MARKER}\ndone"}


def test_upsert_comment_adds_one_when_there_is_none(mock: responses.RequestsMock,
                                                    github: GitHubForge) -> None:
    mock.get(f"{REPO_API}/issues/1", json=api_issue())
    mock.get(f"{REPO_API}/issues/1/comments", json=[api_comment(11, "forgebot", "no marker")])
    posted = mock.post(f"{REPO_API}/issues/1/comments", status=201,
                       json=api_comment(13, "forgebot", f"{MARKER} hi"))
    github.upsert_comment(REPO, 1, MARKER, f"{MARKER} hi")
    assert posted.call_count == 1


def test_upsert_comment_remembers_its_comment(mock: responses.RequestsMock,
                                             github: GitHubForge) -> None:
    mock.get(f"{REPO_API}/issues/1", json=api_issue())
    listed = mock.get(f"{REPO_API}/issues/1/comments", json=[])
    mock.post(f"{REPO_API}/issues/1/comments", status=201,
              json=api_comment(30, "forgebot", f"{MARKER} queued"))
    edited = mock.patch(f"{REPO_API}/issues/comments/30",
                        json=api_comment(30, "forgebot", f"{MARKER} running"))
    github.upsert_comment(REPO, 1, MARKER, f"{MARKER} queued")
    github.upsert_comment(REPO, 1, MARKER, f"{MARKER} running")
    github.upsert_comment(REPO, 1, MARKER, f"{MARKER} done")
    assert listed.call_count == 1  # later updates go straight to the comment
    assert [body_of(call) for call in edited.calls] == [{"body": f"{MARKER} running"},
                                                        {"body": f"{MARKER} done"}]


def test_upsert_comment_whose_comment_was_deleted_adds_a_new_one(
    mock: responses.RequestsMock, github: GitHubForge
) -> None:
    mock.get(f"{REPO_API}/issues/1", json=api_issue())
    mock.get(f"{REPO_API}/issues/1/comments", json=[api_comment(31, "forgebot", MARKER)])
    mock.patch(f"{REPO_API}/issues/comments/31", json=api_comment(31, "forgebot", MARKER))
    github.upsert_comment(REPO, 1, MARKER, f"{MARKER} one")
    mock.replace(responses.PATCH, f"{REPO_API}/issues/comments/31", status=404,
                 json={"message": "Not Found"})
    mock.replace(responses.GET, f"{REPO_API}/issues/1/comments", json=[])
    posted = mock.post(f"{REPO_API}/issues/1/comments", status=201,
                       json=api_comment(32, "forgebot", f"{MARKER} two"))
    github.upsert_comment(REPO, 1, MARKER, f"{MARKER} two")
    assert posted.call_count == 1


def test_upsert_comment_needs_the_marker_in_the_body(github: GitHubForge) -> None:
    with pytest.raises(ForgeError, match="marker"):
        github.upsert_comment(REPO, 1, MARKER, "no marker here")


@pytest.mark.parametrize(
    ("comment_id", "url"),
    [(None, f"{REPO_API}/issues/1/reactions"),
     (492700400, f"{REPO_API}/issues/comments/492700400/reactions")],
)
def test_react_with_eyes(mock: responses.RequestsMock, github: GitHubForge,
                         comment_id: int | None, url: str) -> None:
    posted = mock.post(url, status=201, json={"id": 1, "content": "eyes"})
    github.react(REPO, 1, comment_id, "eyes")
    assert body_of(posted.calls[0]) == {"content": "eyes"}


def test_react_with_an_unknown_reaction(github: GitHubForge) -> None:
    with pytest.raises(ForgeError, match="unknown reaction"):
        github.react(REPO, 1, None, "👀")


def test_add_and_remove_labels(mock: responses.RequestsMock, github: GitHubForge) -> None:
    mock.get(f"{REPO_API}/issues/1", json=api_issue())
    added = mock.post(f"{REPO_API}/issues/1/labels",
                      json=[api_label("forgebot"), api_label("in progress")])
    removed = mock.delete(f"{REPO_API}/issues/1/labels/in%20progress%2Fbot",
                          json=[api_label("forgebot")])
    mock.delete(f"{REPO_API}/issues/1/labels/gone", status=404,
                json={"message": "Label does not exist"})
    github.add_labels(REPO, 1, ["forgebot", "in progress"])
    github.add_labels(REPO, 1, [])  # nothing to add: no request
    github.remove_label(REPO, 1, "in progress/bot")
    github.remove_label(REPO, 1, "gone")  # not there: not an error
    assert body_of(added.calls[0]) == ["forgebot", "in progress"]
    assert added.call_count == 1 and removed.call_count == 1


def test_set_status(mock: responses.RequestsMock, github: GitHubForge) -> None:
    mock.get(REPO_API, json=api_repository())
    posted = mock.post(f"{REPO_API}/statuses/{SHA}", status=201,
                       json=api_status("success", "x" * 139 + "…"))
    github.set_status(REPO, SHA, "success", "x" * 200)
    sent = body_of(posted.calls[0])
    assert (sent["state"], sent["context"]) == ("success", "forgebot")
    assert len(sent["description"]) == 140


def test_comment_commit_posts_once_even_after_an_uncertain_answer(
        mock: responses.RequestsMock, github: GitHubForge) -> None:
    url = f"{REPO_API}/commits/{SHA}/comments"
    someone = {"id": 1, "body": "the errors", "user": {"login": "ada"}}
    mine = {"id": 2, "body": "the errors", "user": {"login": "forgebot[bot]"}}
    listed = mock.get(url, json=[someone])  # someone else's identical text does not count
    mock.get(url, json=[someone, mine])  # after the 502, the comment turns out to be there
    posted = mock.post(url, status=502, json={"message": "Server Error"})
    github.comment_commit(REPO, SHA, "the errors")
    assert posted.call_count == 1 and listed.call_count == 1
    assert body_of(posted.calls[0]) == {"body": "the errors"}
    with pytest.raises(ForgeError, match="not a full commit sha"):
        github.comment_commit(REPO, "abc123", "x")


@pytest.mark.parametrize(("state", "sha"), [("done", SHA), ("success", "abc123")])
def test_set_status_refuses_bad_values(github: GitHubForge, state: str, sha: str) -> None:
    with pytest.raises(ForgeError):
        github.set_status(REPO, sha, state, "x")


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        (200, {"permission": "admin", "role_name": "admin"}, "admin"),
        (200, {"permission": "write", "role_name": "maintain"}, "write"),
        (200, {"permission": "read", "role_name": "triage"}, "read"),
        (200, {"permission": "none", "role_name": "none"}, "none"),
        (200, {"permission": "maintain"}, "write"),
        (404, {"message": "Not Found"}, "none"),
    ],
)
def test_permission(mock: responses.RequestsMock, github: GitHubForge, status: int,
                    answer: dict[str, str], expected: str) -> None:
    mock.get(f"{REPO_API}/collaborators/octo%5Bbot%5D/permission", status=status, json=answer)
    assert github.permission(REPO, "octo[bot]") == expected


def test_changed_files_from_the_compare_api(mock: responses.RequestsMock,
                                            github: GitHubForge) -> None:
    push = payload("push__default_branch")
    mock.get(REPO_API, json=api_repository())
    mock.get(f"{REPO_API}/compare/{push['before']}...{push['after']}", json=api_compare([
        {"filename": ".razorops.yaml", "status": "added"},
        {"filename": "app/controllers/application_controller.rb", "status": "modified"},
        {"filename": "specs/new.md", "previous_filename": "specs/old.md", "status": "renamed"},
    ]))
    assert github.changed_files(REPO, push["before"], push["after"]) == [
        ".razorops.yaml", "app/controllers/application_controller.rb", "specs/old.md",
        "specs/new.md",
    ]


def test_clone_url_and_git_auth(github: GitHubForge, clock: FakeTime) -> None:
    assert github.clone_url(REPO) == "https://github.com/Codertocat/Hello-World.git"
    assert github.git_auth(REPO) == {USERNAME_ENV: "x-access-token", PASSWORD_ENV: TOKEN}
    rewritten = make_forge(clock, git_url_rewrite={"https://github.com/": "/srv/git/"})
    assert rewritten.clone_url(REPO) == "/srv/git/Codertocat/Hello-World.git"
    with pytest.raises(ForgeError, match="owner/name"):
        github.clone_url("../../etc")


def test_github_enterprise_base_url(mock: responses.RequestsMock, clock: FakeTime) -> None:
    ghe = make_forge(clock, base_url="https://ghe.example.com/api/v3/")
    issue = api_issue()
    issue["url"] = "https://ghe.example.com/api/v3/repos/Codertocat/Hello-World/issues/1"
    mock.get("https://ghe.example.com/api/v3/repos/Codertocat/Hello-World/issues/1", json=issue)
    mock.post("https://ghe.example.com/api/v3/repos/Codertocat/Hello-World/issues/1/labels",
              json=[])
    assert ghe.get_issue(REPO, 1).number == 1
    ghe.add_labels(REPO, 1, ["forgebot"])  # follows the URLs GitHub Enterprise answered
    assert ghe.clone_url(REPO) == "https://ghe.example.com/Codertocat/Hello-World.git"


# --------------------------------------------------------------------- one job


def run_job(github: GitHubForge, attempt: int) -> None:
    """The forge calls of bot/pipeline/run.py for one attempt with three model rounds."""
    marker = "<!-- forgebot:job:7 -->"

    def show(text: str) -> None:
        github.upsert_comment(REPO, 1, marker, f"{marker} attempt {attempt}: {text}")

    show("prepare")
    github.get_issue(REPO, 1)
    github.git_auth(REPO)  # clone
    show("implement")
    for round_ in (1, 2, 3):
        show(f"model round {round_}")
    show("verify")
    show("publish")
    github.git_auth(REPO)  # push
    found = github.find_pull(REPO, BRANCH)
    if found is None:
        github.open_pull(REPO, new_pull())
    else:
        github.update_pull(REPO, found.number, body="Implements #1.", draft=False)
    github.set_status(REPO, SHA, "success", "forgebot job 7: submitted")
    show("done")


def test_the_calls_of_one_job(mock: responses.RequestsMock, github: GitHubForge) -> None:
    """docs/forges/github.md counts these: 15 for a first attempt, 13 for a second one."""
    mock.get(f"{REPO_API}/issues/1", json=api_issue())
    mock.get(f"{REPO_API}/issues/1/comments", json=[])
    mock.post(f"{REPO_API}/issues/1/comments", status=201,
              json=api_comment(40, "forgebot", "<!-- forgebot:job:7 -->"))
    mock.patch(f"{REPO_API}/issues/comments/40",
               json=api_comment(40, "forgebot", "<!-- forgebot:job:7 -->"))
    mock.get(REPO_API, json=api_repository())
    mock.get(f"{REPO_API}/pulls", json=[])
    mock.post(f"{REPO_API}/pulls", status=201, json=api_pull(2))
    mock.post(f"{REPO_API}/statuses/{SHA}", status=201, json=api_status("success", "ok"))

    run_job(github, 1)
    first = [(c.request.method, (c.request.url or "").split("?")[0]) for c in mock.calls]
    assert first == [
        ("GET", f"{REPO_API}/issues/1"),
        ("GET", f"{REPO_API}/issues/1/comments"),
        ("POST", f"{REPO_API}/issues/1/comments"),
        ("GET", f"{REPO_API}/issues/1"),
        *[("PATCH", f"{REPO_API}/issues/comments/40")] * 6,
        ("GET", REPO_API),
        ("GET", f"{REPO_API}/pulls"),
        ("POST", f"{REPO_API}/pulls"),
        ("POST", f"{REPO_API}/statuses/{SHA}"),
        ("PATCH", f"{REPO_API}/issues/comments/40"),
    ]
    assert len(first) == 15

    mock.replace(responses.GET, f"{REPO_API}/pulls", json=[api_pull(2)])
    mock.get(f"{REPO_API}/pulls/2", json=api_pull(2))
    mock.patch(f"{REPO_API}/pulls/2", json=api_pull(2))
    run_job(github, 2)
    assert len(mock.calls) - len(first) == 13


# ------------------------------------------------------------------------- faults


def test_faults_are_retried_and_one_job_makes_one_pull_and_one_comment(
    mock: responses.RequestsMock, github: GitHubForge, clock: FakeTime
) -> None:
    """A job's calls in order, each meeting a fault: 5xx, 429 with Retry-After, timeouts."""
    pulls, comments = f"{REPO_API}/pulls", f"{REPO_API}/issues/1/comments"
    mock.get(f"{REPO_API}/issues/1", status=502)  # a GET is retried by the session
    mock.get(f"{REPO_API}/issues/1", json=api_issue())
    mock.get(REPO_API, status=503)
    mock.get(REPO_API, json=api_repository())
    mock.get(pulls, body=requests.exceptions.ReadTimeout("read timed out"))
    mock.get(pulls, json=[])
    # A 500 to a POST may have made the pull request: the adapter looks before resending.
    mock.post(pulls, status=500, json={"message": "Server Error"})
    mock.post(pulls, status=429, headers={"Retry-After": "7"}, json={"message": "slow down"})
    mock.post(pulls, status=201, json=api_pull(2))
    mock.get(comments, json=[])
    mock.post(comments, body=requests.exceptions.ReadTimeout("read timed out"))
    mock.post(comments, status=201, json=api_comment(20, "forgebot", f"{MARKER} done"))

    assert github.get_issue(REPO, 1).number == 1
    assert github.find_pull(REPO, BRANCH) is None
    assert github.open_pull(REPO, new_pull()).number == 2
    github.upsert_comment(REPO, 1, MARKER, f"{MARKER} done")

    assert statuses(mock, "GET", f"{REPO_API}/issues/1") == [502, 200]
    assert statuses(mock, "POST", pulls) == [500, 429, 201]
    assert statuses(mock, "POST", comments) == ["ReadTimeout", 201]
    assert statuses(mock, "GET", pulls) == ["ReadTimeout", 200, 200]  # the look before resend
    assert statuses(mock, "GET", comments) == [200, 200]
    assert 7.0 in clock.sleeps  # Retry-After was honoured


def test_a_pull_request_made_despite_a_5xx_is_found_not_made_again(
    mock: responses.RequestsMock, github: GitHubForge
) -> None:
    pulls = f"{REPO_API}/pulls"
    mock.post(pulls, status=502)  # GitHub made it, the proxy lost the answer
    mock.get(REPO_API, json=api_repository())
    mock.get(pulls, json=[api_pull(3)])
    assert github.open_pull(REPO, new_pull()).number == 3
    assert statuses(mock, "POST", pulls) == [502]


def test_find_then_create_is_idempotent_across_runs(mock: responses.RequestsMock,
                                                    github: GitHubForge) -> None:
    pulls = f"{REPO_API}/pulls"
    mock.get(REPO_API, json=api_repository())
    mock.get(pulls, json=[])
    mock.post(pulls, status=201, json=api_pull(2))
    mock.get(pulls, json=[api_pull(2)])
    for _ in range(2):  # the pipeline's publish step, run twice (a retried attempt)
        pull = github.find_pull(REPO, BRANCH) or github.open_pull(REPO, new_pull())
        assert pull.number == 2
    assert statuses(mock, "POST", pulls) == [201]


def test_a_comment_posted_despite_a_timeout_is_edited_not_doubled(
    mock: responses.RequestsMock, github: GitHubForge
) -> None:
    comments = f"{REPO_API}/issues/1/comments"
    mock.get(f"{REPO_API}/issues/1", json=api_issue())
    mock.get(comments, json=[])
    mock.post(comments, body=requests.exceptions.ReadTimeout("read timed out"))
    mock.get(comments, json=[api_comment(21, "forgebot", f"{MARKER} v1")])  # it landed
    edited = mock.patch(f"{REPO_API}/issues/comments/21",
                        json=api_comment(21, "forgebot", f"{MARKER} v1"))
    github.upsert_comment(REPO, 1, MARKER, f"{MARKER} v1")
    assert statuses(mock, "POST", comments) == ["ReadTimeout"]
    assert edited.call_count == 1


def test_retries_give_up_with_a_retryable_error_without_the_token(
    mock: responses.RequestsMock, github: GitHubForge
) -> None:
    mock.get(f"{REPO_API}/issues/1", status=503, json={"message": f"token {TOKEN} down"})
    with pytest.raises(ForgeError, match="HTTP 503") as caught:
        github.get_issue(REPO, 1)
    assert caught.value.retryable is True
    assert TOKEN not in str(caught.value)
    assert len(mock.calls) == 4  # the first try and max_retries=3 retries


def test_reads_are_retried_by_the_session_only(mock: responses.RequestsMock,
                                               github: GitHubForge) -> None:
    """The client retries uncertain writes, never reads: attempts must not multiply."""
    mock.get(f"{REPO_API}/issues/1", json=api_issue())
    listed = mock.get(f"{REPO_API}/issues/1/comments", status=503)
    with pytest.raises(ForgeError, match="HTTP 503"):
        github.upsert_comment(REPO, 1, MARKER, f"{MARKER} x")
    assert listed.call_count == 4  # 1 + max_retries, not (1 + max_retries) squared


def test_an_uncertain_write_is_tried_a_bounded_number_of_times(
    mock: responses.RequestsMock, github: GitHubForge, clock: FakeTime
) -> None:
    mock.get(REPO_API, json=api_repository())
    posted = mock.post(f"{REPO_API}/statuses/{SHA}", status=500, json={"message": "boom"})
    with pytest.raises(ForgeError, match="HTTP 500") as caught:
        github.set_status(REPO, SHA, "pending", "working")
    assert caught.value.retryable is True
    assert posted.call_count == 4  # max_retries + 1 attempts, spaced out
    assert clock.sleeps == [0.5, 1.0, 2.0]


# ----------------------------------------------------------------------- the receiver

EVENTS = {
    "issues__labeled": "issues",
    "issue_comment__created_issue": "issue_comment",
    "issue_comment__created_pr": "issue_comment",
    "push__default_branch": "push",
    "pull_request__closed_merged": "pull_request",
    "pull_request__closed_unmerged": "pull_request",
    "pull_request_review__submitted": "pull_request_review",
}


def delivery(event: str, body: bytes, secret: str = "s3cret") -> dict[str, str]:
    return {"Content-Type": "application/json", "X-GitHub-Event": event,
            "X-GitHub-Delivery": hashlib.sha256(body).hexdigest()[:32],
            "X-Hub-Signature-256": "sha256=" + sign_sha256(secret, body)}


def test_every_github_delivery_is_stored_and_answered_202_without_an_api_call(
    mock: responses.RequestsMock, github: GitHubForge, store: Store
) -> None:
    client = create_app(store, {"github": github}).test_client()
    bodies = [(event, (FIXTURES / f"{name}.json").read_bytes()) for name, event in EVENTS.items()]
    bodies.append(("ping", b'{"zen": "Design for failure.", "hook_id": 1}'))
    for event, body in bodies:
        answer = client.post("/webhooks/github", data=body, headers=delivery(event, body))
        assert answer.status_code == 202, event
    assert store.delivery_counts() == {"pending": len(bodies)}
    assert len(mock.calls) == 0  # receiving never calls GitHub
    # The labelled issue ("bug") makes a job once its sender's permission is checked; every
    # other delivery is recorded and ignored without an API call.
    mock.get(f"{API}/repos/Codertocat/Hello-World/collaborators/Codertocat/permission",
             json={"permission": "admin", "role_name": "admin"})
    mock.post(f"{REPO_API}/issues/1/reactions", status=201, json={"id": 1, "content": "eyes"})
    policy = Policy(trigger=Trigger(labels=("bug",)))
    assert Planner(store, {"github": github}, policy, "forgebot").plan_pending() == 1
    assert "invalid" not in store.delivery_counts()
    # The permission, then 👀 on the issue: the label is taken.
    assert [c.request.url.rsplit("/", 1)[-1] for c in mock.calls] == ["permission", "reactions"]


# ------------------------------------------------------------------------- lifecycle


def test_close_issue_comments_then_sends_only_the_state(mock: responses.RequestsMock,
                                                        github: GitHubForge) -> None:
    mock.get(f"{REPO_API}/issues/1", json=api_issue())
    posted = mock.post(f"{REPO_API}/issues/1/comments", status=201,
                       json=api_comment(11, "forgebot", "merged"))
    closed = mock.patch(f"{REPO_API}/issues/1", json={**api_issue(), "state": "closed"})
    github.close_issue(REPO, 1, "merged")
    assert body_of(posted.calls[0]) == {"body": "merged"}
    assert body_of(closed.calls[0]) == {"state": "closed", "state_reason": "completed"}


@pytest.mark.parametrize(
    ("status", "answer"),
    [(204, None), (404, {"message": "Not Found"}),
     (422, {"message": "Reference does not exist"})],
)
def test_delete_branch_is_done_when_the_branch_is_gone(
    mock: responses.RequestsMock, github: GitHubForge, status: int, answer: Any
) -> None:
    url = f"{REPO_API}/git/refs/heads/{BRANCH}"  # the slash stays a slash
    deleted = mock.delete(url, status=status, json=answer)
    github.delete_branch(REPO, BRANCH)
    assert deleted.call_count == 1


def test_delete_branch_refused_is_an_error(mock: responses.RequestsMock,
                                           github: GitHubForge) -> None:
    mock.delete(f"{REPO_API}/git/refs/heads/{BRANCH}", status=422,
                json={"message": "Cannot delete the default branch"})
    with pytest.raises(ForgeError, match="delete branch"):
        github.delete_branch(REPO, BRANCH)


def bot_job(store: Store, pull: int = 2) -> int:
    """A finished job for issue #1 of Hello-World whose pull request is ``pull``."""
    job = store.create_job(trigger_key=trigger_key("github", REPO, 1), forge="github",
                           repo=REPO, default_branch="master", issue_number=1,
                           title="Spelling error", requested_by="Codertocat", delivery_row=None)
    assert job is not None
    store.update_job(job.id, branch=BRANCH, pull_number=pull)
    claim = store.claim_next("worker", 60)
    assert claim is not None
    store.finish(claim, "worker", "submitted", failed=False)
    return job.id


def plan_twice(github: GitHubForge, store: Store, event: str, body: bytes) -> None:
    """Plan the delivery, then the same body again under another delivery id (a replay)."""
    for suffix in ("a", "b"):
        headers = delivery(event, body)
        headers["X-GitHub-Delivery"] += suffix
        store.record_delivery("github", headers["X-GitHub-Delivery"], event, headers, body)
    Planner(store, {"github": github}, Policy(), "forgebot").plan_pending()


def test_a_merged_bot_pull_request_closes_the_issue_once(
    mock: responses.RequestsMock, github: GitHubForge, store: Store
) -> None:
    job_id = bot_job(store)
    merged = payload("pull_request__closed_unmerged")
    merged["pull_request"].update(merged=True, head={**merged["pull_request"]["head"],
                                                     "ref": BRANCH})
    mock.get(f"{REPO_API}/issues/1", json=api_issue())
    posted = mock.post(f"{REPO_API}/issues/1/comments", status=201,
                       json=api_comment(12, "forgebot", "merged"))
    closed = mock.patch(f"{REPO_API}/issues/1", json={**api_issue(), "state": "closed"})
    plan_twice(github, store, "pull_request", json.dumps(merged).encode())
    assert posted.call_count == closed.call_count == 1
    assert "[#2](https://github.com/Codertocat/Hello-World/pull/2)" in body_of(
        posted.calls[0])["body"]
    assert [e["kind"] for e in store.events(job_id)].count("pull.merged") == 1


def test_a_closed_pull_request_never_deletes_a_branch_outside_the_prefix(
    mock: responses.RequestsMock, github: GitHubForge, store: Store
) -> None:
    """The captured payload's head is ``changes``: the job is stopped and told, but that
    branch is not the bot's to delete."""
    job_id = bot_job(store)
    mock.get(f"{REPO_API}/issues/1", json=api_issue())
    posted = mock.post(f"{REPO_API}/issues/1/comments", status=201,
                       json=api_comment(13, "forgebot", "closed"))
    plan_twice(github, store, "pull_request",
               (FIXTURES / "pull_request__closed_unmerged.json").read_bytes())
    assert posted.call_count == 1
    assert not any(c.request.method == "DELETE" for c in mock.calls)
    assert [e["kind"] for e in store.events(job_id)].count("pull.closed") == 1


def test_a_review_requesting_changes_revises_once(
    mock: responses.RequestsMock, github: GitHubForge, store: Store
) -> None:
    job_id = bot_job(store)
    review = payload("pull_request_review__submitted")
    review["review"].update(state="changes_requested", body="Fix the other typo too.")
    mock.get(f"{REPO_API}/collaborators/Codertocat/permission",
             json={"permission": "write", "role_name": "write"})
    eyes = mock.post(f"{REPO_API}/issues/2/reactions", status=201,
                     json={"id": 1, "content": "eyes"})
    plan_twice(github, store, "pull_request_review", json.dumps(review).encode())
    assert eyes.call_count == 1
    assert store.get_job(job_id).state == "queued"
    assert store.last_request(job_id)["feedback"] == (
        "Review by @Codertocat (changes_requested):\nFix the other typo too.")


@pytest.mark.parametrize("secret", ["wrong", None])
def test_a_bad_or_missing_signature_is_401_and_nothing_is_stored(
    github: GitHubForge, store: Store, secret: str | None
) -> None:
    body = (FIXTURES / "issues__labeled.json").read_bytes()
    headers = delivery("issues", body, secret or "x")
    if secret is None:
        del headers["X-Hub-Signature-256"]
    answer = create_app(store, {"github": github}).test_client().post(
        "/webhooks/github", data=body, headers=headers)
    assert answer.status_code == 401
    assert store.delivery_counts() == {}


# ------------------------------------------------ reconciliation and the dashboard issue


def api_comment_at(comment_id: int, created: str, body: str = "/retry") -> dict[str, Any]:
    comment = copy.deepcopy(payload("issue_comment__created_issue")["comment"])
    comment.update(id=comment_id, body=body, created_at=created, updated_at=created)
    return comment


def test_default_branch_is_the_repositorys(mock: responses.RequestsMock,
                                            github: GitHubForge) -> None:
    mock.get(REPO_API, json=api_repository())
    assert github.default_branch(REPO) == api_repository()["default_branch"]


def test_open_issues_with_a_label_follow_pages_and_leave_pulls_out(
    mock: responses.RequestsMock, github: GitHubForge
) -> None:
    first = {**api_issue(), "number": 1}
    pull_as_issue = {**api_issue(), "number": 2, "pull_request": {"url": f"{REPO_API}/pulls/2"}}
    page2 = f"{REPO_API}/issues?state=open&labels=forgebot&per_page=100&page=2"
    mock.get(f"{REPO_API}/issues", json=[first],
             headers={"Link": f'<{page2}>; rel="next", <{page2}>; rel="last"'},
             match=[responses.matchers.query_param_matcher(
                 {"state": "open", "labels": "forgebot", "per_page": "100"})])
    mock.get(f"{REPO_API}/issues", json=[pull_as_issue, {**api_issue(), "number": 5}],
             match=[responses.matchers.query_param_matcher(
                 {"state": "open", "labels": "forgebot", "per_page": "100", "page": "2"})])
    issues = github.open_issues_with_label(REPO, "forgebot")
    assert [i.number for i in issues] == [1, 5]
    assert issues[0].labels == ("bug",) and issues[0].author == "Codertocat"


def test_the_label_actor_is_who_added_that_label_last(
    mock: responses.RequestsMock, github: GitHubForge
) -> None:
    def event(kind: str, label: str, actor: str) -> dict[str, Any]:
        return {"id": 1, "event": kind, "label": {"name": label, "color": "fff"},
                "actor": {"login": actor}, "created_at": "2024-01-01T00:00:00Z"}

    mock.get(f"{REPO_API}/issues/1/events", json=[
        event("labeled", "forgebot", "mallory"), event("unlabeled", "forgebot", "grace"),
        event("labeled", "forgebot", "grace"), event("labeled", "bug", "octocat"),
        {"id": 9, "event": "closed", "actor": {"login": "x"}}])
    assert github.label_actor(REPO, 1, "forgebot") == "grace"
    mock.get(f"{REPO_API}/issues/3/events", json=[event("labeled", "bug", "octocat")])
    assert github.label_actor(REPO, 3, "forgebot") is None


def test_comments_since_keeps_only_those_created_after(
    mock: responses.RequestsMock, github: GitHubForge
) -> None:
    since = datetime(2019, 5, 15, 15, 20, 21, tzinfo=UTC)
    mock.get(f"{REPO_API}/issues/1/comments", json=[
        api_comment_at(10, "2019-05-15T15:20:21Z", "edited later, created at since"),
        api_comment_at(12, "2019-05-15T15:25:00Z", "/retry be brief"),
        api_comment_at(11, "2019-05-15T15:21:00Z", "/status")],
        match=[responses.matchers.query_param_matcher(
            {"since": "2019-05-15T15:20:21Z", "per_page": "100"})])
    found = github.comments_since(REPO, 1, since)
    assert [(c.id, c.author, c.body) for c in found] == [
        (11, "Codertocat", "/status"), (12, "Codertocat", "/retry be brief")]
    assert found[0].created == datetime(2019, 5, 15, 15, 21, tzinfo=UTC)


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, ("merged", "ailisp")),
    ({"merged": False, "merged_at": None, "merged_by": None}, ("closed", "")),
    ({"state": "open", "merged": False, "merged_at": None, "merged_by": None}, ("open", "")),
])
def test_pull_state(mock: responses.RequestsMock, github: GitHubForge,
                    changes: dict[str, Any], expected: tuple[str, str]) -> None:
    pull = {**payload("pull_request__closed_merged")["pull_request"], **changes}
    mock.get(f"{REPO_API}/pulls/3", json=pull)
    state = github.pull_state(REPO, 3)
    assert (state.state, state.by) == expected
    assert (state.number, state.head) == (3, "byao1276-patch-1")
    assert state.url == pull["html_url"]


def test_pull_state_of_a_missing_pull_request_is_a_forge_error(
    mock: responses.RequestsMock, github: GitHubForge
) -> None:
    mock.get(f"{REPO_API}/pulls/404", status=404, json={"message": "Not Found"})
    with pytest.raises(ForgeError):
        github.pull_state(REPO, 404)


def test_create_and_edit_the_dashboard_issue(mock: responses.RequestsMock,
                                             github: GitHubForge) -> None:
    create = mock.post(f"{REPO_API}/issues", status=201, json={**api_issue(), "number": 42},
                       match=[responses.matchers.json_params_matcher(
                           {"title": "forgebot dashboard", "body": "jobs"})])
    assert github.create_issue(REPO, "forgebot dashboard", "jobs") == 42
    assert create.call_count == 1
    edit = mock.patch(f"{REPO_API}/issues/42", json=api_issue(),
                      match=[responses.matchers.json_params_matcher({"body": "new jobs"})])
    github.edit_issue(REPO, 42, "new jobs")
    assert edit.call_count == 1


def test_an_uncertain_issue_creation_is_not_repeated(mock: responses.RequestsMock,
                                                     github: GitHubForge) -> None:
    create = mock.post(f"{REPO_API}/issues", status=502)
    with pytest.raises(ForgeError):
        github.create_issue(REPO, "forgebot dashboard", "jobs")
    assert create.call_count == 1  # a second issue is worse than a later pass
