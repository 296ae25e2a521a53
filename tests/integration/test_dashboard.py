"""The dashboard through Flask's test client, over a real store filled through its API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.store import Store, open_store
from bot.store.models import utcnow
from bot.web import create_app
from bot.web.dashboard import (
    COOKIE,
    HistoryFilter,
    dashboard_blueprint,
    history,
    is_loopback,
    pull_link,
    success_rate,
    time_to_pull,
)

TOKEN = "s3cret-dashboard-token"
HOSTILE = '<script>alert("owned")</script>'
HOSTILE_DATA = '<img src=x onerror="alert(1)">'
PAGES = ["/dashboard/", "/dashboard/running", "/dashboard/history", "/dashboard/charts",
         "/dashboard/queue/live", "/dashboard/running/live"]


@pytest.fixture
def store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.engine.dispose()


def new_job(store: Store, n: int, *, title: str = "Add a farewell", repo: str = "acme/hello"):
    return store.create_job(trigger_key=f"local:{repo}:issue:{n}", forge="local", repo=repo,
                            default_branch="main", issue_number=n, title=title,
                            requested_by="ada", delivery_row=None)


def finish_next(store: Store, outcome: str, *, failed: bool):
    claim = store.claim_next("test:1", 60)
    assert store.finish(claim, "test:1", outcome, failed=failed)
    return claim


def client(store: Store, token=None, header=None, beyond=False):
    app = create_app(store, {})
    app.register_blueprint(dashboard_blueprint(token, header, beyond))
    app.testing = True
    return app.test_client()


# protection -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/dashboard/jobs/1", "/dashboard/static/dashboard.js"])
def test_off_when_bound_beyond_localhost_without_protection(store, path):
    new_job(store, 1)
    c = client(store, beyond=True)
    assert c.get(path).status_code == 404
    assert c.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    assert c.get("/healthz").status_code == 200  # the rest of the app is untouched


@pytest.mark.parametrize("path", PAGES)
def test_open_on_localhost_with_nothing_configured(store, path):
    assert client(store).get(path).status_code == 200


@pytest.mark.parametrize("beyond", [False, True])
@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    ({"Authorization": "Bearer wrong"}, 401),
    ({"Authorization": f"Bearer {TOKEN}x"}, 401),
    ({"Authorization": f"Basic {TOKEN}"}, 401),
    ({"Authorization": f"Bearer {TOKEN}"}, 200),
    ({"Authorization": f"bearer  {TOKEN}"}, 200),
    ({"X-Forwarded-User": "mallory"}, 401),  # no trusted header configured: ignored
])
def test_token_required(store, beyond, headers, status):
    response = client(store, token=TOKEN, beyond=beyond).get("/dashboard/", headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN not in response.get_data(as_text=True)


def test_query_token_becomes_a_strict_httponly_cookie(store):
    new_job(store, 1)
    c = client(store, token=TOKEN, beyond=True)
    response = c.get(f"/dashboard/history?state=queued&token={TOKEN}")
    assert response.status_code == 303
    assert response.headers["Location"] == "/dashboard/history?state=queued"  # token dropped
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/dashboard" in cookie
    assert TOKEN not in cookie  # a digest of it, not the token itself
    followed = c.get(response.headers["Location"])
    assert followed.status_code == 200
    assert "Add a farewell" in followed.get_data(as_text=True)


def test_wrong_query_token_and_forged_cookie_are_refused(store):
    c = client(store, token=TOKEN, beyond=True)
    response = c.get("/dashboard/?token=nope")
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers
    c.set_cookie(COOKIE, TOKEN, path="/dashboard")  # the raw token is not a valid cookie
    assert c.get("/dashboard/").status_code == 401


@pytest.mark.parametrize(("headers", "status"), [
    ({"X-Forwarded-User": "ada"}, 200),
    ({"x-forwarded-user": "ada"}, 200),
    ({"X-Forwarded-User": "  "}, 401),
    ({"X-Remote-User": "ada"}, 401),
    ({}, 401),
])
def test_trusted_header_names_the_user(store, headers, status):
    response = client(store, header="X-Forwarded-User", beyond=True).get(
        "/dashboard/", headers=headers)
    assert response.status_code == status
    if status == 200:
        assert ">ada<" in response.get_data(as_text=True)


def test_token_and_trusted_header_each_suffice(store):
    c = client(store, token=TOKEN, header="X-Forwarded-User", beyond=True)
    assert c.get("/dashboard/", headers={"X-Forwarded-User": "ada"}).status_code == 200
    assert c.get("/dashboard/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert c.get("/dashboard/").status_code == 401


def test_pages_carry_a_strict_content_security_policy(store):
    response = client(store).get("/dashboard/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("127.0.0.2", True), ("0.0.0.0", False), ("::", False), ("10.0.0.5", False),
    ("forgebot.example", False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


# escaping ---------------------------------------------------------------------------------


def test_hostile_titles_and_event_data_are_escaped_everywhere(store):
    queued = new_job(store, 1, title=HOSTILE)
    running = new_job(store, 2, title=HOSTILE, repo="acme/<b>evil</b>")
    claim = store.claim_next("test:1", 60)
    store.add_event(claim.job.id, "stage.started", {"stage": HOSTILE}, claim.attempt_id)
    store.add_event(claim.job.id, "status.failed", {"error": HOSTILE_DATA}, claim.attempt_id)
    c = client(store)
    for path in [*PAGES, f"/dashboard/jobs/{queued.id}", f"/dashboard/jobs/{running.id}",
                 f"/dashboard/jobs/{running.id}/live"]:
        page = c.get(path).get_data(as_text=True)
        assert "<script>alert" not in page, path
        assert "<img src=x" not in page, path
        assert "<b>evil</b>" not in page, path
    job_page = c.get(f"/dashboard/jobs/{claim.job.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in job_page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in job_page
    history_page = c.get("/dashboard/history", query_string={"repo": "acme/<b>evil</b>"})
    assert "acme/&lt;b&gt;evil&lt;/b&gt;" in history_page.get_data(as_text=True)


@pytest.mark.parametrize(("url", "shown"), [
    ("https://forge.example/acme/hello/pull/7", True),
    ("http://127.0.0.1:3000/acme/hello/pulls/7", True),
    ("javascript:alert(1)", False),
    ("JaVaScRiPt:alert(1)", False),
    ("data:text/html,<script>alert(1)</script>", False),
    ("//evil.example/x", False),
])
def test_only_http_pull_links_are_linked(store, url, shown):
    events = [{"kind": "pull.published", "data": {"number": 7, "url": url}}]
    assert (pull_link(events) == url) is shown
    job = new_job(store, 1)
    claim = store.claim_next("test:1", 60)
    store.add_event(job.id, "pull.published", {"number": 7, "url": url}, claim.attempt_id)
    store.update_job(job.id, pull_number=7)
    page = client(store).get(f"/dashboard/jobs/{job.id}").get_data(as_text=True)
    assert (f'href="{url}"' in page) is shown
    assert "#7" in page


# pages ------------------------------------------------------------------------------------


def test_queue_shows_positions_in_claim_order(store):
    for n in (1, 2, 3):
        new_job(store, n, title=f"task {n}")
    store.claim_next("test:1", 60)  # job 1 runs; 2 and 3 wait, 2 first
    page = client(store).get("/dashboard/").get_data(as_text=True)
    queue = page[page.index('id="queue"'):page.index("<h2>Running")]
    assert queue.index("task 2") < queue.index("task 3")
    assert "<td>1</td><td><a href=\"/dashboard/jobs/2\">#2</a>" in queue
    assert "<td>2</td><td><a href=\"/dashboard/jobs/3\">#3</a>" in queue
    assert "task 1" in page[page.index("<h2>Running"):]


def test_job_page_shows_stages_iterations_results_and_404s(store):
    job = new_job(store, 1)
    claim = store.claim_next("test:1", 60)
    events = [("stage.started", {"stage": "prepare"}), ("stage.finished", {"stage": "prepare"}),
              ("stage.started", {"stage": "implement"}),
              ("agent.reply", {"i": 1, "provider": "replay", "seconds": 0.25,
                               "prompt_tokens": 900, "completion_tokens": 120}),
              ("agent.iteration", {"i": 1, "edits": 2, "changed": 1, "error": None,
                                   "exit_code": 1, "timed_out": False}),
              ("stage.failed", {"stage": "implement", "error": "SandboxError"}),
              ("gates.evaluated", {"violations": ["paths.deny"], "findings": 0}),
              ("tests.ran", {"exit_code": 0, "timed_out": False, "passed": 3, "failed": 0})]
    for kind, data in events:
        store.add_event(job.id, kind, data, claim.attempt_id)
    store.finish(claim, "test:1", "sandbox_error", failed=True)
    c = client(store)
    page = c.get(f"/dashboard/jobs/{job.id}").get_data(as_text=True)
    assert '<tr class="stage-finished"><td>1</td><td>prepare</td>' in page
    assert '<tr class="stage-failed"><td>1</td><td>implement</td>' in page
    assert "SandboxError" in page
    assert "<td>900/120</td>" in page
    assert "violations=[&#39;paths.deny&#39;]" in page
    assert "passed=3" in page
    assert "sandbox_error" in page
    assert c.get("/dashboard/jobs/999").status_code == 404
    assert c.get("/dashboard/jobs/999/live").status_code == 404


def test_running_page_tails_the_latest_events(store):
    job = new_job(store, 1)
    claim = store.claim_next("test:1", 60)
    for i in range(60):
        store.add_event(job.id, "agent.reply", {"i": i}, claim.attempt_id)
    page = client(store).get("/dashboard/running/live").get_data(as_text=True)
    assert "i=59" in page
    assert "i=5 " not in page and "i=5<" not in page  # older events fall out of the tail


def test_history_filters(backend_store):
    store = backend_store
    new_job(store, 1, repo="acme/hello")
    new_job(store, 2, repo="acme/other")
    new_job(store, 3, repo="acme/hello")
    new_job(store, 4, repo="acme/hello")
    finish_next(store, "submitted", failed=False)  # job 1
    finish_next(store, "policy_blocked", failed=True)  # job 2
    store.claim_next("test:1", 60)  # job 3 running, job 4 queued

    def ids(**f):
        return [j.id for j in history(store, HistoryFilter(**f))]

    assert ids() == [4, 3, 2, 1]
    assert ids(state="failed") == [2]
    assert ids(outcome="submitted") == [1]
    assert ids(repo="acme/hello") == [4, 3, 1]
    assert ids(repo="acme/hello", state="queued") == [4]
    assert ids(repo="acme/nothing") == []

    c = client(store)
    page = c.get("/dashboard/history", query_string={"outcome": "policy_blocked"})
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'href="/dashboard/jobs/2"' in text
    assert 'href="/dashboard/jobs/1"' not in text
    assert '<option value="policy_blocked" selected>' in text
    assert '<option value="acme/other"' in text


def test_charts(backend_store):
    store = backend_store
    for n in (1, 2, 3, 4):
        new_job(store, n)
    done = finish_next(store, "submitted", failed=False)
    store.add_event(done.job.id, "pull.published", {"number": 1}, done.attempt_id)
    finish_next(store, "tests_failed", failed=False)
    finish_next(store, "policy_blocked", failed=True)
    rates = success_rate(store)
    assert len(rates) == 14
    today = rates[-1]
    assert today.day == utcnow().date().isoformat()
    assert today.count == 3
    assert today.value == pytest.approx(2 / 3)
    assert all(f.value is None for f in rates[:-1])
    minutes = time_to_pull(store)
    assert minutes[-1].count == 1
    assert 0 <= minutes[-1].value < 1
    assert time_to_pull(store, now=utcnow() + timedelta(days=30))[-1].value is None
    page = client(store).get("/dashboard/charts").get_data(as_text=True)
    assert page.count("<svg") == 2
    assert "67% (3 jobs)" in page
    assert 'class="bar"' in page
