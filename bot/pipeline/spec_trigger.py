"""Specs as triggers: a push to the default branch that adds or changes a spec makes one job
per changed spec (docs/specs.md, "How a push becomes a job").

Everything is read from the pushed commit of the default branch, through the bot's mirror:
the repository's ``.forgebot.yml`` (its ``specs.globs``, merged tighten-only with the bot-wide
policy), the spec's new text and its text before the push. Nothing is read from a pull
request branch. Then, per spec:

- a deleted spec makes no job;
- a spec that does not parse makes no job: the pushed commit gets a failing status naming
  the first error, and all errors go to a commit comment where the forge has them
  (:class:`CommitCommenter`), else to a new issue;
- a spec whose criteria did not change (a wording change elsewhere, or the bot's own
  ``status: implemented`` merged) makes no job;
- otherwise the job's task is the spec's diff, read against the whole spec and the files it
  names, with the criteria to implement and the constraints to measure. A spec pushed again
  while its job runs supersedes that attempt on the same branch (bot.store.spec_jobs).

The pusher must have the policy's ``trigger.min_permission``; a push by anyone else starts
nothing and gets no reply (a log line and the delivery's note say why).
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Protocol, runtime_checkable

import yaml

from bot import gitops
from bot.agent.prompts import spec_marking_rule
from bot.commands import permission_allows
from bot.errors import ForgeError, GitError, PolicyError
from bot.events import Pushed
from bot.forges.base import Forge
from bot.pipeline.repo_setup import MAX_REPO_CONFIG_BYTES, REPO_CONFIG
from bot.policy.glob import first_match
from bot.policy.load import merge_repo_policy
from bot.policy.model import Policy
from bot.sandbox.toolchain import split_repo_config
from bot.specs import (
    MAX_SPEC_BYTES,
    InvalidSpec,
    Spec,
    SpecDiff,
    SpecError,
    constraint_of,
    diff_specs,
    parse_spec,
    render_diff,
)
from bot.store import Store
from bot.store.spec_jobs import SpecJobRequest, queue_spec_job

log = logging.getLogger(__name__)

ZERO_SHA = "0" * 40
SPEC_MARKER = "<!-- forgebot:spec -->"
MAX_NAMED_FILES = 20
MAX_STATUS_CHARS = 140  # GitHub cuts a commit status description there


@runtime_checkable
class CommitCommenter(Protocol):
    """A forge that can comment on a commit (GitHub and GitLab can; Gitea cannot)."""

    def comment_commit(self, repo: str, sha: str, body: str) -> None:
        """Add ``body`` as a comment on commit ``sha``."""


@dataclass(frozen=True)
class SpecPlan:
    """What one push made: ``status`` is ``job`` (at least one job queued or superseded) or
    ``ignored``; ``note`` says what happened to each spec."""

    status: str
    note: str
    job_id: int | None = None
    jobs: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Revision:
    """The spec's text after and before the push (None: absent there)."""

    path: str
    new: str | None
    old: str | None


@dataclass
class _Outcome:
    notes: list[str] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Push:
    """One push being planned: where its commits are and what rules it runs under."""

    mirror: Path
    forge: Forge
    event: Pushed
    policy: Policy
    delivery_row: int | None


# --- pure ------------------------------------------------------------------------------------


def spec_trigger_key(forge: str, repo: str, path: str) -> str:
    """One job per spec path: ``<forge>:<repo>:spec:<path>``."""
    return f"{forge}:{repo}:spec:{path}"


def spec_branch(prefix: str, spec_id: str) -> str:
    """``<prefix>spec-<id>``, the id folded to lowercase letters, digits, '.', '_' and '-'
    (git refuses some of what a spec id allows, ``..`` for one)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", spec_id.lower()).strip("-_")[:60] or "spec"
    return f"{prefix}spec-{slug}"


def spec_paths(paths: tuple[str, ...] | list[str], globs: tuple[str, ...]) -> list[str]:
    """The paths (in order, each once) that a spec glob matches."""
    return [p for p in dict.fromkeys(paths) if first_match(globs, p) is not None]


def named_paths(text: str) -> list[str]:
    """Backticked words of a spec that look like repository paths (``hello_service/app.py``)."""
    found = re.findall(r"`([A-Za-z0-9_.][A-Za-z0-9_./-]*\.[A-Za-z0-9]{1,8})`", text)
    return [p for p in dict.fromkeys(found) if ".." not in p and not p.startswith("/")]


def _fence(text: str, info: str = "") -> str:
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text.rstrip()}\n{ticks}"


def build_task(spec: Spec, diff: SpecDiff, new_text: str, old_text: str | None, *,
               sha: str, pusher: str, files: list[str]) -> str:
    """The task a spec job's agent gets: what changed, what to implement, how to mark tests,
    the constraints to measure, the files the spec names, the diff and the whole spec."""
    out = [f"The spec `{spec.path}` (id `{spec.id}`, \"{spec.title}\") changed on the default "
           f"branch at {sha[:12]}, pushed by @{pusher}. Implement it.", ""]
    todo = diff.to_implement
    if todo:
        out.append("Criteria to implement (new or changed), each with at least one test that "
                   "fails without your change and passes with it:")
        for criterion in todo:
            out.append(f"- `{criterion.id}`: {criterion.text}")
            out.extend(f"    {detail}" for detail in criterion.details)
        out.append("")
    if diff.removed:
        out.append("Criteria removed from the spec (their behaviour is no longer required):")
        out.extend(f"- `{c.id}`: {c.text}" for c in diff.removed)
        out.append("")
    limits = [found for found in (constraint_of(c) for c in todo) if found is not None]
    if limits:
        out.append("Constraints (measurable limits): for each, add a test or benchmark that "
                   "measures it, asserts the limit and prints the measured figure as "
                   "`FIGURE <criterion id>: <value> <unit>`:")
        out.extend(f"- `{c.criterion_id}`: {c.text}" for c in limits)
        out.append("")
    out += [spec_marking_rule(tuple(c.id for c in todo) or (f"{spec.id}#1",)), ""]
    if files:
        out += ["Files the spec names: " + ", ".join(f"`{p}`" for p in files), ""]
    out += ["What changed in the criteria:", _fence(render_diff(diff)), ""]
    if old_text is not None:
        patch = "".join(difflib.unified_diff(
            old_text.splitlines(keepends=True), new_text.splitlines(keepends=True),
            fromfile=f"a/{spec.path}", tofile=f"b/{spec.path}"))
        out += ["The spec's diff:", _fence(patch, "diff"), ""]
    out += ["The whole spec as it is now:", _fence(new_text, "markdown")]
    return "\n".join(out) + "\n"


def error_comment(path: str, sha: str, errors: tuple[SpecError, ...]) -> str:
    """The commit comment (or issue) for a spec that does not parse."""
    lines = [SPEC_MARKER, f"forgebot cannot read the spec `{path}` at {sha[:12]}, so it "
             "started no job for it. Fix these and push again (`forgebot spec lint` shows "
             "them locally):", ""]
    lines += [f"- `{error}`" for error in errors[:50]]
    if len(errors) > 50:
        lines.append(f"- ... and {len(errors) - 50} more")
    return "\n".join(lines) + "\n"


def error_status(path: str, errors: tuple[SpecError, ...]) -> str:
    """A commit status description for the same, within the forge's length limit."""
    first = errors[0] if errors else SpecError(path, 0, "does not parse")
    text = (f"forgebot: {path} does not parse ({len(errors)} error(s)); "
            f"line {first.line}: {first.message}")
    return text if len(text) <= MAX_STATUS_CHARS else text[:MAX_STATUS_CHARS - 3] + "..."


# --- reading the pushed commit ---------------------------------------------------------------


def _blob_size(mirror: Path, sha: str, path: str) -> int | None:
    """The size of the file at ``sha:path``, or None when there is no file there."""
    if path.startswith(("-", "/")) or ".." in path.split("/") or "\n" in path:
        return None
    try:
        if gitops.run(["cat-file", "-t", f"{sha}:{path}"], cwd=mirror).strip() != "blob":
            return None
        return int(gitops.run(["cat-file", "-s", f"{sha}:{path}"], cwd=mirror).strip())
    except (GitError, ValueError):
        return None


def read_blob(mirror: Path, sha: str, path: str, limit: int) -> str | None:
    """The text of the file at ``sha:path`` in the mirror, or None when there is none.
    Raises ValueError when it is larger than ``limit`` (UnicodeDecodeError: not text)."""
    size = _blob_size(mirror, sha, path)
    if size is None:
        return None
    if size > limit:
        raise ValueError(f"larger than {limit} bytes")
    return gitops.run(["cat-file", "blob", f"{sha}:{path}"], cwd=mirror)


class SpecTrigger:
    """Turns a push to the default branch into spec jobs. ``mirrors`` is the bot's mirror
    cache (``<data_dir>/mirrors``); without one, each push clones into a temporary folder."""

    def __init__(self, store: Store, policy: Policy, mirrors: Path | None = None) -> None:
        self.store = store
        self.policy = policy
        self.mirrors = mirrors

    def plan(self, forge: Forge, event: Pushed, delivery_row: int | None) -> SpecPlan:
        """Queue one job per added or changed spec of ``event`` (see the module)."""
        if not self.policy.specs.enabled:
            return SpecPlan("ignored", "specs are turned off by the bot-wide policy")
        if event.after == ZERO_SHA:
            return SpecPlan("ignored", "the default branch was deleted")
        changed = self._changed(forge, event)
        if not changed:
            return SpecPlan("ignored", "the push changes no file")
        if not any(_may_be_spec(path, self.policy) for path in changed):
            # Specs are Markdown: a push of code alone is not worth fetching the repository.
            return SpecPlan("ignored", "the push changes no spec")
        if self.mirrors is not None:
            mirror = self._mirror(forge, event, self.mirrors)
            return self._plan_in(mirror, forge, event, changed, delivery_row)
        with TemporaryDirectory(prefix="forgebot-specs-") as tmp:
            mirror = self._mirror(forge, event, Path(tmp))
            return self._plan_in(mirror, forge, event, changed, delivery_row)

    def _changed(self, forge: Forge, event: Pushed) -> list[str]:
        listed = [*event.added, *event.modified]
        if event.complete or event.before == ZERO_SHA:
            return listed
        # The payload may have left some out: ask the forge (deleted paths are weeded out
        # below, since they are not files in the pushed commit).
        return list(dict.fromkeys([*listed, *forge.changed_files(
            event.repo.full_name, event.before, event.after)]))

    @staticmethod
    def _mirror(forge: Forge, event: Pushed, cache: Path) -> Path:
        repo = event.repo.full_name
        return gitops.ensure_mirror(cache, f"{event.repo.forge}/{repo}", forge.clone_url(repo),
                                    forge.git_auth(repo))

    def _policy_at(self, mirror: Path, sha: str) -> tuple[Policy, str]:
        """The bot-wide policy tightened by ``.forgebot.yml`` of the pushed commit; on a
        config that does not load, the bot-wide policy and why."""
        try:
            text = read_blob(mirror, sha, REPO_CONFIG, MAX_REPO_CONFIG_BYTES)
            loaded = yaml.safe_load(text) if text else None
            if loaded is not None and not isinstance(loaded, dict):
                raise PolicyError(f"{REPO_CONFIG}: the top level must be a mapping")
            _, rest = split_repo_config(loaded, source=REPO_CONFIG)
            return merge_repo_policy(self.policy, rest, source=REPO_CONFIG).policy, ""
        except (ValueError, yaml.YAMLError, PolicyError) as exc:
            return self.policy, f"{REPO_CONFIG} not used ({exc}); "

    def _plan_in(self, mirror: Path, forge: Forge, event: Pushed, changed: list[str],
                 delivery_row: int | None) -> SpecPlan:
        policy, config_note = self._policy_at(mirror, event.after)
        if not policy.specs.enabled:
            return SpecPlan("ignored", f"{config_note}specs are turned off for this repository")
        paths = spec_paths(changed, policy.specs.globs)
        if not paths:
            return SpecPlan("ignored", f"{config_note}the push changes no spec")
        repo = event.repo.full_name
        minimum = policy.trigger.min_permission
        if not permission_allows(forge.permission(repo, event.pusher), minimum):
            log.info("spec push by a user without permission", extra={
                "repo": repo, "pusher": event.pusher, "specs": len(paths)})
            return SpecPlan("ignored", f"{event.pusher} lacks {minimum} permission: "
                            f"{len(paths)} spec(s) not taken")
        result = _Outcome()
        push = _Push(mirror, forge, event, policy, delivery_row)
        for path in paths:
            self._one(push, path, result)
        note = config_note + "; ".join(result.notes)
        if result.jobs:
            return SpecPlan("job", note, result.jobs[0], tuple(result.jobs))
        return SpecPlan("ignored", note)

    def _one(self, push: _Push, path: str, result: _Outcome) -> None:
        mirror, forge, event, policy = push.mirror, push.forge, push.event, push.policy
        try:
            revision = _Revision(path, read_blob(mirror, event.after, path, MAX_SPEC_BYTES),
                                 None if event.before == ZERO_SHA
                                 else read_blob(mirror, event.before, path, MAX_SPEC_BYTES))
        except (ValueError, UnicodeDecodeError) as exc:
            self._report_errors(forge, event, path, (SpecError(path, 0, str(exc)),))
            result.notes.append(f"{path}: unreadable")
            return
        if revision.new is None:
            result.notes.append(f"{path}: deleted, no job")
            return
        try:
            spec = parse_spec(revision.new, path)
        except InvalidSpec as exc:
            self._report_errors(forge, event, path, exc.errors)
            result.notes.append(f"{path}: does not parse ({len(exc.errors)} error(s)), no job")
            return
        old = _parse_quietly(revision.old, path)
        diff = diff_specs(old, spec)
        if diff.is_empty:
            result.notes.append(f"{path}: no criterion changed, no job")
            return
        files = [p for p in named_paths(revision.new) if _exists(mirror, event.after, p)]
        task = build_task(spec, diff, revision.new, revision.old, sha=event.after,
                          pusher=event.pusher, files=files[:MAX_NAMED_FILES])
        branch = spec_branch(policy.publish.branch_prefix, spec.id)
        gitops.check_bot_branch(branch, policy.publish.branch_prefix)
        queued = queue_spec_job(self.store, SpecJobRequest(
            trigger_key=spec_trigger_key(event.repo.forge, event.repo.full_name, path),
            forge=event.repo.forge, repo=event.repo.full_name,
            default_branch=event.repo.default_branch, path=path, sha=event.after,
            title=f"Spec {spec.id}: {spec.title}", requested_by=event.pusher, task_text=task,
            branch=branch, delivery_row=push.delivery_row,
            criteria=tuple(c.id for c in diff.to_implement)))
        result.notes.append(f"{path}: job {queued.job.id} {queued.action}")
        if queued.action != "seen":
            result.jobs.append(queued.job.id)

    def _report_errors(self, forge: Forge, event: Pushed, path: str,
                       errors: tuple[SpecError, ...]) -> None:
        """Tell the pusher why their spec made no job. Best effort: a forge that refuses
        leaves the delivery's note as the record."""
        repo = event.repo.full_name
        body = error_comment(path, event.after, errors)
        try:
            forge.set_status(repo, event.after, "failure", error_status(path, errors))
            if isinstance(forge, CommitCommenter):
                forge.comment_commit(repo, event.after, body)
            else:
                forge.create_issue(repo, f"forgebot: the spec {path} does not parse", body)
        except ForgeError as exc:
            log.warning("could not report a spec's errors", extra={"repo": repo,
                                                                   "error": str(exc)})


def _may_be_spec(path: str, policy: Policy) -> bool:
    """Whether ``path`` could be a spec under any policy: Markdown, or a bot-wide spec glob
    (the repository's own globs are read from the commit, after this cheap check)."""
    return path.lower().endswith(".md") or first_match(policy.specs.globs, path) is not None


def _parse_quietly(text: str | None, path: str) -> Spec | None:
    """The spec before the push; one that did not parse counts as absent (all is new)."""
    if text is None:
        return None
    try:
        return parse_spec(text, path)
    except InvalidSpec:
        return None


def _exists(mirror: Path, sha: str, path: str) -> bool:
    return _blob_size(mirror, sha, path) is not None
