"""The configuration reference, rendered from the settings model itself.

``python -m bot.config_reference > docs/configuration-reference.md`` lists every key of
``bot.config.Settings``: its dotted name, its ``FORGEBOT_*`` environment variable, its type
and bounds, its default, and what it is for. The description is the field's pydantic
``description`` when it has one, else the source comment beside or above the field: the
comments the code already keeps are the documentation, so the two cannot drift apart, and a
unit test fails when the committed page differs from what this module renders.
"""

from __future__ import annotations

import ast
import fnmatch
import inspect
import io
import json
import re
import textwrap
import tokenize
import types
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from bot.config import CONFIG_ENV, ENV_PREFIX, Settings

# Not settings: where the settings came from, filled in by load_settings.
_INTERNAL = frozenset({"source"})
# Descriptions of the keys whose field has no comment in the source, by dotted key or
# fnmatch pattern. The tests fail when a key has no description at all, and when an entry
# here matches no key, so a new setting must be described and a removed one leaves no trace.
DESCRIPTIONS: dict[str, str] = {
    "data_dir": "Where forgebot keeps its state: the SQLite file when store.url is empty, git "
                "mirrors, worktrees, the local forge's root by default.",
    "bot_user": "The bot's account name: its own comments and pushes are recognised by it, "
                "and comment commands may address it as @<bot_user>.",
    "web.host": "The address the web server listens on. Beyond loopback, the dashboard needs "
                "a token or a trusted header.",
    "web.port": "The web server's port (webhooks, health, metrics, API, dashboard).",
    "web.threads": "The web server's worker threads.",
    "web.max_body_bytes": "The largest webhook or API body accepted; larger is a 413.",
    "web.dashboard.enabled": "Serve the read-only dashboard at /dashboard.",
    "web.api_token_name": "The name the tasks API's jobs are requested by (\"api:<name>\"), "
                          "shown in the job's record and the dashboard.",
    "scheduler.concurrency": "Jobs this process runs at once.",
    "scheduler.tick_seconds": "How often the scheduler plans deliveries and claims jobs when "
                              "nothing wakes it earlier.",
    "scheduler.lease_seconds": "A claimed job's lease; renewed while it runs, and a job whose "
                               "worker died is requeued once it expires.",
    "scheduler.max_attempts": "Attempts of a job before a retryable failure is final.",
    "forges.local.secret": "The local forge's webhook signing secret; no secret: every "
                           "delivery is refused.",
    "forges.*.enabled": "Receive webhooks from this forge and act on it.",
    "forges.*.webhook_secret": "The webhook secret (GitLab: the token) deliveries are checked "
                               "against; no secret: every delivery is refused.",
    "forges.*.token": "The API token the bot acts with on this forge.",
    "forges.*.timeout_seconds": "Timeout of one API request.",
    "forges.*.max_retries": "Retries of an API request that failed in a way that may pass.",
    "llm*.provider": "Which provider serves the model: llama-cpp (embedded), openai (any "
                     "OpenAI-compatible server) or replay (a recorded transcript, for tests).",
    "llm.max_tokens": "The longest reply asked of the model, in tokens.",
    "llm.temperature": "Sampling temperature; 0 is deterministic where the provider allows.",
    "llm.models": "More models by name, each with the keys below; roles and the escalation "
                  "ladder name them.",
    "agent.max_iterations": "Edit-and-test rounds of the agent loop per attempt; the policy's "
                            "limits.max_iterations may lower it.",
    "sandbox.backend": "Where sandboxes run: the local Docker engine, or Pods on Kubernetes.",
    "sandbox.kubernetes.context": "The kubeconfig context; empty: its current context.",
    "sandbox.kubernetes.image_pull_policy": "The sandbox Pods' image pull policy.",
    "sandbox.kubernetes.workspace_medium": "The workspace emptyDir's medium: Memory (tmpfs) "
                                           "or \"\" (the node's disk).",
    "sandbox.kubernetes.start_timeout_s": "How long a sandbox Pod may take to start.",
    "sandbox.kubernetes.request_timeout_s": "Timeout of one Kubernetes API request.",
    "sandbox.kubernetes.manage_network_policy": "Create the NetworkPolicy that opens a "
                                                "sandbox's egress when a policy allows it.",
    "sandbox.memory_mb": "Memory limit of a sandbox.",
    "sandbox.cpus": "CPU limit of a sandbox.",
    "sandbox.cache_max_age_days": "Kept setup snapshots and package caches older than this "
    "are removed.",
    "sandbox.cache_snapshots_per_repo": "Kept setup snapshots per repository; the oldest go "
    "first.",
    "sandbox.pids": "Process limit of a sandbox.",
    "sandbox.workspace_mb": "Size of a sandbox's workspace.",
    "git.author_name": "Author and committer name of the bot's commits.",
    "git.author_email": "Author and committer email of the bot's commits.",
    "git.timeout_seconds": "Timeout of one git command against a remote.",
}
_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean",
                            Path: "path"}


@dataclass(frozen=True)
class Key:
    """One row of the reference."""

    dotted: str
    env: str
    type: str
    default: str
    description: str


@dataclass(frozen=True)
class Section:
    """The keys under one top-level name, with the model's docstring as an introduction."""

    name: str
    intro: str
    keys: tuple[Key, ...]


def env_name(parts: tuple[str, ...]) -> str:
    """The environment variable of a dotted key: ``web.port`` is ``FORGEBOT_WEB__PORT``."""
    return ENV_PREFIX + "__".join(part.upper() for part in parts)


def sections(model: type[BaseModel] = Settings) -> list[Section]:
    """Every key of ``model``, grouped by top-level section (top-level scalars first)."""
    top: list[Key] = []
    out: list[Section] = []
    for name, field in model.model_fields.items():
        if name in _INTERNAL:
            continue
        nested = _model_of(field.annotation)
        if nested is None:
            top.extend(_keys(model, name, field, ()))
        else:
            out.append(Section(name, _doc(nested), tuple(_keys(model, name, field, ()))))
    return [Section("", "", tuple(top)), *out]


def _keys(owner: type[BaseModel], name: str, field: FieldInfo,
          prefix: tuple[str, ...]) -> Iterator[Key]:
    parts = (*prefix, name)
    nested = _model_of(field.annotation)
    if nested is not None:
        for child, child_field in nested.model_fields.items():
            yield from _keys(nested, child, child_field, parts)
        return
    value_model = _dict_value_model(field.annotation)
    dotted = ".".join(parts)
    yield Key(dotted, env_name(parts), _describe_type(field), _default(field),
              _description(owner, name, field) or described(dotted))
    if value_model is not None:  # llm.models.<name>.*: one entry per named model
        entry = (*parts, "<name>")
        for child, child_field in value_model.model_fields.items():
            yield from _keys(value_model, child, child_field, entry)


# ------------------------------------------------------------------ types and defaults


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _dict_value_model(annotation: Any) -> type[BaseModel] | None:
    if get_origin(annotation) is dict:
        return _model_of(get_args(annotation)[1])
    return None


def type_name(annotation: Any) -> str:
    """A reader's name for a type: ``integer``, ``list of string``, ``string or empty``."""
    if annotation is type(None):
        return "empty"
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if _model_of(annotation) is not None:
        return "settings (the keys below)"
    origin = get_origin(annotation)
    if origin is None:
        return getattr(annotation, "__name__", str(annotation))
    return _generic_name(origin, get_args(annotation))


def _generic_name(origin: Any, args: tuple[Any, ...]) -> str:
    if origin is Literal:
        return "one of " + ", ".join(f"`{json.dumps(a)}`" for a in args)
    if origin in (Union, types.UnionType):
        named = " or ".join(type_name(a) for a in args if a is not type(None))
        return named + (" or empty" if type(None) in args else "")
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"map of {type_name(args[0])} to {type_name(args[1])}"
    return str(origin)


def _describe_type(field: FieldInfo) -> str:
    text = type_name(field.annotation)
    bounds = []
    for meta in field.metadata:
        for kind, sign, attribute in ((annotated_types.Ge, ">=", "ge"),
                                      (annotated_types.Gt, ">", "gt"),
                                      (annotated_types.Le, "<=", "le"),
                                      (annotated_types.Lt, "<", "lt")):
            if isinstance(meta, kind):
                bounds.append(f"{sign} {getattr(meta, attribute)}")
        if isinstance(meta, annotated_types.MinLen):
            bounds.append(f"at least {meta.min_length} characters")
        pattern = getattr(meta, "pattern", None)
        if isinstance(pattern, str):
            bounds.append(f"matching `{pattern}`")
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        return f"`{value}`"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value)}`"


# ------------------------------------------------------------------ descriptions


def _doc(model: type[BaseModel]) -> str:
    doc = model.__doc__
    # pydantic gives every model BaseModel's docstring unless it has its own.
    if not doc or doc == BaseModel.__doc__:
        return ""
    return " ".join(inspect.cleandoc(doc).split())


def described(dotted: str) -> str:
    """The DESCRIPTIONS entry of a key, or "" when none matches."""
    return next((text for pattern, text in DESCRIPTIONS.items()
                 if fnmatch.fnmatchcase(dotted, pattern)), "")


def _description(owner: type[BaseModel], name: str, field: FieldInfo) -> str:
    if field.description:
        return field.description
    for cls in owner.__mro__:
        if inspect.isclass(cls) and issubclass(cls, BaseModel) and cls is not BaseModel:
            comment = field_comments(cls).get(name)
            if comment is not None:
                return comment
    return ""


@cache
def field_comments(cls: type) -> dict[str, str]:
    """The comment of each field declared in ``cls``'s own body: the comment lines right
    above the field, then the comment at the end of its first line."""
    try:
        lines, _ = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return {}
    source = textwrap.dedent("".join(lines))
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                                tokenize.DEDENT, tokenize.ENDMARKER):
            code_lines.add(token.start[0])
    found: dict[str, str] = {}
    [node] = ast.parse(source).body
    assert isinstance(node, ast.ClassDef)
    for statement in node.body:
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        line = statement.lineno
        above: list[str] = []
        row = line - 1
        while row in comments and row not in code_lines:
            above.insert(0, comments[row])
            row -= 1
        beside = comments.get(line) if line in code_lines else None
        text = " ".join([*above, *([beside] if beside else [])])
        found[statement.target.id] = re.sub(r"\s+", " ", text).strip()
    return found


# ------------------------------------------------------------------ Markdown


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The whole reference page as Markdown."""
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m bot.config_reference > docs/configuration-reference.md`"
        " from the settings model (bot/config.py); do not edit by hand. -->",
        "",
        "Every setting forgebot reads. Settings come from the defaults, then the YAML file "
        f"named by `--config` or `{CONFIG_ENV}`, then `{ENV_PREFIX}*` environment variables "
        "(a double underscore between the parts of a key; values are read as YAML scalars, "
        "so `4` is a number and `true` a boolean). Unknown keys are refused at start. "
        "`configuration.md` explains how the settings fit together; this page lists them.",
        "",
        "Keys that hold secrets (tokens, webhook secrets, API keys) belong in the environment "
        "or an orchestrator's secret store, never in a file in git.",
    ]
    for section in sections():
        title = f"`{section.name}`" if section.name else "Top level"
        out += ["", f"## {title}", ""]
        if section.intro:
            out += [section.intro, ""]
        out += ["| key | environment variable | type | default | description |",
                "| --- | --- | --- | --- | --- |"]
        out += [f"| `{k.dotted}` | `{k.env}` | {_cell(k.type)} | {_cell(k.default)} | "
                f"{_cell(k.description)} |" for k in section.keys]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
