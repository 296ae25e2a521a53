"""The command line: doctor, configuration errors, and the local forge commands."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from bot import gitops
from bot.cli import main
from bot.config import load_settings
from bot.events import IssueClosed, IssueUnlabeled, PullClosed, Pushed, ReviewSubmitted
from bot.forges.base import NewPull
from bot.forges.local import admin, webhook
from bot.forges.local.client import LocalClient
from tests.conftest import REPO, SECRET


def run(env, *args):
    return CliRunner().invoke(main, list(args), env=env)


def env_for(tmp_path):
    return {"FORGEBOT_DATA_DIR": str(tmp_path / "data"), "FORGEBOT_FORGES__LOCAL__SECRET": SECRET,
            "FORGEBOT_FORGES__LOCAL__RECEIVER_URL": "http://127.0.0.1:9/webhooks/local"}


def test_doctor_reports_each_part_with_fix_hints(tmp_path):
    env = env_for(tmp_path)
    env["FORGEBOT_SANDBOX__IMAGES"] = "{python: forgebot-runner-python:missing}"
    result = run(env, "doctor")
    assert result.exit_code == 1
    out = result.output
    for part in ("configuration", "git", "docker engine", "runner images", "store", "model",
                 "policy", "local forge"):
        assert f"] {part}:" in out
    assert "[FAIL] runner images" in out and "fix: make runner-images" in out
    assert "no-new-privileges" in out


def test_doctor_without_secret_says_deliveries_are_refused(tmp_path):
    env = env_for(tmp_path)
    del env["FORGEBOT_FORGES__LOCAL__SECRET"]
    result = run(env, "doctor")
    assert "every delivery will be refused" in result.output


def test_a_configuration_typo_stops_every_command(tmp_path):
    config = tmp_path / "forgebot.yml"
    config.write_text("scheduler:\n  concurency: 2\n")
    result = run({}, "--config", str(config), "doctor")
    assert result.exit_code == 2
    assert f"{config}: scheduler.concurency: unknown key" in result.output


def test_local_commands_and_an_unreachable_receiver(tmp_path):
    env = env_for(tmp_path)
    assert run(env, "local", "init", str(REPO / "examples" / "hello-service"),
               "--repo", "acme/hello").exit_code == 0
    source = str(REPO / "examples" / "hello-service")
    again = run(env, "local", "init", source, "--repo", "acme/hello")
    assert again.exit_code == 2 and "already exists" in again.output
    filed = run(env, "local", "issue", "--repo", "acme/hello", "--title", "Hi",
                "--label", "forgebot")
    assert filed.exit_code == 2
    assert "issue #1 filed" in filed.output
    assert "forgebot serve" in filed.output and SECRET not in filed.output
    shown = run(env, "local", "show-issue", "--repo", "acme/hello", "1")
    assert shown.exit_code == 0 and "Hi" in shown.output
    assert "has no pull requests" in run(env, "local", "pulls", "--repo", "acme/hello").output
    assert run(env, "local", "show-pull", "--repo", "acme/hello", "7").exit_code == 2


def test_spec_lint_and_show(tmp_path):
    example = REPO / "examples" / "hello-service" / "specs" / "greeting.md"
    clean = run({}, "spec", "lint", str(example))
    assert clean.exit_code == 0 and clean.output == ""
    bad = tmp_path / "bad.md"
    bad.write_text("---\nid: bad\nowner: ada\ncolour: red\n---\n# Bad\n\n## Acceptance\n\n- one\n")
    linted = run({}, "spec", "lint", str(bad))
    assert linted.exit_code == 1
    assert f"{bad}:" in linted.output and "colour" in linted.output
    shown = run({}, "spec", "show", str(example))
    assert shown.exit_code == 0 and "greeting#greet-name" in shown.output


# the local forge's lifecycle commands ------------------------------------------------------


class Receiver:
    """A stand-in for the webhook receiver: it checks each delivery's signature with the local
    forge's own ``verify``, normalises it with its ``parse`` and records what arrived."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict, object]] = []
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = dict(self.headers.items())
                if not webhook.verify(SECRET, headers, body):
                    receiver.refused += 1
                    self.send_response(401)
                else:
                    event = webhook.parse(headers, body)
                    receiver.received.append((webhook.event_kind(headers), json.loads(body),
                                              event))
                    self.send_response(202)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/local"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[object]:
        return [event for _, _, event in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()
    assert r.refused == 0, "a delivery had a bad signature"


@pytest.fixture
def forge(tmp_path, receiver):
    """acme/hello on a local forge, a ``feature`` branch and issue #1 labelled ``forgebot``;
    returns (env, forge root). The issue's deliveries are dropped from the receiver."""
    env = {**env_for(tmp_path), "FORGEBOT_FORGES__LOCAL__RECEIVER_URL": receiver.url}
    assert run(env, "local", "init", str(REPO / "examples" / "hello-service"),
               "--repo", "acme/hello").exit_code == 0
    root = load_settings(None, environ=env).local_root
    gitops.run(["branch", "feature", "main"], cwd=root / "acme" / "hello.git")
    filed = run(env, "local", "issue", "--repo", "acme/hello", "--title", "Add a farewell",
                "--label", "forgebot", "--label", "bug", "--author", "ada")
    assert filed.exit_code == 0, filed.output
    receiver.received.clear()
    return env, root


def open_pull(root, head="feature", base="main"):
    """Open a pull request from ``head`` as the bot would; return its number."""
    pull = LocalClient(root).open_pull("acme/hello", NewPull(head=head, base=base, title="T",
                                                             body="B", draft=False))
    return pull.number


def local_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def branch_file(root, branch, path):
    return gitops.run(["show", f"refs/heads/{branch}:{path}"], cwd=root / "acme" / "hello.git")


def snapshot(root):
    """Every file under the forge root (git objects, refs, issues, comments) and its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def test_unlabel_and_close_issue_change_the_issue_and_send_one_webhook_each(forge, receiver):
    env, root = forge
    result = run(env, "local", "unlabel", "--repo", "acme/hello", "1", "forgebot",
                 "--sender", "grace")
    assert result.exit_code == 0, result.output
    assert "removed from issue #1" in result.output
    assert admin.show_issue(root, "acme/hello", 1)[0]["labels"] == ["bug"]
    [(kind, payload, event)] = receiver.received
    assert (kind, payload["action"]) == ("issues", "unlabeled")
    assert isinstance(event, IssueUnlabeled)
    assert (event.number, event.label, event.sender, event.labels) == (1, "forgebot", "grace",
                                                                        ("bug",))

    again = run(env, "local", "unlabel", "--repo", "acme/hello", "1", "forgebot")
    assert again.exit_code == 0 and "nothing sent" in again.output
    assert len(receiver.received) == 1

    closed = run(env, "local", "close-issue", "--repo", "acme/hello", "1", "--sender", "grace")
    assert closed.exit_code == 0, closed.output
    assert admin.show_issue(root, "acme/hello", 1)[0]["state"] == "closed"
    event = receiver.events()[-1]
    assert isinstance(event, IssueClosed) and (event.number, event.sender) == (1, "grace")
    assert "already closed" in run(env, "local", "close-issue", "--repo", "acme/hello",
                                   "1").output
    assert len(receiver.received) == 2


def test_push_commits_the_files_and_merge_brings_them_to_the_base(forge, receiver, tmp_path):
    env, root = forge
    before = gitops.run(["rev-parse", "refs/heads/feature"], cwd=root / "acme" / "hello.git")
    result = run(env, "local", "push", "--repo", "acme/hello", "feature",
                 "--file", "docs/notes.md=" + local_file(tmp_path, "notes.md", "# Notes\n"),
                 "--file", "README.md=" + local_file(tmp_path, "readme", "Hello again\n"),
                 "--message", "Add notes", "--pusher", "grace")
    assert result.exit_code == 0, result.output
    assert "pushed 2 file(s) to feature" in result.output
    assert branch_file(root, "feature", "docs/notes.md") == "# Notes\n"
    assert branch_file(root, "feature", "README.md") == "Hello again\n"
    [(kind, _, event)] = receiver.received
    assert kind == "push" and isinstance(event, Pushed)
    assert (event.ref, event.before.strip(), event.pusher) == ("refs/heads/feature",
                                                               before.strip(), "grace")
    assert (event.added, event.modified, event.removed) == (("docs/notes.md",),
                                                            ("README.md",), ())
    log = gitops.run(["log", "-1", "--format=%an%n%s", "refs/heads/feature"],
                     cwd=root / "acme" / "hello.git")
    assert log.split("\n")[:2] == ["grace", "Add notes"]

    number = open_pull(root)
    merged = run(env, "local", "merge", "--repo", "acme/hello", str(number), "--sender", "grace")
    assert merged.exit_code == 0, merged.output
    assert f"pull request #{number} merged" in merged.output
    assert branch_file(root, "main", "docs/notes.md") == "# Notes\n"
    front = admin.list_pulls(root, "acme/hello")[0]
    assert (front["state"], front["merged"], front["merged_by"]) == ("merged", True, "grace")
    event = receiver.events()[-1]
    assert isinstance(event, PullClosed)
    assert (event.number, event.head, event.merged, event.sender) == (number, "feature", True,
                                                                      "grace")


def test_review_and_close_pull(forge, receiver):
    env, root = forge
    main_before = gitops.run(["rev-parse", "refs/heads/main"], cwd=root / "acme" / "hello.git")
    number = open_pull(root)
    reviewed = run(env, "local", "review", "--repo", "acme/hello", str(number),
                   "--state", "changes_requested", "--body", "Say goodbye politely.",
                   "--author", "grace")
    assert reviewed.exit_code == 0, reviewed.output
    [(comment, text)] = admin.show_issue(root, "acme/hello", number)[2]
    assert (comment["author"], comment["review"]) == ("grace", "changes_requested")
    assert text.strip() == "Say goodbye politely."
    [(kind, _, event)] = receiver.received
    assert kind == "pull_request_review" and isinstance(event, ReviewSubmitted)
    assert (event.number, event.state, event.body, event.author) == (
        number, "changes_requested", "Say goodbye politely.", "grace")

    closed = run(env, "local", "close-pull", "--repo", "acme/hello", str(number),
                 "--sender", "grace")
    assert closed.exit_code == 0, closed.output
    front = admin.list_pulls(root, "acme/hello")[0]
    assert (front["state"], front["merged"]) == ("closed", False)
    # Closed, not merged: the base branch did not move.
    assert gitops.run(["rev-parse", "refs/heads/main"],
                      cwd=root / "acme" / "hello.git") == main_before
    event = receiver.events()[-1]
    assert isinstance(event, PullClosed) and (event.merged, event.sender) == (False, "grace")
    again = run(env, "local", "merge", "--repo", "acme/hello", str(number))
    assert again.exit_code == 2 and f"pull request #{number} of acme/hello is closed" in \
        again.output
    assert len(receiver.received) == 2


# (arguments after `local`, a piece of the error message); the open pull request is #2.
BAD_INPUTS = [
    (["unlabel", "--repo", "acme/nope", "1", "forgebot"], "acme/nope does not exist"),
    (["unlabel", "--repo", "acme/hello", "9", "forgebot"], "has no issue #9"),
    (["unlabel", "--repo", "acme/hello", "2", "forgebot"], "has no issue #2"),
    (["close-issue", "--repo", "acme/nope", "1"], "acme/nope does not exist"),
    (["close-issue", "--repo", "acme/hello", "9"], "has no issue #9"),
    (["close-issue", "--repo", "acme/hello", "2"], "has no issue #2"),
    (["merge", "--repo", "acme/nope", "2"], "acme/nope does not exist"),
    (["merge", "--repo", "acme/hello", "1"], "has no pull request #1"),
    (["merge", "--repo", "acme/hello", "9"], "has no pull request #9"),
    (["close-pull", "--repo", "acme/hello", "9"], "has no pull request #9"),
    (["close-pull", "--repo", "bad name", "2"], "bad repository name"),
    (["review", "--repo", "acme/hello", "9", "--state", "approved"], "has no pull request #9"),
    (["review", "--repo", "acme/hello", "2", "--state", "lgtm"], "'lgtm' is not one of"),
    (["review", "--repo", "acme/hello", "2"], "Missing option '--state'"),
    (["push", "--repo", "acme/hello", "feature", "--message", "m"], "Missing option '--file'"),
    (["push", "--repo", "acme/hello", "feature", "--file", "a.txt", "--message", "m"],
     "expected PATH=LOCALFILE"),
    (["push", "--repo", "acme/hello", "feature", "--file", "a.txt=", "--message", "m"],
     "expected PATH=LOCALFILE"),
    (["push", "--repo", "acme/hello", "feature", "--file", "=LOCAL", "--message", "m"],
     "PATH must be relative"),
    (["push", "--repo", "acme/hello", "feature", "--file", "ABS=LOCAL", "--message", "m"],
     "PATH must be relative"),
    (["push", "--repo", "acme/hello", "feature", "--file", "../x=LOCAL", "--message", "m"],
     "'..'"),
    (["push", "--repo", "acme/hello", "feature", "--file", "a/../../x=LOCAL",
      "--message", "m"], "'..'"),
    (["push", "--repo", "acme/hello", "feature", "--file", ".git/config=LOCAL",
      "--message", "m"], "'.git'"),
    (["push", "--repo", "acme/hello", "feature", "--file", "a//b=LOCAL", "--message", "m"],
     "empty"),
    (["push", "--repo", "acme/hello", "feature", "--file", "a.txt=MISSING", "--message", "m"],
     "cannot read"),
    (["push", "--repo", "acme/hello", "feature", "--file", "a.txt=BINARY", "--message", "m"],
     "is not UTF-8 text"),
    (["push", "--repo", "acme/hello", "feature", "--file", "a.txt=LOCAL",
      "--file", "a.txt=LOCAL", "--message", "m"], "given twice"),
    (["push", "--repo", "acme/hello", "feature", "--file", "README.md=SAME", "--message", "m"],
     "the push to feature of acme/hello changes no file"),
    (["push", "--repo", "acme/hello", "nope", "--file", "a.txt=LOCAL", "--message", "m"],
     "cannot push to nope"),
    (["push", "--repo", "acme/nope", "feature", "--file", "a.txt=LOCAL", "--message", "m"],
     "acme/nope does not exist"),
    (["push", "--repo", "acme/hello", "feature", "--file", "hello_service=LOCAL",
      "--message", "m"], "'hello_service' is a link or a folder in the repository"),
    (["push", "--repo", "acme/hello", "feature", "--file", "README.md/x=LOCAL",
      "--message", "m"], "'README.md' is not a folder of the repository"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_a_clear_error_and_changes_nothing(forge, receiver, tmp_path, args, message):
    env, root = forge
    assert open_pull(root) == 2
    files = {"LOCAL": local_file(tmp_path, "local.txt", "text\n"),
             "MISSING": str(tmp_path / "missing.txt"),
             "BINARY": str(tmp_path / "binary.bin"),
             "SAME": str(REPO / "examples" / "hello-service" / "README.md")}
    (tmp_path / "binary.bin").write_bytes(b"\xff\xfe\x00bad")
    args = [re.sub(r"=(LOCAL|MISSING|BINARY|SAME)$", lambda m: "=" + files[m[1]], a) for a in args]
    # An absolute PATH that points somewhere harmless, in case the check ever goes.
    escaped = tmp_path / "escaped.txt"
    args = [str(escaped) + a[3:] if a.startswith("ABS=") else a for a in args]
    before = snapshot(root)
    result = run(env, "local", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert snapshot(root) == before
    assert receiver.received == []
    assert not escaped.exists()
