"""The forge's own CI on the bot's pull request: diagnose, repair, or mark ready when green.

A :class:`~bot.events.ChecksCompleted` event is only a nudge: the forge is asked for every
check of the commit (:meth:`bot.forges.base.Forge.commit_checks`) and nothing is decided
while one is still running, so each commit gets one verdict. The verdict is :func:`decide`,
a pure function of the checks, the policy's ``ci`` section and the job's CI history (its
``ci.*`` job events); :func:`follow` does what it says and records it.

- ``ci.repair: off`` → nothing. ``comment`` → one diagnosis comment per failing commit on
  the pull request. ``fix`` → a revision of the job on the same branch with the failure as
  feedback (``store.requeue(mode="revise", by="ci")``), at most ``ci.max_repairs`` times.
- A failure whose signature (the failing checks' names and normalised summaries and log
  ends) was seen on an earlier commit stops the loop and says so; so does the repair limit.
  A person's ``/retry`` or ``/revise`` starts the loop afresh.
- Never for a stale commit (not the last one the bot published), a job that is queued or
  running (its new commit gets its own CI), a cancelled job, or a branch someone else has
  taken over (a diagnosis comment then, never a repair).
- ``ci.ready_when_green``: publish opened the pull request as a draft that waits for the
  CI; when every check of its latest commit passes it is marked ready, once per commit.

Idempotent under redelivery: every verdict is a ``record_once`` keyed by the commit, taken
before anything is said or queued (at most once rather than twice). CI text is hostile: it
is cut (:mod:`bot.forges.checks`), redacted (:func:`bot.secret_scan.redact`), defused for
Markdown in comments and wrapped as untrusted test output for the model.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.agent.prompts import OUTPUT_TAG, wrap
from bot.events import ChecksCompleted, Repo
from bot.forges.base import CheckResult, Forge
from bot.forges.checks import OWN_CONTEXT
from bot.pipeline.report import MARKER, fenced
from bot.policy.load import ci_for_pull
from bot.policy.model import CI
from bot.secret_scan import redact
from bot.store import JobView, Store

log = logging.getLogger(__name__)

CI_VERDICT = "ci.failure"  # key: the commit; data: signature, checks, action
CI_REPAIR = "ci.repair"  # key: the commit; one per repair attempt started
CI_STOPPED = "ci.stopped"  # key: "stopped"; the loop is over for this job
CI_READY = "ci.ready"  # key: the commit marked ready for review
PUBLISHED = "pull.published"  # publish's event: data sha, waiting_for_ci
REQUEUED = "job.requeued"  # the store's record of /retry, /revise and repairs
REPAIR_BY = "ci"  # who a repair's requeue is by

WAITING_NOTE = ("\n\n_This pull request is a draft until the forge's checks pass: forgebot "
                "marks it ready for review then (`ci.ready_when_green`)._")
READY_NOTE = "\n\n_The forge's checks passed on `{sha}`: ready for review._"
FEEDBACK_MAX = 8_000  # of the repair feedback; the store keeps 20,000
FOLLOWED_JOBS = 200  # a commit that names no branch is looked for among this many jobs


# ------------------------------------------------------------------------- the verdict


@dataclass(frozen=True)
class History:
    """What the job's ``ci.*`` events say: signatures by the commit they failed on, the
    repairs started, whether the loop stopped, and the commits marked ready."""

    verdicts: Mapping[str, str]  # commit -> signature
    repairs: int
    stopped: bool
    ready: frozenset[str]

    @classmethod
    def of(cls, events: Iterable[Mapping[str, Any]]) -> History:
        """From the job's events, oldest first. A person's ``/retry`` or ``/revise`` (a
        ``job.requeued`` not by ``ci``) starts the loop afresh: repairs, verdicts and a stop
        before it no longer count."""
        verdicts: dict[str, str] = {}
        repairs, stopped, ready = 0, False, set()
        for event in events:
            data = event.get("data") or {}
            key = str(data.get("key", ""))
            if event["kind"] == REQUEUED and data.get("by") != REPAIR_BY:
                verdicts, repairs, stopped = {}, 0, False
            if event["kind"] == CI_VERDICT:
                verdicts[key] = str(data.get("signature", ""))
            repairs += event["kind"] == CI_REPAIR
            stopped = stopped or event["kind"] == CI_STOPPED
            if event["kind"] == CI_READY:
                ready.add(key)
        return cls(verdicts, repairs, stopped, frozenset(ready))


@dataclass(frozen=True)
class Decision:
    """``action``: ``ignore``, ``wait`` (checks still running), ``comment`` (a diagnosis),
    ``repair``, ``stop`` (say why the loop ends) or ``ready``; ``reason`` says why."""

    action: str
    reason: str
    signature: str = ""


_NOISE = re.compile(r"\b[0-9a-f]{7,64}\b|\d+")


def normalise(text: str) -> str:
    """``text`` without what changes between two runs of the same failure: digits (line
    numbers, durations, timestamps), hashes, case and spacing."""
    return " ".join(_NOISE.sub("#", text.lower()).split())


def signature(failing: Sequence[CheckResult]) -> str:
    """What names one way of failing: the failing checks' names, normalised summaries and
    the normalised last lines of their logs, in name order."""
    parts = []
    for check in sorted(failing, key=lambda c: c.name):
        last = [line for line in check.log.splitlines() if line.strip()][-3:]
        parts.append("\x1f".join([check.name, normalise(check.summary),
                                  *(normalise(line) for line in last)]))
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()[:24]


def decide(ci: CI, *, sha: str, checks: Sequence[CheckResult], history: History,
           job_state: str, taken_over: bool, waiting_for_ci: bool) -> Decision:
    """The verdict on commit ``sha`` of the bot's pull request (pure: no IO)."""
    if job_state not in ("done", "failed"):
        return Decision("ignore", f"the job is {job_state}")
    if any(c.state == "pending" for c in checks):
        return Decision("wait", "checks are still running")
    failing = [c for c in checks if c.state == "failure"]
    if not failing:
        return _green(sha, checks, history, waiting_for_ci)
    return _failed(ci, sha, failing, history, taken_over)


def _failed(ci: CI, sha: str, failing: Sequence[CheckResult], history: History,
            taken_over: bool) -> Decision:
    """The verdict on a commit with failing checks, the first rule that applies."""
    sig = signature(failing)
    rules: list[tuple[bool, Decision]] = [
        (sha in history.verdicts, Decision("ignore", f"commit {sha[:12]} already has a verdict")),
        (ci.repair == "off", Decision("ignore", "ci.repair is off")),
        (history.stopped, Decision("ignore", "the CI loop of this job has stopped")),
        (sig in history.verdicts.values(),
         Decision("stop", "the checks failed the same way twice", sig)),
        (taken_over, Decision("comment", "the branch was taken over", sig)),
        (ci.repair == "comment", Decision("comment", "ci.repair is comment", sig)),
        (history.repairs >= ci.max_repairs,
         Decision("stop", f"ci.max_repairs ({ci.max_repairs}) reached", sig)),
    ]
    return next((decision for applies, decision in rules if applies),
                Decision("repair", f"repair {history.repairs + 1} of {ci.max_repairs}", sig))


def _green(sha: str, checks: Sequence[CheckResult], history: History,
           waiting_for_ci: bool) -> Decision:
    """All checks passed. Whether a draft waits for that is publish's record
    (``waiting_for_ci``), made under the policy merged with the repository's own."""
    if not any(c.state == "success" for c in checks):
        return Decision("ignore", "no check has passed")
    if not waiting_for_ci:
        return Decision("ignore", "green; nothing waits for it")
    if sha in history.ready:
        return Decision("ignore", f"commit {sha[:12]} was already marked ready")
    return Decision("ready", "every check passed")


# ------------------------------------------------------------------------- finding the job


def find_job(store: Store, event: ChecksCompleted, prefix: str,
             bot_job: Callable[[Repo, int, str], JobView | None]) -> JobView | None:
    """The bot's job whose pull request or branch the commit is on: by the pull request
    numbers the payload names, then its branches under the bot's ``prefix``, then (a Gitea
    status names neither) the recent jobs of the repository whose last published commit it
    is. None for anyone else's commit."""
    repo = event.repo
    if event.name == OWN_CONTEXT:
        return None  # the bot's own status: its setting it is no news
    for number in event.pull_numbers:
        job = bot_job(repo, number, "")
        if job is not None:
            return job
    for branch in event.branches:
        if branch.startswith(prefix):
            job = store.job_for_branch(repo.forge, repo.full_name, branch)
            if job is not None:
                return job
    if event.branches or event.pull_numbers:
        return None
    for job in store.list_jobs(limit=FOLLOWED_JOBS):
        if (job.forge, job.repo) == (repo.forge, repo.full_name) and job.pull_number \
                and _published(store, job.id).get("sha") == event.sha:
            return job
    return None


def _published(store: Store, job_id: int) -> Mapping[str, Any]:
    """The data of the job's last ``pull.published`` event (``{}`` when it has none)."""
    found: Mapping[str, Any] = {}
    for event in store.events(job_id):
        if event["kind"] == PUBLISHED:
            found = event.get("data") or {}
    return found


# ------------------------------------------------------------------------- doing it


@dataclass(frozen=True)
class Followed:
    """What :func:`follow` did: ``status`` as the planner records deliveries."""

    status: str  # "command" (something was said or queued) | "ignored"
    note: str


def follow(store: Store, forge: Forge, ci: CI, event: ChecksCompleted, job: JobView, *,
           taken_over: bool) -> Followed:
    """Decide on ``event``'s commit of ``job``'s pull request and act, under the bot-wide
    ``ci`` tightened by the section the pull request was published under. Raises ForgeError
    when the forge cannot be asked."""
    if event.name == OWN_CONTEXT:
        return Followed("ignored", "the bot's own status")
    published = _published(store, job.id)
    if published.get("sha") != event.sha or not job.pull_number:
        return Followed("ignored", f"{event.sha[:12]} is not the head the bot published")
    checks = forge.commit_checks(job.repo, event.sha)
    events = store.events(job.id)
    # The repository's own ci section, as the job published under it, within the bot-wide.
    ci = ci_for_pull(ci, published.get("ci"))
    decision = decide(ci, sha=event.sha, checks=checks, history=History.of(events),
                      job_state=job.state, taken_over=taken_over,
                      waiting_for_ci=bool(published.get("waiting_for_ci")))
    log.info("ci verdict", extra={"job": job.id, "sha": event.sha[:12],
                                  "action": decision.action, "reason": decision.reason})
    if decision.action in ("ignore", "wait"):
        return Followed("ignored", f"job {job.id}: {decision.reason}")
    if decision.action == "ready":
        return _mark_ready(store, forge, job, event.sha)
    failing = [c for c in checks if c.state == "failure"]
    if not store.record_once(job.id, CI_VERDICT, event.sha, {
            "signature": decision.signature, "action": decision.action,
            "checks": [c.name for c in failing][:20]}):
        return Followed("ignored", f"job {job.id}: {event.sha[:12]} already has a verdict")
    return _act(store, forge, job, sha=event.sha, decision=decision, failing=failing)


def _act(store: Store, forge: Forge, job: JobView, *, sha: str, decision: Decision,
         failing: Sequence[CheckResult]) -> Followed:
    number = job.pull_number or 0
    if decision.action == "repair":
        feedback = repair_feedback(sha, failing, decision.reason)
        if store.requeue(job.id, mode="revise", feedback=feedback, by=REPAIR_BY):
            store.add_event(job.id, CI_REPAIR, {"key": sha, "signature": decision.signature})
            forge.comment(job.repo, number, diagnosis(sha, failing, _next_repair(decision)),
                          pull=True)
            return Followed("command", f"job {job.id}: CI repair ({decision.reason})")
        return Followed("ignored", f"job {job.id} could not be queued for a repair")
    if decision.action == "stop":
        store.record_once(job.id, CI_STOPPED, "stopped", {"reason": decision.reason,
                                                          "sha": sha})
        then = (f"Stopping here: {decision.reason}. Over to a person: fix it on the branch, "
                "or comment `/revise <what to change>` (or `/retry`) to ask forgebot again.")
        forge.comment(job.repo, number, diagnosis(sha, failing, then), pull=True)
        return Followed("command", f"job {job.id}: CI loop stopped ({decision.reason})")
    then = ("The branch was taken over, so forgebot makes no repair."
            if decision.reason == "the branch was taken over" else
            "Comment `/revise <what to change>` to have forgebot fix it.")
    forge.comment(job.repo, number, diagnosis(sha, failing, then), pull=True)
    return Followed("command", f"job {job.id}: CI diagnosis ({decision.reason})")


def _next_repair(decision: Decision) -> str:
    return (f"forgebot starts a repair attempt on this branch ({decision.reason}), with "
            "this failure as feedback.")


def _mark_ready(store: Store, forge: Forge, job: JobView, sha: str) -> Followed:
    if not job.branch:
        return Followed("ignored", f"job {job.id} has no branch")
    pull = forge.find_pull(job.repo, job.branch)
    if pull is None or not pull.draft:
        return Followed("ignored", f"job {job.id}: no draft pull request to mark ready")
    if not store.record_once(job.id, CI_READY, sha, {"number": pull.number}):
        return Followed("ignored", f"job {job.id}: {sha[:12]} was already marked ready")
    body = pull.body.replace(WAITING_NOTE, "") + READY_NOTE.format(sha=sha[:12])
    forge.update_pull(job.repo, pull.number, body=body, draft=False)
    return Followed("command", f"job {job.id}: pull request #{pull.number} marked ready")


# ------------------------------------------------------------------------- the texts


def clean(text: str) -> str:
    """CI text fit to show or to feed the model: secrets redacted (whole lines, as the
    scanner flags them)."""
    return redact(text, path="ci-log.txt").strip() if text.strip() else ""


def _code(text: str) -> str:
    """A name for a Markdown code span: one line, no backticks."""
    return " ".join(text.replace("`", "'").split())[:100]


def _plain(text: str) -> str:
    """One line of hostile text as plain Markdown: no mentions, and every character that
    could make a link, an image, HTML or emphasis escaped."""
    line = " ".join(text.split()).replace("@", "@\u200b")
    return re.sub(r"([\\`*_\[\]()<>!#|~])", r"\\\1", line)


def _link(url: str) -> str:
    return f" ([details]({url}))" if re.fullmatch(r"https?://[^\s()<>\[\]]+", url) else ""


def diagnosis(sha: str, failing: Sequence[CheckResult], then: str) -> str:
    """The comment on the pull request: which checks failed, what they said, their log
    ends (redacted, in blocks they cannot break out of), and what happens next."""
    lines = [MARKER, f"**The forge's CI failed** on `{sha[:12]}`:", ""]
    for check in failing:
        summary = _plain(clean(check.summary)[:300])
        lines.append(f"- `{_code(check.name)}`{': ' + summary if summary else ''}"
                     f"{_link(check.url)}")
    for check in failing:
        tail = clean(check.log)
        if tail:
            lines += ["", f"<details><summary>End of the log of "
                      f"<code>{html.escape(_code(check.name))}</code>"
                      "</summary>", "", fenced(tail.replace("@", "@\u200b")), "",
                      "</details>"]
    return "\n".join([*lines, "", then])


def repair_feedback(sha: str, failing: Sequence[CheckResult], reason: str) -> str:
    """The revision's feedback: what failed, with the CI's own words as untrusted output."""
    head = (f"The forge's CI failed on commit {sha[:12]} of this pull request ({reason}). "
            "Change the code so the failing checks pass; do not weaken or skip them.")
    parts = [head]
    for check in failing:
        text = f"check {check.name}: {check.summary}\n{check.log}".strip()
        parts.append(wrap(OUTPUT_TAG, clean(text)[-(FEEDBACK_MAX // max(1, len(failing))):]))
    return "\n\n".join(parts)[:FEEDBACK_MAX]
