"""The GitLab client against a fake GitLab (``responses``): every call, and the faults.

The client gets a real resilient session from ``bot.forges.http`` with a recording
``sleep`` and a fixed jitter, so retries are real but take no time. Nothing of ours is
patched: ``responses`` answers at the HTTP adapter, below python-gitlab and our session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from bot import gitops
from bot.config import GitLabSettings
from bot.errors import ConfigError, ForgeError
from bot.forges.base import NewPull, PullRequest
from bot.forges.gitlab import GitLabForge
from bot.forges.http import BreakerRegistry, make_session
from bot.pipeline.planner import Planner, trigger_key
from bot.policy.model import Policy
from bot.store import Store

TOKEN = "glpat-test-token-0123456789"  # a fake token for a fake server
BASE = "https://gitlab.example.com"
API = f"{BASE}/api/v4"
PROJECT = f"{API}/projects/acme%2Fhello"
REPO = "acme/hello"
BRANCH = "forgebot/3-add-a-farewell"
SHA = "8f784b32840472e7fda687b1c18e2bef26af768b"
BASE_SHA = "2a5e548bfc0a6b8975956a219e03caabb9e799c7"
BOT_ID = 42
MAX_RETRIES = 4
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks" / "gitlab"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def forge(sleeps: list[float]) -> GitLabForge:
    session = make_session(
        host_key="gitlab:gitlab.example.com", timeout_s=5.0, max_retries=MAX_RETRIES,
        sleep=sleeps.append, jitter=lambda: 0.5, backoff_base_s=0.5, backoff_cap_s=30.0,
        breakers=BreakerRegistry(),
    )
    settings = GitLabSettings(
        enabled=True, base_url=BASE, token=TOKEN, webhook_secret="s",
        git_url_rewrite={f"{BASE}/": "/srv/mirror/"},
    )
    return GitLabForge(settings, "forgebot", session=session)


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def mr_json(iid: int = 7, *, title: str = "Add a farewell", draft: bool = False,
            source: str = BRANCH, fork: bool = False) -> dict[str, Any]:
    return {
        "id": 1000 + iid, "iid": iid, "project_id": 11, "title": title,
        "description": "Closes #3", "state": "opened", "draft": draft,
        "source_branch": source, "target_branch": "main",
        "source_project_id": 99 if fork else 11, "target_project_id": 11,
        "web_url": f"{BASE}/acme/hello/-/merge_requests/{iid}",
    }


def created(api: responses.RequestsMock, method: str, url: str) -> int:
    """How many requests to ``url`` the server answered 201 (what it actually made)."""
    return sum(
        1 for call in api.calls
        if call.request.method == method and call.request.url == url
        and getattr(call.response, "status_code", None) == 201
    )


def sent(api: responses.RequestsMock, method: str, url: str) -> int:
    return sum(1 for c in api.calls if c.request.method == method and c.request.url == url)


def body_of(api: responses.RequestsMock, index: int) -> Any:
    raw = api.calls[index].request.body
    return json.loads(raw if raw is not None else b"null")


# --------------------------------------------------------------------------- construction


def test_a_token_is_required() -> None:
    with pytest.raises(ConfigError, match=r"forges\.gitlab\.token"):
        GitLabForge(GitLabSettings(), "forgebot")


def test_a_base_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        GitLabForge(GitLabSettings(token=TOKEN, base_url="gitlab.example.com"), "forgebot")


def test_the_api_root_as_base_url_is_read_as_the_instance(api: responses.RequestsMock) -> None:
    forge = GitLabForge(GitLabSettings(token=TOKEN, base_url=f"{BASE}/api/v4/"), "forgebot",
                        session=make_session(host_key="gitlab:t", timeout_s=1, max_retries=0))
    api.get(f"{PROJECT}/issues/3", json={"iid": 3, "title": "t", "description": None, "labels": [],
                                         "author": {"username": "ada"}})
    assert forge.get_issue(REPO, 3).author == "ada"


# --------------------------------------------------------------------------- issues


def test_get_issue_sends_the_token_header(forge: GitLabForge, api: responses.RequestsMock) -> None:
    api.get(
        f"{PROJECT}/issues/3",
        json={"iid": 3, "title": "Add a farewell", "description": None,
              "labels": ["forgebot", "bug"], "author": {"id": 5, "username": "ada"}},
        match=[matchers.header_matcher({"PRIVATE-TOKEN": TOKEN})],
    )
    issue = forge.get_issue(REPO, 3)
    assert (issue.number, issue.title, issue.body) == (3, "Add a farewell", "")
    assert issue.labels == ("forgebot", "bug")
    assert issue.author == "ada"


def test_a_subgroup_project_path_is_url_encoded(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.get(f"{API}/projects/acme%2Fplatform%2Fhello/issues/1",
            json={"iid": 1, "title": "t", "description": "d", "labels": [],
                  "author": {"username": "ada"}})
    assert forge.get_issue("acme/platform/hello", 1).body == "d"


def test_errors_are_forge_errors_without_the_token(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.get(f"{PROJECT}/issues/3", status=401, json={"message": "401 Unauthorized"})
    api.get(f"{PROJECT}/issues/4", status=404, json={"message": "404 Issue Not Found"})
    with pytest.raises(ForgeError) as unauthorized:
        forge.get_issue(REPO, 3)
    assert not unauthorized.value.retryable
    assert "HTTP 401" in str(unauthorized.value)
    with pytest.raises(ForgeError, match="404 Issue Not Found") as missing:
        forge.get_issue(REPO, 4)
    assert not missing.value.retryable
    assert TOKEN not in str(unauthorized.value) + str(missing.value)


# --------------------------------------------------------------------------- merge requests


def test_find_pull_asks_for_open_mrs_from_the_branch_and_skips_forks(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.get(
        f"{PROJECT}/merge_requests",
        json=[mr_json(5, fork=True), mr_json(7, title="Draft: Add a farewell", draft=True)],
        match=[matchers.query_param_matcher(
            {"state": "opened", "source_branch": BRANCH, "per_page": "100"})],
    )
    assert forge.find_pull(REPO, BRANCH) == PullRequest(
        number=7, head=BRANCH, base="main", title="Add a farewell", body="Closes #3",
        draft=True, url=f"{BASE}/acme/hello/-/merge_requests/7",
    )


def test_find_pull_finds_nothing(forge: GitLabForge, api: responses.RequestsMock) -> None:
    api.get(f"{PROJECT}/merge_requests", json=[])
    assert forge.find_pull(REPO, BRANCH) is None


@pytest.mark.parametrize(("draft", "title"), [(True, "Draft: Add a farewell"),
                                              (False, "Add a farewell")])
def test_open_pull_marks_a_draft_by_the_title_prefix(
    forge: GitLabForge, api: responses.RequestsMock, draft: bool, title: str
) -> None:
    api.post(
        f"{PROJECT}/merge_requests", status=201, json=mr_json(title=title, draft=draft),
        match=[matchers.json_params_matcher({
            "source_branch": BRANCH, "target_branch": "main", "title": title,
            "description": "Closes #3"})],
    )
    pull = forge.open_pull(REPO, NewPull(head=BRANCH, base="main", title="Add a farewell",
                                         body="Closes #3", draft=draft))
    assert (pull.number, pull.draft, pull.title) == (7, draft, "Add a farewell")


def test_open_pull_returns_the_open_mr_when_gitlab_says_one_exists(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.post(f"{PROJECT}/merge_requests", status=409, json={
        "message": ["Another open merge request already exists for this source branch: !7"]})
    api.get(f"{PROJECT}/merge_requests", json=[mr_json(7)])
    pull = forge.open_pull(REPO, NewPull(BRANCH, "main", "Add a farewell", "b", False))
    assert pull.number == 7


def test_a_conflict_with_no_open_mr_is_an_error(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.post(f"{PROJECT}/merge_requests", status=409, json={"message": "conflict"})
    api.get(f"{PROJECT}/merge_requests", json=[])
    with pytest.raises(ForgeError, match="HTTP 409"):
        forge.open_pull(REPO, NewPull(BRANCH, "main", "t", "b", False))


@pytest.mark.parametrize(
    ("current", "draft", "wanted"),
    [
        ("Draft: Add a farewell", False, "Add a farewell"),
        ("[Draft] Add a farewell", False, "Add a farewell"),
        ("Add a farewell", True, "Draft: Add a farewell"),
        ("(draft) Add a farewell", True, "Draft: Add a farewell"),
    ],
)
def test_update_pull_replaces_the_body_and_the_draft_prefix(
    forge: GitLabForge, api: responses.RequestsMock, current: str, draft: bool, wanted: str
) -> None:
    api.get(f"{PROJECT}/merge_requests/7", json=mr_json(title=current))
    api.put(
        f"{PROJECT}/merge_requests/7", json={**mr_json(title=wanted, draft=draft),
                                             "description": "new body"},
        match=[matchers.json_params_matcher({"description": "new body", "title": wanted})],
    )
    pull = forge.update_pull(REPO, 7, body="new body", draft=draft)
    assert (pull.body, pull.draft, pull.title) == ("new body", draft, "Add a farewell")


# --------------------------------------------------------------------------- notes


@pytest.mark.parametrize(("pull", "path"), [(False, "issues/3"), (True, "merge_requests/3")])
def test_comment_on_an_issue_or_a_merge_request(
    forge: GitLabForge, api: responses.RequestsMock, pull: bool, path: str
) -> None:
    api.post(f"{PROJECT}/{path}/notes", status=201, json={"id": 1, "body": "hello"},
             match=[matchers.json_params_matcher({"body": "hello"})])
    forge.comment(REPO, 3, "hello", pull=pull)


MARKER = "<!-- forgebot:status -->"
NOTES_URL = f"{PROJECT}/issues/3/notes"


def note(note_id: int, author_id: int, body: str, *, system: bool = False) -> dict[str, Any]:
    return {"id": note_id, "body": body, "system": system,
            "author": {"id": author_id, "username": f"user{author_id}"}}


def test_upsert_comment_edits_the_bots_own_note_across_pages(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.get(f"{API}/user", json={"id": BOT_ID, "username": "project_11_bot_1f2e"})
    next_page = f"{NOTES_URL}?order_by=created_at&page=2&per_page=100&sort=asc"
    api.get(NOTES_URL, json=[
        note(1, 5, f"someone quoting {MARKER}"),  # another user's note: never edited
        note(2, BOT_ID, f"system {MARKER}", system=True),
    ], headers={"Link": f'<{next_page}>; rel="next"'},
        match=[matchers.query_param_matcher(
            {"sort": "asc", "order_by": "created_at", "per_page": "100"})])
    api.get(next_page, json=[note(3, BOT_ID, "an unrelated bot note"),
                             note(4, BOT_ID, f"old status {MARKER}")])
    api.put(f"{NOTES_URL}/4", json=note(4, BOT_ID, f"new {MARKER}"),
            match=[matchers.json_params_matcher({"body": f"new {MARKER}"})])
    forge.upsert_comment(REPO, 3, MARKER, f"new {MARKER}")


def test_upsert_comment_adds_a_note_then_edits_it_by_its_remembered_id(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    mr_notes = f"{PROJECT}/merge_requests/7/notes"
    api.get(f"{API}/user", json={"id": BOT_ID})
    api.get(mr_notes, json=[note(1, 5, "lgtm")])
    api.post(mr_notes, status=201, json=note(9, BOT_ID, f"first {MARKER}"),
             match=[matchers.json_params_matcher({"body": f"first {MARKER}"})])
    api.put(f"{mr_notes}/9", json=note(9, BOT_ID, f"second {MARKER}"),
            match=[matchers.json_params_matcher({"body": f"second {MARKER}"})])
    forge.upsert_comment(REPO, 7, MARKER, f"first {MARKER}", pull=True)
    forge.upsert_comment(REPO, 7, MARKER, f"second {MARKER}", pull=True)
    # One status note, updated at every stage: no second search, no second GET /user.
    assert [c.request.method for c in api.calls] == ["GET", "GET", "POST", "PUT"]


def test_upsert_comment_adds_a_new_note_when_its_note_was_deleted(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.get(f"{API}/user", json={"id": BOT_ID})
    api.get(NOTES_URL, json=[note(4, BOT_ID, f"old {MARKER}")])
    api.put(f"{NOTES_URL}/4", json=note(4, BOT_ID, f"one {MARKER}"))
    forge.upsert_comment(REPO, 3, MARKER, f"one {MARKER}")
    # Someone deletes the note; the next update finds it gone and adds a new one.
    api.put(f"{NOTES_URL}/4", status=404, json={"message": "404 Not found"})
    api.get(NOTES_URL, json=[])
    api.post(NOTES_URL, status=201, json=note(5, BOT_ID, f"two {MARKER}"))
    forge.upsert_comment(REPO, 3, MARKER, f"two {MARKER}")
    assert created(api, "POST", NOTES_URL) == 1


def test_upsert_comment_needs_the_marker_in_the_body(forge: GitLabForge) -> None:
    with pytest.raises(ForgeError, match="marker"):
        forge.upsert_comment(REPO, 3, MARKER, "no marker here")


# --------------------------------------------------------------------------- reactions


@pytest.mark.parametrize(
    ("comment_id", "pull", "path", "reaction", "emoji"),
    [
        (None, False, "issues/3/award_emoji", "eyes", "eyes"),
        (77, False, "issues/3/notes/77/award_emoji", "eyes", "eyes"),
        (77, True, "merge_requests/3/notes/77/award_emoji", "+1", "thumbsup"),
        (None, True, "merge_requests/3/award_emoji", "hooray", "tada"),
    ],
)
def test_react_awards_an_emoji(
    forge: GitLabForge, api: responses.RequestsMock, comment_id: int | None, pull: bool,
    path: str, reaction: str, emoji: str,
) -> None:
    api.post(f"{PROJECT}/{path}", status=201, json={"id": 1, "name": emoji},
             match=[matchers.json_params_matcher({"name": emoji})])
    forge.react(REPO, 3, comment_id, reaction, pull=pull)


def test_react_twice_is_fine_but_other_404s_are_not(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.post(f"{PROJECT}/issues/3/award_emoji", status=404,
             json={"message": "404 Award Emoji Name has already been taken Not Found"})
    api.post(f"{PROJECT}/issues/4/award_emoji", status=404,
             json={"message": "404 Issue Not Found"})
    forge.react(REPO, 3, None, "eyes")
    with pytest.raises(ForgeError, match="HTTP 404"):
        forge.react(REPO, 4, None, "eyes")


# --------------------------------------------------------------------------- labels


def test_add_and_remove_labels(forge: GitLabForge, api: responses.RequestsMock) -> None:
    api.put(f"{PROJECT}/issues/3", json={"iid": 3},
            match=[matchers.json_params_matcher({"add_labels": "forgebot:done,needs review"})])
    api.put(f"{PROJECT}/merge_requests/7", json={"iid": 7},
            match=[matchers.json_params_matcher({"remove_labels": "forgebot"})])
    forge.add_labels(REPO, 3, ["forgebot:done", "needs review"])
    forge.add_labels(REPO, 3, [])  # nothing to add: no call
    forge.remove_label(REPO, 7, "forgebot", pull=True)


def test_a_label_with_a_comma_is_refused(forge: GitLabForge) -> None:
    with pytest.raises(ForgeError, match="comma"):
        forge.add_labels(REPO, 3, ["a,b"])


# --------------------------------------------------------------------------- statuses

STATUS_URL = f"{PROJECT}/statuses/{SHA}"


@pytest.mark.parametrize(("state", "sent_state"), [
    ("pending", "pending"), ("success", "success"), ("failure", "failed"), ("error", "failed"),
])
def test_set_status_names_it_forgebot(
    forge: GitLabForge, api: responses.RequestsMock, state: str, sent_state: str
) -> None:
    api.post(STATUS_URL, status=201, json={"id": 1, "status": sent_state},
             match=[matchers.json_params_matcher(
                 {"state": sent_state, "name": "forgebot", "description": "x" * 255})])
    forge.set_status(REPO, SHA, state, "x" * 300)


def test_comment_commit_posts_a_note_once(forge: GitLabForge,
                                         api: responses.RequestsMock) -> None:
    url = f"{PROJECT}/repository/commits/{SHA}/comments"
    api.get(f"{API}/user", json={"id": BOT_ID})
    theirs = {"note": "the errors", "author": {"id": 7, "username": "ada"}}
    mine = {"note": "the errors", "author": {"id": BOT_ID, "username": "forgebot"}}
    api.get(url, json=[theirs])
    api.get(url, json=[theirs, mine])
    posted = api.post(url, status=201, json=mine,
                      match=[matchers.json_params_matcher({"note": "the errors"})])
    forge.comment_commit(REPO, SHA, "the errors")  # only someone else's: posted
    forge.comment_commit(REPO, SHA, "the errors")  # the bot's own is there: not again
    assert posted.call_count == 1
    with pytest.raises(ForgeError, match="not a full commit sha"):
        forge.comment_commit(REPO, "HEAD", "x")


def test_setting_pending_again_is_not_an_error(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.post(STATUS_URL, status=400, json={"message": "Cannot transition status via :enqueue "
             "from :pending (Reason(s): Status cannot transition via \"enqueue\")"})
    forge.set_status(REPO, SHA, "pending", "queued")


def test_other_status_refusals_are_errors(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.post(STATUS_URL, status=400, json={"message": "Cannot transition status via :enqueue "
             "from :running (Reason(s): Status cannot transition via \"enqueue\")"})
    with pytest.raises(ForgeError, match="HTTP 400"):
        forge.set_status(REPO, SHA, "pending", "queued")
    with pytest.raises(ForgeError, match="unknown status state"):
        forge.set_status(REPO, SHA, "running", "x")
    with pytest.raises(ForgeError, match="not a full commit sha"):
        forge.set_status(REPO, "main", "success", "x")


# --------------------------------------------------------------------------- permission


@pytest.mark.parametrize(("level", "expected"), [
    (5, "none"), (10, "read"), (15, "read"), (20, "read"), (30, "write"), (40, "write"),
    (50, "admin"), (60, "admin"),
])
def test_permission_maps_the_access_level_including_inherited_members(
    forge: GitLabForge, api: responses.RequestsMock, level: int, expected: str
) -> None:
    api.get(f"{API}/users", json=[{"id": 5, "username": "ada"}],
            match=[matchers.query_param_matcher({"username": "ada", "per_page": "100"})])
    api.get(f"{PROJECT}/members/all/5",
            json={"id": 5, "username": "ada", "access_level": level, "state": "active"})
    assert forge.permission(REPO, "ada") == expected


def test_permission_of_a_user_known_by_id_only(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.get(f"{PROJECT}/members/all/12",
            json={"id": 12, "username": "ada", "access_level": 30, "state": "active"})
    assert forge.permission(REPO, "#12") == "write"  # no user lookup: responses would fail it
    assert forge.permission(REPO, "#x") == "none"


def test_permission_of_strangers_and_blocked_users_is_none(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.get(f"{API}/users", json=[], match=[matchers.query_param_matcher(
        {"username": "nobody", "per_page": "100"})])
    api.get(f"{API}/users", json=[{"id": 6, "username": "eve"}], match=[
        matchers.query_param_matcher({"username": "eve", "per_page": "100"})])
    api.get(f"{PROJECT}/members/all/6", status=404, json={"message": "404 Not found"})
    api.get(f"{API}/users", json=[{"id": 7, "username": "mal"}], match=[
        matchers.query_param_matcher({"username": "mal", "per_page": "100"})])
    api.get(f"{PROJECT}/members/all/7", json={"id": 7, "access_level": 40, "state": "blocked"})
    assert forge.permission(REPO, "nobody") == "none"
    assert forge.permission(REPO, "eve") == "none"
    assert forge.permission(REPO, "mal") == "none"


# --------------------------------------------------------------------------- repository


def test_changed_files_lists_both_sides_of_a_rename(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.get(f"{PROJECT}/repository/compare", json={
        "commits": [{"id": SHA}], "compare_timeout": False, "diffs": [
            {"old_path": "specs/a.md", "new_path": "specs/a.md", "new_file": False},
            {"old_path": "old.py", "new_path": "new.py", "renamed_file": True},
            {"old_path": "gone.py", "new_path": "gone.py", "deleted_file": True},
        ]},
        match=[matchers.query_param_matcher({"from": BASE_SHA, "to": SHA})])
    assert forge.changed_files(REPO, BASE_SHA, SHA) == [
        "specs/a.md", "old.py", "new.py", "gone.py"]


def test_changed_files_refuses_what_it_cannot_trust(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.get(f"{PROJECT}/repository/compare", json={"compare_timeout": True, "diffs": []})
    with pytest.raises(ForgeError, match="timed out"):
        forge.changed_files(REPO, BASE_SHA, SHA)
    with pytest.raises(ForgeError, match="not a full commit sha"):
        forge.changed_files(REPO, "HEAD~1", SHA)


def test_clone_url_is_rewritten_and_asked_for_once(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.get(PROJECT, json={"id": 11, "path_with_namespace": REPO,
                           "http_url_to_repo": f"{BASE}/acme/hello.git"})
    assert forge.clone_url(REPO) == "/srv/mirror/acme/hello.git"
    assert forge.clone_url(REPO) == "/srv/mirror/acme/hello.git"
    assert len(api.calls) == 1


def test_git_auth_is_the_token_for_askpass(forge: GitLabForge) -> None:
    assert forge.git_auth(REPO) == gitops.auth_env("oauth2", TOKEN)


# --------------------------------------------------------------------------- faults


def test_faults_are_retried_and_one_job_makes_one_mr_and_one_note(
    forge: GitLabForge, api: responses.RequestsMock, sleeps: list[float]
) -> None:
    mrs = f"{PROJECT}/merge_requests"
    # find_pull: a 502, a 429 that says when, a read timeout, then the answer.
    api.get(mrs, status=502, body="bad gateway")
    api.get(mrs, status=429, headers={"Retry-After": "2"}, json={"message": "Retry later"})
    api.get(mrs, body=requests.exceptions.ReadTimeout("read timed out"))
    api.get(mrs, json=[])
    # open_pull: rate limited with a Retry-After (the server turned it away), then created.
    api.post(mrs, status=429, headers={"Retry-After": "1"}, json={"message": "Retry later"})
    api.post(mrs, body=requests.exceptions.ConnectTimeout("could not connect"))
    api.post(mrs, status=201, json=mr_json(7))
    # the status note: who am I (a 503), the notes (a timeout), then one new note.
    api.get(f"{API}/user", status=503, body="unavailable")
    api.get(f"{API}/user", json={"id": BOT_ID})
    api.get(NOTES_URL, body=requests.exceptions.ConnectionError("connection reset"))
    api.get(NOTES_URL, json=[])
    api.post(NOTES_URL, status=503, headers={"Retry-After": "1"}, body="busy")
    api.post(NOTES_URL, status=201, json=note(9, BOT_ID, MARKER))

    assert forge.find_pull(REPO, BRANCH) is None
    pull = forge.open_pull(REPO, NewPull(BRANCH, "main", "Add a farewell", "Closes #3", False))
    forge.upsert_comment(REPO, 3, MARKER, f"status {MARKER}")

    assert pull.number == 7
    assert created(api, "POST", mrs) == 1
    assert created(api, "POST", NOTES_URL) == 1
    # Backoff is jitter (0.5) x 0.5s x 2**retry; a Retry-After is obeyed as it is.
    assert sleeps == [
        0.25, 2.0, 1.0,  # find_pull: 502 backoff, Retry-After 2, timeout backoff
        1.0, 0.5,  # open_pull: Retry-After 1, connect-timeout backoff
        0.25,  # GET /user: 503 backoff
        0.25, 1.0,  # notes: reset backoff, then the POST's 503 Retry-After 1
    ]


def test_a_create_whose_answer_was_lost_is_found_not_repeated(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    mrs = f"{PROJECT}/merge_requests"
    # The server made the MR but the answer never came: a POST is not blindly re-sent.
    api.post(mrs, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(ForgeError) as lost:
        forge.open_pull(REPO, NewPull(BRANCH, "main", "t", "b", False))
    assert lost.value.retryable
    assert sent(api, "POST", mrs) == 1
    # The job's next attempt looks the branch up first, as the pipeline does, and finds it;
    # had it raced and tried to create again, GitLab's 409 leads to the same MR.
    api.get(mrs, json=[mr_json(7)])
    api.post(mrs, status=409, json={"message": ["Another open merge request already exists "
                                                "for this source branch: !7"]})
    api.get(mrs, json=[mr_json(7)])
    found = forge.find_pull(REPO, BRANCH)
    again = forge.open_pull(REPO, NewPull(BRANCH, "main", "t", "b", False))
    assert found is not None and found.number == again.number == 7


def test_a_5xx_on_a_create_is_not_retried_but_is_retryable(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.post(NOTES_URL, status=502, body="bad gateway")
    with pytest.raises(ForgeError) as failed:
        forge.comment(REPO, 3, "hello")
    assert failed.value.retryable
    assert len(api.calls) == 1  # it may have been posted: no second note


def test_python_gitlab_does_not_retry_on_top_of_the_session(
    forge: GitLabForge, api: responses.RequestsMock, sleeps: list[float]
) -> None:
    # A wait longer than the session will sleep: one request, then a retryable error, not
    # python-gitlab sleeping ten more times on its own.
    api.get(f"{PROJECT}/issues/3", status=429, headers={"Retry-After": "3600"},
            json={"message": "Retry later"})
    with pytest.raises(ForgeError) as limited:
        forge.get_issue(REPO, 3)
    assert limited.value.retryable
    assert len(api.calls) == 1
    assert sleeps == []


def test_retries_stop_after_the_configured_number(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.get(f"{PROJECT}/issues/3", status=503, body="unavailable")
    with pytest.raises(ForgeError, match="HTTP 503") as failed:
        forge.get_issue(REPO, 3)
    assert failed.value.retryable
    assert len(api.calls) == MAX_RETRIES + 1


# --------------------------------------------------------------------------- lifecycle


def test_close_issue_adds_the_note_then_closes(
    forge: GitLabForge, api: responses.RequestsMock
) -> None:
    api.post(f"{PROJECT}/issues/3/notes", status=201, json={"id": 5, "body": "merged"},
             match=[matchers.json_params_matcher({"body": "merged"})])
    api.put(f"{PROJECT}/issues/3", json={"iid": 3, "state": "closed"},
            match=[matchers.json_params_matcher({"state_event": "close"})])
    forge.close_issue(REPO, 3, "merged")
    assert [c.request.method for c in api.calls] == ["POST", "PUT"]


@pytest.mark.parametrize("status", [204, 404])
def test_delete_branch_encodes_the_name_and_a_gone_branch_is_fine(
    forge: GitLabForge, api: responses.RequestsMock, status: int
) -> None:
    api.delete(f"{PROJECT}/repository/branches/forgebot%2F3-add-a-farewell", status=status)
    forge.delete_branch(REPO, BRANCH)


def test_delete_branch_refused_is_an_error(forge: GitLabForge, api: responses.RequestsMock) -> None:
    api.delete(f"{PROJECT}/repository/branches/forgebot%2F3-add-a-farewell", status=403,
               json={"message": "403 Forbidden"})
    with pytest.raises(ForgeError, match="HTTP 403"):
        forge.delete_branch(REPO, BRANCH)


HELLO_PROJECT = f"{API}/projects/gitlab-org%2Fhello-world"
HELLO = "gitlab-org/hello-world"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def bot_job(store: Store, pull: int = 1) -> int:
    """A finished job for issue #1 of gitlab-org/hello-world whose merge request is !1."""
    job = store.create_job(trigger_key=trigger_key("gitlab", HELLO, 1), forge="gitlab",
                           repo=HELLO, default_branch="master", issue_number=1,
                           title="found a bug", requested_by="sytses", delivery_row=None)
    assert job is not None
    store.update_job(job.id, branch="forgebot/1-found-a-bug", pull_number=pull)
    claim = store.claim_next("worker", 60)
    assert claim is not None
    store.finish(claim, "worker", "submitted", failed=False)
    return job.id


def plan_twice(forge: GitLabForge, store: Store, kind: str, body: bytes) -> None:
    """Plan the delivery, then the same body again under another id (a replay)."""
    for key in ("a", "b"):
        headers = {"X-Gitlab-Event": kind, "Idempotency-Key": f"delivery-{key}"}
        store.record_delivery("gitlab", headers["Idempotency-Key"], kind, headers, body)
    Planner(store, {"gitlab": forge}, Policy(), "forgebot").plan_pending()


def test_a_diff_note_on_the_bots_merge_request_revises_once(
    forge: GitLabForge, api: responses.RequestsMock, store: Store
) -> None:
    job_id = bot_job(store)
    api.get(f"{API}/users", json=[{"id": 7, "username": "sytses"}])
    api.get(f"{HELLO_PROJECT}/members/all/7", json={"id": 7, "access_level": 40,
                                                    "state": "active"})
    eyes = api.post(f"{HELLO_PROJECT}/merge_requests/1/award_emoji", status=201,
                    json={"id": 1, "name": "eyes"})
    plan_twice(forge, store, "Note Hook", fixture_bytes("note_hook__diff_note.json"))
    assert eyes.call_count == 1  # 👀 on the merge request, not on issue #1
    assert store.get_job(job_id).state == "queued"
    assert store.last_request(job_id)["feedback"] == (
        "Review by @sytses (commented):\nREADME.md:1: check spelling")


def test_a_closed_issue_cancels_its_job_with_one_note(
    forge: GitLabForge, api: responses.RequestsMock, store: Store
) -> None:
    job = store.create_job(trigger_key=trigger_key("gitlab", HELLO, 1), forge="gitlab",
                           repo=HELLO, default_branch="master", issue_number=1,
                           title="found a bug", requested_by="sytses", delivery_row=None)
    assert job is not None
    note = api.post(f"{HELLO_PROJECT}/issues/1/notes", status=201, json={"id": 9})
    plan_twice(forge, store, "Issue Hook", fixture_bytes("issue_hook__close.json"))
    assert note.call_count == 1
    assert "@sytses closed the issue" in body_of(api, 0)["body"]
    assert store.get_job(job.id).state == "cancelled"


def test_a_command_on_a_merge_request_is_answered_on_the_merge_request(
    forge: GitLabForge, api: responses.RequestsMock, store: Store
) -> None:
    """GitLab numbers merge requests apart from issues: !1 is not #1."""
    bot_job(store)
    api.get(f"{API}/users", json=[{"id": 7, "username": "sytses"}])
    api.get(f"{HELLO_PROJECT}/members/all/7", json={"id": 7, "access_level": 40,
                                                    "state": "active"})
    payload = json.loads(fixture_bytes("note_hook__merge_request.json"))
    payload["object_attributes"]["note"] = "/status"
    api.post(f"{HELLO_PROJECT}/merge_requests/1/notes/{payload['object_attributes']['id']}"
             "/award_emoji", status=201, json={"id": 1, "name": "eyes"})
    answer = api.post(f"{HELLO_PROJECT}/merge_requests/1/notes", status=201, json={"id": 10})
    headers = {"X-Gitlab-Event": "Note Hook", "Idempotency-Key": "k"}
    store.record_delivery("gitlab", "k", "Note Hook", headers, json.dumps(payload).encode())
    Planner(store, {"gitlab": forge}, Policy(), "forgebot").plan_pending()
    assert answer.call_count == 1


# ------------------------------------------------------- reconciliation and the dashboard issue
# Answer shapes from GitLab's REST docs (issues, notes, resource label events, merge requests).


def issue_json(iid: int, labels: list[str]) -> dict[str, Any]:
    return {"id": 500 + iid, "iid": iid, "project_id": 11, "title": f"Issue {iid}",
            "description": "Add farewell(name).", "state": "opened", "labels": labels,
            "author": {"id": 7, "username": "grace"},
            "web_url": f"{BASE}/acme/hello/-/issues/{iid}"}


def note_json(note_id: int, created: str, body: str, *, system: bool = False,
              author: str = "grace") -> dict[str, Any]:
    return {"id": note_id, "body": body, "system": system, "created_at": created,
            "updated_at": created, "author": {"id": 7, "username": author},
            "noteable_type": "Issue", "noteable_iid": 3}


def test_default_branch_is_the_projects(api: responses.RequestsMock,
                                        forge: GitLabForge) -> None:
    api.get(PROJECT, json={"id": 11, "path_with_namespace": REPO, "default_branch": "trunk"})
    assert forge.default_branch(REPO) == "trunk"


def test_open_issues_with_a_label(api: responses.RequestsMock, forge: GitLabForge) -> None:
    api.get(f"{PROJECT}/issues", json=[issue_json(3, ["forgebot", "bug"]),
                                       issue_json(5, ["forgebot"])])
    issues = forge.open_issues_with_label(REPO, "forgebot")
    assert [(i.number, i.labels, i.author) for i in issues] == [
        (3, ("forgebot", "bug"), "grace"), (5, ("forgebot",), "grace")]
    query = api.calls[0].request.params
    assert (query["state"], query["labels"]) == ("opened", "forgebot")


def test_the_label_actor_is_who_added_that_label_last(api: responses.RequestsMock,
                                                      forge: GitLabForge) -> None:
    def event(action: str, label: str, user: str) -> dict[str, Any]:
        return {"id": 1, "action": action, "user": {"id": 1, "username": user},
                "label": {"id": 2, "name": label}, "resource_type": "Issue", "resource_id": 503,
                "created_at": "2024-01-01T00:00:00.000Z"}

    api.get(f"{PROJECT}/issues/3/resource_label_events", json=[
        event("add", "forgebot", "mallory"), event("remove", "forgebot", "grace"),
        event("add", "forgebot", "grace"), event("add", "bug", "sytses")])
    assert forge.label_actor(REPO, 3, "forgebot") == "grace"
    api.get(f"{PROJECT}/issues/4/resource_label_events", json=[])
    assert forge.label_actor(REPO, 4, "forgebot") is None


def test_comments_since_skips_system_notes_and_older_ones(api: responses.RequestsMock,
                                                          forge: GitLabForge) -> None:
    api.get(f"{PROJECT}/merge_requests/7/notes", json=[
        note_json(60, "2024-05-01T08:00:00.000Z", "/retry old"),
        note_json(61, "2024-05-01T10:05:00.000Z", "added 1 commit", system=True),
        note_json(62, "2024-05-01T10:06:30.500+02:00", "/revise shorter")])
    since = datetime(2024, 5, 1, 8, 3, tzinfo=UTC)  # 62 is 08:06:30 UTC
    found = forge.comments_since(REPO, 7, since, pull=True)
    assert [(c.id, c.author, c.body) for c in found] == [(62, "grace", "/revise shorter")]
    assert found[0].created == datetime(2024, 5, 1, 8, 6, 30, 500000, tzinfo=UTC)


@pytest.mark.parametrize(("state", "by", "expected"), [
    ("merged", {"merged_by": {"username": "sytses"}}, ("merged", "sytses")),
    ("closed", {"closed_by": {"username": "grace"}, "merged_by": None}, ("closed", "grace")),
    ("opened", {}, ("open", "")),
    ("locked", {}, ("open", "")),
])
def test_pull_state(api: responses.RequestsMock, forge: GitLabForge, state: str,
                    by: dict[str, Any], expected: tuple[str, str]) -> None:
    api.get(f"{PROJECT}/merge_requests/7", json={**mr_json(7), "state": state, **by})
    pull = forge.pull_state(REPO, 7)
    assert (pull.state, pull.by) == expected
    assert (pull.head, pull.url) == (BRANCH, f"{BASE}/acme/hello/-/merge_requests/7")


def test_create_and_edit_the_dashboard_issue(api: responses.RequestsMock,
                                             forge: GitLabForge) -> None:
    api.post(f"{PROJECT}/issues", status=201, json=issue_json(9, []),
             match=[matchers.json_params_matcher({"title": "forgebot dashboard",
                                                  "description": "jobs"})])
    assert forge.create_issue(REPO, "forgebot dashboard", "jobs") == 9
    api.put(f"{PROJECT}/issues/9", json=issue_json(9, []),
            match=[matchers.json_params_matcher({"description": "new jobs"})])
    forge.edit_issue(REPO, 9, "new jobs")


def test_a_refused_issue_edit_is_a_forge_error(api: responses.RequestsMock,
                                               forge: GitLabForge) -> None:
    api.put(f"{PROJECT}/issues/9", status=403, json={"message": "403 Forbidden"})
    with pytest.raises(ForgeError, match="HTTP 403"):
        forge.edit_issue(REPO, 9, "new jobs")
