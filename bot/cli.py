"""The ``forgebot`` command: serve, run, wait, jobs, doctor, db and the local forge."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from bot.config import Settings, load_settings
from bot.errors import ForgebotError
from bot.logs import setup_logging


def _fail(message: str) -> NoReturn:
    click.echo(f"forgebot: {message}", err=True)
    sys.exit(2)


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj["settings"]
    return settings


@click.group()
@click.option("--config", "-c", "config_path", type=click.Path(path_type=Path), default=None,
              help="YAML configuration file (default: $FORGEBOT_CONFIG, else built-in defaults).")
@click.option("--log-level", default="INFO", show_default=True)
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, log_level: str) -> None:
    """forgebot: labelled issues become tested pull requests."""
    setup_logging(log_level.upper())
    try:
        ctx.obj = {"settings": load_settings(config_path)}
    except ForgebotError as exc:
        _fail(str(exc))


@main.command()
@click.option("--role", type=click.Choice(["all", "receiver", "worker"]), default="all",
              show_default=True,
              help="all: one process does everything; receiver: webhooks and API only; "
                   "worker: runs jobs (and serves health checks).")
@click.pass_context
def serve(ctx: click.Context, role: str) -> None:
    """Run the receiver, the scheduler and the workers (waitress, not a development server)."""
    import waitress

    from bot.service import build_service

    settings = _settings(ctx)
    try:
        service = build_service(settings, receive=role != "worker")
        service.start(work=role != "receiver")
    except ForgebotError as exc:
        _fail(str(exc))

    def stop(_signum: int, _frame: Any) -> None:
        service.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    click.echo(f"forgebot: listening on http://{settings.web.host}:{settings.web.port}", err=True)
    waitress.serve(service.app, host=settings.web.host, port=settings.web.port,
                   threads=settings.web.threads, ident="forgebot")


@main.command()
@click.option("--timeout", default=1800.0, show_default=True, help="Seconds before giving up.")
@click.pass_context
def run(ctx: click.Context, timeout: float) -> None:
    """Process stored deliveries and queued jobs until idle, then exit (no HTTP server)."""
    from bot.service import build_service

    try:
        service = build_service(_settings(ctx))
        service.start(schedule=False)
    except ForgebotError as exc:
        _fail(str(exc))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.dispatcher.tick()
        service.dispatcher.wait_idle()
        if service.store.is_idle():
            service.stop()
            return
        time.sleep(0.2)
    _fail(f"not idle after {timeout:.0f}s")


@main.command("reconcile")
@click.pass_context
def reconcile_cmd(ctx: click.Context) -> None:
    """One reconciliation pass: labelled issues, commands and merges the webhooks missed, on
    every configured repository (and the dashboard issues, when the policy turns them on).
    Prints what it found; the jobs it queues run in `forgebot serve` or `forgebot run`."""
    from bot.forges import build_forges
    from bot.pipeline.planner import Planner
    from bot.pipeline.reconcile import reconcile_all
    from bot.policy.load import load_policy
    from bot.store import open_store

    settings = _settings(ctx)
    try:
        store = open_store(settings.store_url)
        policy = load_policy(settings.policy_path)
        planner = Planner(store, build_forges(settings, policy.trigger.labels), policy,
                          settings.bot_user)
        reports = reconcile_all(planner, settings)
    except ForgebotError as exc:
        _fail(str(exc))
    if not reports:
        click.echo("no repositories to reconcile (set forges.<forge>.repositories)")
    for report in reports:
        click.echo(report.summary())
        for note in report.notes:
            click.echo(f"  {note}")
    if any(report.error for report in reports):
        sys.exit(1)


@main.command()
@click.option("--timeout", default=1800.0, show_default=True)
@click.pass_context
def wait(ctx: click.Context, timeout: float) -> None:
    """Wait until no delivery is pending and no job is queued or running."""
    from bot.store import open_store

    store = open_store(_settings(ctx).store_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if store.is_idle():
            return
        time.sleep(0.5)
    _fail(f"still busy after {timeout:.0f}s")


@main.command()
@click.argument("job_id", required=False, type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def jobs(ctx: click.Context, job_id: int | None, as_json: bool) -> None:
    """List jobs, or show one job with its events."""
    from bot.store import open_store

    store = open_store(_settings(ctx).store_url)
    if job_id is None:
        rows = [j.as_dict() for j in store.list_jobs()]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
        for j in [] if as_json else rows:
            click.echo(f"#{j['id']:<4} {j['state']:<8} {j['outcome'] or '-':<15} "
                       f"{j['repo']}#{j['issue_number']} {j['title']}")
        return
    job = store.get_job(job_id)
    if job is None:
        _fail(f"no job {job_id}")
    events = store.events(job_id)
    if as_json:
        click.echo(json.dumps({"job": job.as_dict(), "events": events}, indent=2))
        return
    click.echo(f"job {job.id}: {job.state}, outcome {job.outcome}, branch {job.branch}, "
               f"pull {job.pull_number}")
    for e in events:
        click.echo(f"  {e['at']}  {e['kind']:<18} {json.dumps(e['data'])}")


@main.command()
@click.argument("job_id", type=int)
@click.option("--attempt", type=int, default=None, help="Only this attempt number.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def transcript(ctx: click.Context, job_id: int, attempt: int | None, as_json: bool) -> None:
    """Show a job's transcript: the prompts, the model's replies and the tool results, with
    token counts and timings. Stored redacted; the issue text in it is untrusted."""
    from bot.store import open_store

    store = open_store(_settings(ctx).store_url)
    if store.get_job(job_id) is None:
        _fail(f"no job {job_id}")
    entries = store.transcript(job_id, attempt)
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        click.echo(f"job {job_id} has no transcript" + (f" for attempt {attempt}" if attempt
                                                        else ""))
        return
    for e in entries:
        meta = " ".join(f"{k}={v}" for k, v in sorted(e["meta"].items()))
        click.echo(f"=== attempt {e['attempt']} · {e['kind']} · {e['at']} {meta}".rstrip())
        click.echo(e["content"])


@main.command("eval")
@click.argument("suite", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--only", "only", multiple=True, metavar="NAME",
              help="Run only this task (repeatable).")
@click.option("--provider", type=click.Choice(["llama-cpp", "openai", "replay"]), default=None,
              help="Model provider (default: the configured one); replay answers from each "
                   "task's replay.yml.")
@click.option("--max-iterations", type=click.IntRange(1, 20), default=None,
              help="Agent iterations per attempt (default: agent.max_iterations; the policy's "
                   "limits.max_iterations still caps it).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where each task's forge and store are kept (default: a temporary folder "
                   "under var/eval, removed at the end).")
@click.option("--timeout", default=1800.0, show_default=True,
              help="Seconds per task, from filing the issue to the job's end.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the results as JSON to this file.")
@click.pass_context
def eval_suite(ctx: click.Context, suite: Path, only: tuple[str, ...], provider: str | None,
               max_iterations: int | None, data_dir: Path | None, timeout: float,
               json_path: Path | None) -> None:
    """Run the bot on every task of SUITE and grade it with the hidden tests.

    Exit 0 when every task ran (resolved or not), 1 when a task was invalid or could not run.
    """
    import shutil
    import tempfile

    from bot.eval.harness import EvalOptions, run_suite
    from bot.eval.results import render_table
    from bot.eval.tasks import load_suite

    settings = _settings(ctx)
    try:
        tasks = load_suite(suite, only)
    except ForgebotError as exc:
        _fail(str(exc))
    if data_dir is None:
        Path("var/eval").mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="run-", dir="var/eval")).resolve()
    else:
        root = data_dir.resolve()
    options = EvalOptions(provider=provider, max_iterations=max_iterations, timeout_s=timeout)
    try:
        result = run_suite(settings, str(suite), tasks, root, options=options, on_result=lambda r: (
            click.echo(f"forgebot: {r.name}: {r.outcome or r.status}"
                       f"{', resolved' if r.resolved else ''}", err=True)))
    except ForgebotError as exc:
        _fail(str(exc))
    finally:
        if data_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    click.echo(render_table(result), nl=False)
    if json_path is not None:
        json_path.write_text(result.to_json(), encoding="utf-8")
    sys.exit(1 if result.broken else 0)


@main.group()
def db() -> None:
    """The store's schema."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply the migrations (``serve`` does this at start too)."""
    from bot.store import open_store

    open_store(_settings(ctx).store_url)
    click.echo("store schema is up to date")


@main.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Report the configuration and check Docker, git, the store, the model and the image."""
    from bot.doctor import run_checks

    ok = True
    for check in run_checks(_settings(ctx)):
        mark = "ok  " if check.ok else "FAIL"
        click.echo(f"[{mark}] {check.name}: {check.detail}")
        if not check.ok:
            ok = False
            click.echo(f"       fix: {check.hint}")
    sys.exit(0 if ok else 1)


# the local forge ------------------------------------------------------------------------


@main.group()
def local() -> None:
    """The local forge: repositories, issues and pull requests in a folder."""


_repo_option = click.option("--repo", "repo", default="demo/hello-service", show_default=True,
                            help="owner/name on the local forge")


def _send(settings: Settings, deliveries: list[Any]) -> None:
    from bot.forges.local import admin

    secret = settings.forges.local.secret
    if not secret:
        _fail("forges.local.secret is not set (FORGEBOT_FORGES__LOCAL__SECRET); "
              "the receiver refuses unsigned webhooks")
    for d in deliveries:
        admin.deliver(settings.receiver_url, secret, d.event, d.payload)


@local.command("init")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_repo_option
@click.option("--default-branch", default="main", show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing repository.")
@click.pass_context
def local_init(ctx: click.Context, source: Path, repo: str, default_branch: str,
               force: bool) -> None:
    """Create a repository on the local forge from the files of SOURCE."""
    from bot.forges.local import admin

    try:
        path = admin.init_repo(_settings(ctx).local_root, repo, source, default_branch,
                               force=force)
    except ForgebotError as exc:
        _fail(str(exc))
    click.echo(f"created {repo} at {path}")


@local.command("issue")
@_repo_option
@click.option("--title", required=True)
@click.option("--body", default="")
@click.option("--label", "labels", multiple=True)
@click.option("--author", default="demo-user", show_default=True)
@click.pass_context
def local_issue(ctx: click.Context, repo: str, title: str, body: str, labels: tuple[str, ...],
                author: str) -> None:
    """File an issue and post its webhooks (opened, then one per label)."""
    from bot.forges.local import admin

    settings = _settings(ctx)
    try:
        number, deliveries = admin.create_issue(settings.local_root, repo, title, body,
                                                labels=list(labels), author=author)
        click.echo(f"issue #{number} filed on {repo}")
        _send(settings, deliveries)
    except ForgebotError as exc:
        _fail(str(exc))


@local.command("label")
@_repo_option
@click.argument("number", type=int)
@click.argument("label")
@click.option("--sender", default="demo-user", show_default=True)
@click.pass_context
def local_label(ctx: click.Context, repo: str, number: int, label: str, sender: str) -> None:
    """Add LABEL to issue NUMBER and post the webhook."""
    from bot.forges.local import admin

    settings = _settings(ctx)
    try:
        _send(settings, admin.add_label(settings.local_root, repo, number, label, sender))
    except ForgebotError as exc:
        _fail(str(exc))


@local.command("comment")
@_repo_option
@click.argument("number", type=int)
@click.argument("body")
@click.option("--author", default="demo-user", show_default=True)
@click.pass_context
def local_comment(ctx: click.Context, repo: str, number: int, body: str, author: str) -> None:
    """Comment on issue or pull request NUMBER and post the webhook."""
    from bot.forges.local import admin

    settings = _settings(ctx)
    try:
        _send(settings, admin.add_comment(settings.local_root, repo, number, body, author))
    except ForgebotError as exc:
        _fail(str(exc))


@local.command("check")
@_repo_option
@click.argument("number", type=int)
@click.option("--state", required=True,
              type=click.Choice(["pending", "success", "failure", "error"]))
@click.option("--context", default="ci/tests", show_default=True, help="the check's name")
@click.option("--description", default="", help="what the check says of itself")
@click.option("--log", "log_file", type=click.File("r"), default=None,
              help="a file holding the check's log (its end is kept)")
@click.pass_context
def local_check(ctx: click.Context, repo: str, number: int, state: str, context: str,
                description: str, log_file: Any) -> None:
    """Report a CI check on the head of pull request NUMBER, as a CI server would, and post
    the ``status`` webhook."""
    from bot import gitops
    from bot.forges.local import LocalForge, admin, webhook
    from bot.forges.local.layout import RepoLayout

    settings = _settings(ctx)
    try:
        front, _, _ = admin.show_pull(settings.local_root, repo, number)
        layout = RepoLayout.of(settings.local_root, repo).require()
        branch = str(front["head"])
        sha = gitops.run(["rev-parse", "--verify", f"refs/heads/{branch}^{{commit}}"],
                         cwd=layout.git_dir).strip()
        LocalForge(settings.local_root, None).set_check(
            repo, sha, context, state=state, description=description,
            log=log_file.read() if log_file else "")
        repository = webhook.repository_payload(repo, admin.read_default_branch(layout))
        _send(settings, [admin.Delivery("status", webhook.status_event(
            repository, sha, context=context, state=state, description=description,
            branch=branch, sender="ci"))])
    except ForgebotError as exc:
        _fail(str(exc))
    click.echo(f"{context}: {state} on {sha[:12]} ({branch})")


@local.command("pulls")
@_repo_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def local_pulls(ctx: click.Context, repo: str, as_json: bool) -> None:
    """List the pull requests of a repository."""
    from bot.forges.local import admin

    try:
        pulls = admin.list_pulls(_settings(ctx).local_root, repo)
    except ForgebotError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(pulls, indent=2, default=str))
        return
    if not pulls:
        click.echo(f"{repo} has no pull requests")
    for p in pulls:
        draft = " [draft]" if p.get("draft") else ""
        click.echo(f"#{p['number']} {p['state']}{draft} {p['head']} -> {p['base']}: {p['title']}")


@local.command("show-issue")
@_repo_option
@click.argument("number", type=int)
@click.pass_context
def local_show_issue(ctx: click.Context, repo: str, number: int) -> None:
    """Print an issue (or pull request) and its comments."""
    from bot.forges.local import admin

    try:
        meta, body, comments = admin.show_issue(_settings(ctx).local_root, repo, number)
    except ForgebotError as exc:
        _fail(str(exc))
    labels = ", ".join(meta.get("labels") or [])
    click.echo(f"#{number} {meta.get('title')}  [{labels}]  by {meta.get('author')}\n")
    click.echo(body.rstrip() + "\n")
    for front, text in comments:
        click.echo(f"--- comment by {front.get('author')} at {front.get('created')}")
        click.echo(text.rstrip() + "\n")


@local.command("show-pull")
@_repo_option
@click.argument("number", type=int)
@click.pass_context
def local_show_pull(ctx: click.Context, repo: str, number: int) -> None:
    """Print a pull request: its header, body and diff."""
    from bot.forges.local import admin

    try:
        meta, body, diff = admin.show_pull(_settings(ctx).local_root, repo, number)
    except ForgebotError as exc:
        _fail(str(exc))
    draft = " (draft)" if meta.get("draft") else ""
    click.echo(f"Pull request #{number}{draft}: {meta.get('title')}")
    click.echo(f"{meta.get('head')} -> {meta.get('base')}, {meta.get('state')}\n")
    click.echo(body.rstrip() + "\n")
    click.echo(diff)


def _report(settings: Settings, deliveries: list[Any], done: str,
            unchanged: str = "nothing changed, nothing sent") -> None:
    """Say what the action did, then post its deliveries (none when it changed nothing,
    as a real forge sends no event for a label that was not there)."""
    click.echo(done if deliveries else unchanged)
    _send(settings, deliveries)


@local.command("unlabel")
@_repo_option
@click.argument("number", type=int)
@click.argument("label")
@click.option("--sender", default="demo-user", show_default=True)
@click.pass_context
def local_unlabel(ctx: click.Context, repo: str, number: int, label: str, sender: str) -> None:
    """Remove LABEL from issue NUMBER and post the webhook."""
    from bot.forges.local import admin

    settings = _settings(ctx)
    try:
        deliveries = admin.remove_label(settings.local_root, repo, number, label, sender)
        _report(settings, deliveries, f"label {label!r} removed from issue #{number}",
                f"issue #{number} has no label {label!r}: nothing changed, nothing sent")
    except ForgebotError as exc:
        _fail(str(exc))


@local.command("close-issue")
@_repo_option
@click.argument("number", type=int)
@click.option("--sender", default="demo-user", show_default=True)
@click.pass_context
def local_close_issue(ctx: click.Context, repo: str, number: int, sender: str) -> None:
    """Close issue NUMBER and post the webhook."""
    from bot.forges.local import admin

    settings = _settings(ctx)
    try:
        deliveries = admin.close_issue(settings.local_root, repo, number, sender)
        _report(settings, deliveries, f"issue #{number} closed",
                f"issue #{number} was already closed: nothing sent")
    except ForgebotError as exc:
        _fail(str(exc))


@local.command("merge")
@_repo_option
@click.argument("number", type=int)
@click.option("--sender", default="demo-user", show_default=True)
@click.pass_context
def local_merge(ctx: click.Context, repo: str, number: int, sender: str) -> None:
    """Merge open pull request NUMBER into its base branch and post the webhook."""
    from bot.forges.local import admin

    settings = _settings(ctx)
    try:
        deliveries = admin.merge_pull(settings.local_root, repo, number, sender)
        _report(settings, deliveries, f"pull request #{number} merged")
    except ForgebotError as exc:
        _fail(str(exc))


@local.command("close-pull")
@_repo_option
@click.argument("number", type=int)
@click.option("--sender", default="demo-user", show_default=True)
@click.pass_context
def local_close_pull(ctx: click.Context, repo: str, number: int, sender: str) -> None:
    """Close open pull request NUMBER without merging it and post the webhook."""
    from bot.forges.local import admin

    settings = _settings(ctx)
    try:
        deliveries = admin.close_pull(settings.local_root, repo, number, sender)
        _report(settings, deliveries, f"pull request #{number} closed without merging")
    except ForgebotError as exc:
        _fail(str(exc))


@local.command("review")
@_repo_option
@click.argument("number", type=int)
@click.option("--state", required=True,
              type=click.Choice(["approved", "changes_requested", "commented"]))
@click.option("--body", default="")
@click.option("--author", default="demo-user", show_default=True)
@click.pass_context
def local_review(ctx: click.Context, repo: str, number: int, state: str, body: str,
                 author: str) -> None:
    """Submit a review on open pull request NUMBER and post the webhook."""
    from bot.forges.local import admin

    settings = _settings(ctx)
    try:
        deliveries = admin.review_pull(settings.local_root, repo, number, state=state,
                                       body=body, author=author)
        _report(settings, deliveries, f"review ({state}) submitted on pull request #{number}")
    except ForgebotError as exc:
        _fail(str(exc))


def _repo_path(value: str, path: str) -> str:
    """``path`` when it names a file inside a repository; ``BadParameter`` otherwise.

    The path is joined to a checkout, so anything that could leave it (absolute, ``..``)
    or write git's own files (``.git``) is refused.
    """
    parts = path.split("/")
    if not path or path.startswith("/"):
        raise click.BadParameter(f"{value!r}: PATH must be relative to the repository root",
                                 param_hint="--file")
    if any(part in ("", ".", "..") or part.lower() == ".git" for part in parts):
        raise click.BadParameter(f"{value!r}: PATH may not contain empty, '.', '..' or '.git' "
                                 "parts", param_hint="--file")
    return path


def parse_file_options(values: tuple[str, ...]) -> dict[str, str]:
    """Read ``--file PATH=LOCALFILE`` values into ``{PATH: text of LOCALFILE}``.

    Everything is read and checked before the forge is touched, so a bad value changes
    nothing. LOCALFILE must be a UTF-8 text file; each PATH may appear once.
    """
    files: dict[str, str] = {}
    for value in values:
        path, sep, local_file = value.partition("=")
        if not sep or not local_file:
            raise click.BadParameter(f"{value!r}: expected PATH=LOCALFILE", param_hint="--file")
        path = _repo_path(value, path)
        if path in files:
            raise click.BadParameter(f"{value!r}: {path} is given twice", param_hint="--file")
        source = Path(local_file)
        try:
            files[path] = source.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise click.BadParameter(f"{value!r}: {source} is not UTF-8 text",
                                     param_hint="--file") from None
        except OSError as exc:
            raise click.BadParameter(f"{value!r}: cannot read {source}: {exc.strerror}",
                                     param_hint="--file") from None
    return files


@local.command("push")
@_repo_option
@click.argument("branch")
@click.option("--file", "file_values", multiple=True, required=True, metavar="PATH=LOCALFILE",
              help="Write LOCALFILE's text to PATH in the repository (repeatable).")
@click.option("--message", required=True, help="The commit message.")
@click.option("--pusher", default="demo-user", show_default=True)
@click.pass_context
def local_push(ctx: click.Context, repo: str, branch: str, file_values: tuple[str, ...],
               message: str, pusher: str) -> None:
    """Commit files on top of BRANCH as PUSHER, push it and post the webhook."""
    from bot.forges.local import admin

    settings = _settings(ctx)
    files = parse_file_options(file_values)
    try:
        deliveries = admin.push_files(settings.local_root, repo, branch, files,
                                      message=message, pusher=pusher)
        _report(settings, deliveries, f"pushed {len(files)} file(s) to {branch}")
    except ForgebotError as exc:
        _fail(str(exc))
    except OSError as exc:  # a PATH names a folder of the repository, or runs through a file
        _fail(f"cannot push to {branch} of {repo}: a --file PATH clashes with the repository's "
              f"files ({exc.strerror}); nothing was pushed")



# specs ------------------------------------------------------------------------------------


@main.group()
def spec() -> None:
    """Specs under specs/: check them and show what the bot understood."""


@spec.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def spec_lint(paths: tuple[Path, ...]) -> None:
    """Check specs (files or folders; default: specs/). Exit 1 on any error."""
    from bot.specs import lint_paths

    errors = lint_paths(list(paths) or [Path("specs")])
    for error in errors:
        click.echo(str(error))  # path:line: message, one per line, for editors and CI
    if errors:
        click.echo(f"forgebot: {len(errors)} spec error(s)", err=True)
        sys.exit(1)


@spec.command("show")
@click.argument("path", type=click.Path(path_type=Path))
def spec_show(path: Path) -> None:
    """Print a spec as the bot understood it: id, status, owner, criteria, scenarios."""
    from bot.specs import InvalidSpec, read_spec, render_spec

    try:
        click.echo(render_spec(read_spec(path)), nl=False)
    except InvalidSpec as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        sys.exit(1)


@spec.command("status")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--repo", default="", help="OWNER/NAME: show the pull requests that implemented "
              "each criterion, from the bot's store.")
@click.option("--forge", "forge_name", default="local", show_default=True)
@click.option("--root", type=click.Path(path_type=Path, file_okay=False), default=Path("."),
              help="The repository's checkout; spec paths are relative to it.")
@click.pass_context
def spec_status(ctx: click.Context, paths: tuple[Path, ...], repo: str, forge_name: str,
                root: Path) -> None:
    """List every spec (default: specs/ under --root) with its status and criteria, and the
    pull request that implemented each criterion."""
    from bot.pipeline.traceability import criterion_pulls, render_status
    from bot.specs import InvalidSpec, SpecError, parse_spec, spec_files
    from bot.store import open_store

    pulls = (criterion_pulls(open_store(_settings(ctx).store_url), forge_name, repo)
             if repo else {})
    failed = False
    for file in spec_files([root / p for p in paths] or [root / "specs"]):
        if isinstance(file, SpecError):
            click.echo(str(file), err=True)
            failed = True
            continue
        relative = file.resolve().relative_to(root.resolve()).as_posix()
        try:
            parsed = parse_spec(file.read_text(encoding="utf-8"), relative)
        except (InvalidSpec, UnicodeDecodeError, OSError) as exc:
            click.echo(f"{relative}: does not parse ({exc})", err=True)
            failed = True
            continue
        click.echo(render_status(parsed, pulls.get(relative, {})))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
