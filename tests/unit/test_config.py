from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "forgebot.yml"
    path.write_text(text)
    return path


def test_defaults_without_file_or_environment():
    s = load_settings(None, environ={})
    assert s.llm.provider == "llama-cpp"
    assert s.store_url.startswith("sqlite:///")
    assert s.scheduler.concurrency == 2


def test_file_then_environment_overrides(tmp_path):
    path = write(tmp_path, "scheduler:\n  concurrency: 3\nweb:\n  port: 9000\n")
    s = load_settings(path, environ={"FORGEBOT_WEB__PORT": "9100"})
    assert s.scheduler.concurrency == 3
    assert s.web.port == 9100
    assert "FORGEBOT_WEB__PORT" in s.source


def test_config_path_from_environment(tmp_path):
    path = write(tmp_path, "bot_user: bot-please\n")
    s = load_settings(None, environ={"FORGEBOT_CONFIG": str(path)})
    assert s.bot_user == "bot-please"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("scheduler:\n  concurency: 3\n", "scheduler.concurency: unknown key"),
        ("web:\n  port: lots\n", "web.port:"),
        ("llm:\n  provider: gpt\n", "llm.provider:"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("web: [\n", "not valid YAML"),
        ("llm:\n  provider: replay\n", "llm.transcript is required"),
    ],
)
def test_bad_file_names_the_key_and_the_file(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yml: configuration file not found"):
        load_settings(tmp_path / "nope.yml", environ={})


def test_bad_environment_value_names_the_variable():
    expected = r"FORGEBOT_SCHEDULER__CONCURRENCY: scheduler\.concurrency"
    with pytest.raises(ConfigError, match=expected):
        load_settings(None, environ={"FORGEBOT_SCHEDULER__CONCURRENCY": "many"})


def test_unknown_environment_key_is_an_error():
    with pytest.raises(ConfigError, match=r"FORGEBOT_WEB__PROT: web\.prot: unknown key"):
        load_settings(None, environ={"FORGEBOT_WEB__PROT": "1"})


@pytest.mark.parametrize("path", sorted((REPO / "examples").rglob("forgebot*.yml")))
def test_every_example_configuration_loads(path):
    load_settings(path, environ={})


def _keys(model, prefix=""):
    from pydantic import BaseModel

    for name, field in model.model_fields.items():
        if name == "source":
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _keys(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}"


def test_every_key_is_documented():
    from bot.config import Settings

    doc = (REPO / "docs" / "configuration.md").read_text()
    generic = {f"forges.{name}." for name in ("github", "gitlab", "gitea")}

    def documented(key: str) -> bool:
        shared = next((key.replace(g, "forges.<name>.") for g in generic if key.startswith(g)), key)
        return f"`{key}`" in doc or f"`{shared}`" in doc

    missing = [k for k in _keys(Settings) if not documented(k)]
    assert missing == []



def test_existing_llm_keys_are_the_default_model_with_no_ladder(tmp_path):
    path = write(tmp_path, "llm:\n  provider: openai\n  base_url: http://x/v1\n  model: m\n"
                           "  context_window: 8192\n")
    llm = load_settings(path, environ={"FORGEBOT_LLM__MAX_ATTEMPTS": "2"}).llm
    assert (llm.models, llm.roles, llm.escalation) == ({}, {}, [])
    assert llm.provider_fields() == {
        "context_window": 8192, "n_gpu_layers": 0, "base_url": "http://x/v1", "model": "m",
        "timeout_s": 120.0, "connect_timeout_s": 10.0, "stream": True, "max_attempts": 2,
        "retry_budget_s": 300.0,
    }
