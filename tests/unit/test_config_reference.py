"""The configuration reference is generated from the settings model and kept in step."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from bot.config import load_settings
from bot.config_reference import (
    DESCRIPTIONS,
    env_name,
    field_comments,
    render,
    sections,
    type_name,
)

ROOT = Path(__file__).resolve().parents[2]
KEYS = [key for section in sections() for key in section.keys]


def test_the_committed_reference_is_what_the_model_renders() -> None:
    committed = (ROOT / "docs" / "configuration-reference.md").read_text()
    assert committed == render(), (
        "docs/configuration-reference.md is stale: run "
        "`.venv/bin/python -m bot.config_reference > docs/configuration-reference.md`")


def test_every_key_is_listed_once_and_described() -> None:
    dotted = [key.dotted for key in KEYS]
    assert len(dotted) == len(set(dotted))
    for expected in ("data_dir", "web.api_token", "forges.gitea.repositories",
                     "llm.models.<name>.base_url", "sandbox.docker.setup_env",
                     "scheduler.reconcile_minutes"):
        assert expected in dotted
    assert "source" not in dotted  # filled in by load_settings, not a setting
    undescribed = [key.dotted for key in KEYS if not key.description]
    assert undescribed == [], "describe these in bot/config.py or DESCRIPTIONS"


def test_every_fallback_description_names_a_key() -> None:
    dotted = [key.dotted for key in KEYS]
    stale = [p for p in DESCRIPTIONS if not fnmatch.filter(dotted, p)]
    assert stale == []


@pytest.mark.parametrize(("dotted", "value", "read"), [
    ("web.port", "9090", lambda s: s.web.port == 9090),
    ("forges.github.timeout_seconds", "7.5", lambda s: s.forges.github.timeout_seconds == 7.5),
    ("sandbox.docker.tmp_mb", "64", lambda s: s.sandbox.docker.tmp_mb == 64),
    ("web.api_token_name", "nightly", lambda s: s.web.api_token_name == "nightly"),
])
def test_the_listed_environment_variables_set_their_keys(dotted, value, read) -> None:
    [key] = [k for k in KEYS if k.dotted == dotted]
    assert key.env == env_name(tuple(dotted.split(".")))
    assert read(load_settings(None, environ={key.env: value}))


def test_types_bounds_and_defaults_are_shown() -> None:
    rows = {key.dotted: key for key in KEYS}
    assert rows["web.port"].type == "integer (>= 0, <= 65535)"
    assert rows["web.port"].default == "`8080`"
    assert rows["web.api_token"].type == "string or empty (at least 16 characters)"
    assert rows["web.api_token"].default == "empty"
    assert rows["llm.provider"].type == 'one of `"llama-cpp"`, `"replay"`, `"openai"`'
    assert rows["forges.local.repositories"].type == "list of string"
    assert rows["llm.models.<name>.stream"].env == "FORGEBOT_LLM__MODELS__<NAME>__STREAM"
    assert type_name(dict[str, int]) == "map of string to integer"


class _Commented(BaseModel):
    # Above, first line,
    # and its second line.
    above: int = 1
    beside: str = ""  # beside it
    # Above,
    both: bool = True  # and beside.
    plain: float = Field(default=0.5, ge=0)

    # A comment after a blank line still belongs to the next field.
    after_blank: int = 0


def test_comments_above_and_beside_a_field_are_its_description() -> None:
    assert field_comments(_Commented) == {
        "above": "Above, first line, and its second line.",
        "beside": "beside it",
        "both": "Above, and beside.",
        "plain": "",
        "after_blank": "A comment after a blank line still belongs to the next field.",
    }
