"""Fitting a prompt to the model's real context window, counted with the model's tokenizer.

The minimum prompt is the system prompt, the task (issue, repository instructions, plan) and
the room for the reply. When that alone does not fit, the run stops with the named outcome
``context_too_small``: nothing is ever cut silently. What is optional — the current content
of the files, the repo map, retrieved snippets and the file list — fills what is left, best
first, within ``context_tokens``; older history goes before the task does, and before the
file the change is most about (the first edited, else the best ranked file).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.agent import prompts
from bot.agent.llm import Message, Provider
from bot.agent.sources import Sources
from bot.agent.workspace import Workspace
from bot.errors import ForgebotError

# Room left for the chat template's own tokens and the tokenizer's disagreements with an
# estimate; a prompt this close to the window is refused rather than risked.
MARGIN_TOKENS = 32
# Shares of the optional budget; what one part leaves unused passes to the next.
_MAP_SHARE, _SNIPPET_SHARE, _LIST_SHARE = 0.25, 0.15, 0.05
_SHRINK = 0.7
_ATTEMPTS = 4


class ContextTooSmall(ForgebotError):
    """The model's context window cannot hold the minimum prompt and its reply."""


def fit_task(
    provider: Provider,
    max_tokens: int,
    context_tokens: int,
    *,
    system: str,
    fixed: Sequence[str],
    sources: Sources,
    workspace: Workspace,
    history: Sequence[Message],
) -> list[Message]:
    """The messages of one coder call: system, the task message, then ``history``.

    Raises ContextTooSmall when the system prompt, the ``fixed`` parts of the task and the
    reply's ``max_tokens`` exceed the window even with the history dropped.
    """
    window = provider.context_window()
    fixed_text = "\n\n".join(part for part in (*fixed, prompts.CLOSING) if part)

    def count(messages: list[Message]) -> int:
        return provider.count_tokens(messages)

    minimum = count([Message("system", system), Message("user", fixed_text)]) + max_tokens
    if minimum + MARGIN_TOKENS > window:
        raise ContextTooSmall(
            f"the model's context window is {window} tokens, but the minimum prompt (system "
            f"prompt, issue, repository instructions and plan) needs {minimum - max_tokens} "
            f"plus {max_tokens} for the reply; use a model with a larger window, raise "
            "llm.context_window if the model allows it, or shorten the issue")
    kept = list(history)
    budget = context_tokens
    # The file in play (the first edited one, else the best ranked) goes before old turns: a
    # model cannot write an edit against a file it is not shown.
    first = _first_file(sources, workspace)
    needed = provider.count_tokens([Message("user", first)]) if first else 0
    for _ in range(_ATTEMPTS):
        base = count([Message("system", system), Message("user", fixed_text), *kept])
        room = min(budget, window - max_tokens - MARGIN_TOKENS - base)
        while (room < 0 or (room < needed <= budget)) and kept:
            kept = kept[2:]  # an exchange at a time, oldest first
            base = count([Message("system", system), Message("user", fixed_text), *kept])
            room = min(budget, window - max_tokens - MARGIN_TOKENS - base)
        optional = _optional(provider, max(room, 0), sources, workspace)
        task = "\n\n".join(part for part in (*fixed, *optional, prompts.CLOSING) if part)
        messages = [Message("system", system), Message("user", task), *kept]
        if count(messages) + max_tokens + MARGIN_TOKENS <= window:
            return messages
        budget = int(max(room, 0) * _SHRINK)  # the parts measured alone undercount: shrink
    raise ContextTooSmall(f"the prompt could not be fitted to the model's {window}-token "
                          "context window")


def _order(sources: Sources, workspace: Workspace) -> list[str]:
    """Files by priority: edited files first (with their *current* content: edits are
    written against it), then by rank."""
    return list(dict.fromkeys([*workspace.changed_files(), *sources.ranked]))


def _first_file(sources: Sources, workspace: Workspace) -> str:
    """The block of the file the change is most about: the first edited, else the best
    ranked file ("" when there is none)."""
    for path in _order(sources, workspace):
        text = workspace.read(path)
        if text is not None:
            return prompts.file_block(path, text)
    return ""


def _optional(provider: Provider, budget: int, sources: Sources,
              workspace: Workspace) -> list[str]:
    """File contents (edited files first, then by rank), repo map, snippets and file list,
    within ``budget`` tokens in all."""
    if budget <= 0:
        return []

    def tokens(text: str) -> int:
        return provider.count_tokens([Message("user", text)])

    remaining = budget
    map_budget = int(budget * _MAP_SHARE)
    repo_map = sources.repo_map(map_budget, tokens) if map_budget > 0 else ""
    remaining -= tokens(repo_map) if repo_map else 0
    listing = _listing(sources.files, int(budget * _LIST_SHARE), tokens)
    remaining -= tokens(listing) if listing else 0
    # Whole files first, with the snippets' share held back; a snippet of a file shown whole
    # is not shown again, and the share it leaves passes back to nobody (a file is shown once).
    share = int(budget * _SNIPPET_SHARE) if sources.snippets else 0
    files, shown, used = _files(sources, workspace, remaining - share, tokens)
    snippets = _snippets(sources, min(share, remaining - used), tokens, skip=shown)
    parts = []
    if repo_map:
        parts.append("Map of the repository (definitions by file, most relevant first):\n"
                     + repo_map)
    if snippets:
        parts.append("Code that may be relevant:\n" + "\n\n".join(snippets))
    if listing:
        parts.append(listing)
    if files:
        parts.append("Current content of the relevant files:")
        parts.extend(files)
    return parts


def _snippets(sources: Sources, share: int, tokens: Callable[[str], int], *,
              skip: set[str]) -> list[str]:
    """Retrieved snippets within ``share`` tokens, none of a file in ``skip`` (shown whole)."""
    chosen: list[str] = []
    for snippet in sources.snippets:
        if snippet.path in skip:
            continue
        block = prompts.file_block(f"{snippet.path} (lines {snippet.start_line}-"
                                   f"{snippet.end_line})", snippet.text)
        cost = tokens(block)
        if cost > share:
            continue
        chosen.append(block)
        share -= cost
    return chosen


def _listing(files: list[str], share: int, tokens: Callable[[str], int]) -> str:
    if share <= 0:
        return ""
    listing = prompts.file_list(files)
    shown = len(files)
    while shown > 0 and tokens(listing) > share:
        shown //= 2
        listing = prompts.file_list(files[:shown]) + f"\n[... {len(files) - shown} more]"
    return listing if shown > 0 or not files else ""


def _files(sources: Sources, workspace: Workspace, budget: int,
           tokens: Callable[[str], int]) -> tuple[list[str], set[str], int]:
    """The blocks of the files that fit ``budget``, best first; their paths; the tokens."""
    blocks: list[str] = []
    shown: set[str] = set()
    used = 0
    for path in _order(sources, workspace):
        if budget - used <= 0:
            break
        text = workspace.read(path)
        if text is None:
            continue
        block = prompts.file_block(path, text)
        if len(block) > (budget - used) * 6:  # cheaper than tokenizing what cannot fit
            continue
        cost = tokens(block)
        if cost <= budget - used:
            blocks.append(block)
            shown.add(path)
            used += cost
    return blocks, shown, used
