"""Model roles and the escalation ladder: ModelRouter over real replay providers and settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.agent.llm import Message, Provider
from bot.agent.models import ModelRouter
from bot.agent.providers import OpenAIProvider, ReplayProvider, provider_from_settings
from bot.config import LLMSettings, ModelSettings, load_settings
from bot.errors import ConfigError, ModelError

ASK = [Message("user", "fix it")]


def _transcript(tmp_path: Path, name: str, *replies: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text("".join(f"- {reply}\n" for reply in replies), encoding="utf-8")
    return path


def _settings(tmp_path: Path, **llm: object) -> LLMSettings:
    """Two replay models: "default" answers "small-N", "big" answers "big-N"."""
    return LLMSettings.model_validate({
        "provider": "replay",
        "transcript": _transcript(tmp_path, "small", "small-1", "small-2", "small-3"),
        "models": {"big": {"provider": "replay",
                           "transcript": _transcript(tmp_path, "big", "big-1", "big-2")}},
        **llm,
    })


def _reply(provider: Provider) -> str:
    return provider.complete(ASK, max_tokens=8, temperature=0).text


def test_existing_configuration_is_the_default_model_for_every_role(tmp_path: Path) -> None:
    settings = LLMSettings(provider="replay", transcript=_transcript(tmp_path, "t", "only"))
    with ModelRouter(settings) as router:
        assert router.names == ("default",)
        assert router.ladder == ("default",)
        coder = router.for_role("coder")
        assert isinstance(coder, ReplayProvider)
        assert router.for_role("planner") is coder
        assert router.for_role("reviewer") is coder
        assert router.escalate(10) is coder


def test_roles_map_to_named_models(tmp_path: Path) -> None:
    router = ModelRouter(_settings(tmp_path, roles={"reviewer": "big"}))
    assert router.model_for_role("reviewer") == "big"
    assert router.model_for_role("coder") == "default"
    assert _reply(router.for_role("reviewer")) == "big-1"
    assert _reply(router.for_role("coder")) == "small-1"


def test_providers_are_built_once_per_router(tmp_path: Path) -> None:
    built: list[ModelSettings] = []

    def build(model: ModelSettings) -> Provider:
        built.append(model)
        return provider_from_settings(model)

    router = ModelRouter(_settings(tmp_path), build=build)
    assert built == []  # lazily
    first = router.get("big")
    assert router.get("big") is first
    assert _reply(first) == "big-1"
    assert _reply(router.get("big")) == "big-2"  # the same instance: its state carries on
    assert len(built) == 1
    router.close()
    assert router.get("big") is not first  # a closed router rebuilds
    assert len(built) == 2


@pytest.mark.parametrize(
    ("failures", "model"),
    [(0, "default"), (1, "default"), (2, "big"), (3, "big"), (9, "big")],
)
def test_escalation_moves_one_rung_per_escalate_after_failures(
    tmp_path: Path, failures: int, model: str
) -> None:
    router = ModelRouter(_settings(tmp_path, escalation=["default", "big"], escalate_after=2))
    assert router.model_for_failures(failures) == model
    assert router.escalate(failures) is router.get(model)


def test_a_three_rung_ladder(tmp_path: Path) -> None:
    base = _settings(tmp_path)
    huge = {"provider": "openai", "base_url": "http://models.internal/v1", "model": "huge"}
    settings = LLMSettings.model_validate({
        **base.model_dump(exclude={"models"}),
        "models": {"big": base.models["big"].model_dump(), "huge": huge},
        "escalation": ["default", "big", "huge"], "escalate_after": 1,
    })
    router = ModelRouter(settings)
    assert [router.rung(n) for n in range(5)] == [0, 1, 2, 2, 2]
    assert isinstance(router.escalate(2), OpenAIProvider)
    router.close()


def test_unknown_model_or_role_at_run_time(tmp_path: Path) -> None:
    router = ModelRouter(_settings(tmp_path))
    with pytest.raises(ModelError, match=r"unknown model 'nope'; known: default, big"):
        router.get("nope")
    with pytest.raises(ModelError, match=r"unknown role 'critic'"):
        router.model_for_role("critic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="zero or more"):
        router.rung(-1)


class _Exploding:
    name = "exploding"

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True
        raise RuntimeError("stuck")


def test_close_closes_every_provider_even_when_one_fails(tmp_path: Path) -> None:
    made: list[_Exploding] = []

    def build(model: ModelSettings) -> Provider:
        made.append(_Exploding())
        return made[-1]  # type: ignore[return-value]

    router = ModelRouter(_settings(tmp_path), build=build)
    router.get("default")
    router.get("big")
    with pytest.raises(ModelError, match=r"could not close model\(s\): default: RuntimeError"):
        router.close()
    assert [p.closed for p in made] == [True, True]


# --- configuration --------------------------------------------------------------------------


def _load(tmp_path: Path, text: str) -> LLMSettings:
    path = tmp_path / "forgebot.yml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ={}).llm


def test_configuration_with_models_roles_and_ladder(tmp_path: Path) -> None:
    llm = _load(tmp_path, """
llm:
  provider: llama-cpp
  n_gpu_layers: -1
  models:
    big: {provider: openai, base_url: "http://vllm:8000/v1", model: qwen2.5-coder-32b}
  roles: {planner: default, coder: default, reviewer: big}
  escalation: [default, big]
  escalate_after: 3
""")
    assert llm.models["big"].model == "qwen2.5-coder-32b"
    assert llm.roles == {"planner": "default", "coder": "default", "reviewer": "big"}
    assert (llm.escalation, llm.escalate_after, llm.n_gpu_layers) == (["default", "big"], 3, -1)


def test_a_named_model_key_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "forgebot.yml"
    path.write_text("llm:\n  models:\n    big: {provider: openai, base_url: 'http://x/v1', "
                    "model: m}\n", encoding="utf-8")
    llm = load_settings(path, environ={"FORGEBOT_LLM__MODELS__BIG__API_KEY": "sk-x"}).llm
    assert llm.models["big"].api_key == "sk-x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("llm:\n  roles: {reviewer: bigg}\n",
         "llm: llm.roles.reviewer: unknown model 'bigg'; known: default"),
        ("llm:\n  roles: {critic: default}\n", "llm.roles.critic"),
        ("llm:\n  escalation: [default, huge]\n",
         "llm.escalation[1]: unknown model 'huge'; known: default"),
        ("llm:\n  escalation: [default, default]\n", "only once on the ladder"),
        ("llm:\n  models: {big: {provider: replay, transcript: t.yml}}\n"
         "  escalation: [big, default]\n",
         "llm.escalation: the first rung must be the coder's model ('default'), not 'big'"),
        ("llm:\n  models: {big: {provider: gpt}}\n", "llm.models.big.provider"),
        ("llm:\n  models: {big: {provider: openai, base_url: 'http://x/v1'}}\n",
         "llm.models.big: base_url and model are required when provider is 'openai'"),
        ("llm:\n  models: {big: {provider: replay}}\n",
         "llm.models.big: transcript is required when provider is 'replay'"),
        ("llm:\n  models: {default: {provider: replay, transcript: t.yml}}\n",
         "llm.models.default: a model name must be"),
        ("llm:\n  models: {Big: {provider: replay, transcript: t.yml}}\n",
         "llm.models.Big: a model name must be"),
        ("llm:\n  models: {big: {provider: replay, transcript: t.yml, max_tokens: 9}}\n",
         "llm.models.big.max_tokens: unknown key"),
        ("llm:\n  escalate_after: 0\n", "llm.escalate_after"),
        ("llm:\n  n_gpu_layers: -2\n", "llm.n_gpu_layers"),
    ],
)
def test_bad_model_configuration_names_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert expected in str(caught.value)
    assert "Value error" not in str(caught.value)
