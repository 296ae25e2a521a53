"""``/explain``: the model explains the bot's change in a comment.

An explanation is an attempt of its own (queued like ``/retry``, so a crash loses nothing),
but it changes nothing: it reads the diff between the default branch and the bot's branch
from the mirror, asks the coder's model about it, posts the answer where the command was
given, and leaves the job with the state and outcome it had. The answer is the model's
words: redacted and shown in a code fence, like the plan.
"""

from __future__ import annotations

from bot import gitops
from bot.agent import prompts
from bot.agent.llm import Message, Provider
from bot.agent.models import ModelRouter
from bot.errors import ForgebotError
from bot.forges.base import Forge
from bot.pipeline.attempt import Recorder, Runtime
from bot.pipeline.report import MARKER, fenced
from bot.secret_scan import redact
from bot.store import JobView

EXPLAIN_TOKENS = 600
MAX_DIFF_CHARS = 60_000


def explain(rt: Runtime, rec: Recorder, forge: Forge) -> str:
    """Post the explanation (or why there is none) and return the comment's text."""
    job = rec.lease.claim.job
    request = rt.store.last_request(job.id)
    number = int(request.get("reply_to") or job.pull_number or job.issue_number)
    pull = bool(request.get("pull"))
    try:
        diff = _diff(rt, job, forge)
        if not diff.strip():
            text = f"Job {job.id} has no change to explain yet."
        else:
            answer = _ask(rt, rec, job.title, diff)
            text = (f"**How job {job.id} changes the code**, in the model's words:\n\n"
                    f"{fenced(answer)}" if answer else
                    f"The model gave no explanation of job {job.id}'s change.")
    except ForgebotError as exc:
        rec.event("explain.failed", error=type(exc).__name__, message=str(exc))
        text = f"forgebot could not explain job {job.id}: {exc}"
    body = f"{MARKER}\n{text}"
    forge.comment(job.repo, number, body, pull=pull)
    rec.event("explain.posted", number=number, pull=pull)
    return body


def _diff(rt: Runtime, job: JobView, forge: Forge) -> str:
    """The bot's change as the forge has it: default branch ... bot branch, from the
    mirror (fetched first)."""
    if not job.branch:
        return ""
    key = f"{job.forge}/{job.repo}"
    with rt.repo_lock(key):
        mirror = gitops.ensure_mirror(rt.settings.data_dir.resolve() / "mirrors", key,
                                      forge.clone_url(job.repo), forge.git_auth(job.repo))
    try:
        return gitops.run(["diff", "--end-of-options",
                           f"refs/heads/{job.default_branch}...refs/heads/{job.branch}"],
                          cwd=mirror)
    except ForgebotError:
        return ""  # the branch is gone (merged and deleted, or never pushed)


def _ask(rt: Runtime, rec: Recorder, title: str, diff: str) -> str:
    models = ModelRouter(rt.settings.llm)
    try:
        provider = models.for_role("coder")
        messages = _fit(provider, title, diff[:MAX_DIFF_CHARS])
        rec.transcript("prompt", "\n\n".join(m.content for m in messages),
                       {"role": "explainer"})
        completion = provider.complete(messages, max_tokens=EXPLAIN_TOKENS,
                                       temperature=rt.settings.llm.temperature)
    finally:
        models.close()
    rec.transcript("reply", completion.text, {"role": "explainer"})
    return redact(completion.text.strip(), rec.secrets)[:4000]


def _fit(provider: Provider, title: str, diff: str) -> list[Message]:
    """The prompt, with the diff halved until it fits the model's window beside the answer."""
    room = provider.context_window() - EXPLAIN_TOKENS
    while True:
        messages = [Message("system", prompts.EXPLAINER_SYSTEM),
                    Message("user", prompts.issue_block(title, "") + "\n\n"
                            + prompts.notes_block("The change:", diff))]
        if provider.count_tokens(messages) <= room or len(diff) < 200:
            return messages
        diff = diff[: len(diff) // 2] + "\n[... the rest of the diff is left out ...]"
