"""The command line: doctor, configuration errors, and the local forge commands."""

from click.testing import CliRunner

from bot.cli import main
from tests.conftest import REPO, SECRET


def run(env, *args):
    return CliRunner().invoke(main, list(args), env=env)


def env_for(tmp_path):
    return {"FORGEBOT_DATA_DIR": str(tmp_path / "data"), "FORGEBOT_FORGES__LOCAL__SECRET": SECRET,
            "FORGEBOT_FORGES__LOCAL__RECEIVER_URL": "http://127.0.0.1:9/webhooks/local"}


def test_doctor_reports_each_part_with_fix_hints(tmp_path):
    env = env_for(tmp_path)
    env["FORGEBOT_SANDBOX__IMAGES"] = "{python: forgebot-runner-python:missing}"
    result = run(env, "doctor")
    assert result.exit_code == 1
    out = result.output
    for part in ("configuration", "git", "docker engine", "runner images", "store", "model",
                 "policy", "local forge"):
        assert f"] {part}:" in out
    assert "[FAIL] runner images" in out and "fix: make runner-images" in out
    assert "no-new-privileges" in out


def test_doctor_without_secret_says_deliveries_are_refused(tmp_path):
    env = env_for(tmp_path)
    del env["FORGEBOT_FORGES__LOCAL__SECRET"]
    result = run(env, "doctor")
    assert "every delivery will be refused" in result.output


def test_a_configuration_typo_stops_every_command(tmp_path):
    config = tmp_path / "forgebot.yml"
    config.write_text("scheduler:\n  concurency: 2\n")
    result = run({}, "--config", str(config), "doctor")
    assert result.exit_code == 2
    assert f"{config}: scheduler.concurency: unknown key" in result.output


def test_local_commands_and_an_unreachable_receiver(tmp_path):
    env = env_for(tmp_path)
    assert run(env, "local", "init", str(REPO / "examples" / "hello-service"),
               "--repo", "acme/hello").exit_code == 0
    source = str(REPO / "examples" / "hello-service")
    again = run(env, "local", "init", source, "--repo", "acme/hello")
    assert again.exit_code == 2 and "already exists" in again.output
    filed = run(env, "local", "issue", "--repo", "acme/hello", "--title", "Hi",
                "--label", "forgebot")
    assert filed.exit_code == 2
    assert "issue #1 filed" in filed.output
    assert "forgebot serve" in filed.output and SECRET not in filed.output
    shown = run(env, "local", "show-issue", "--repo", "acme/hello", "1")
    assert shown.exit_code == 0 and "Hi" in shown.output
    assert "has no pull requests" in run(env, "local", "pulls", "--repo", "acme/hello").output
    assert run(env, "local", "show-pull", "--repo", "acme/hello", "7").exit_code == 2


def test_spec_lint_and_show(tmp_path):
    example = REPO / "examples" / "hello-service" / "specs" / "greeting.md"
    clean = run({}, "spec", "lint", str(example))
    assert clean.exit_code == 0 and clean.output == ""
    bad = tmp_path / "bad.md"
    bad.write_text("---\nid: bad\nowner: ada\ncolour: red\n---\n# Bad\n\n## Acceptance\n\n- one\n")
    linted = run({}, "spec", "lint", str(bad))
    assert linted.exit_code == 1
    assert f"{bad}:" in linted.output and "colour" in linted.output
    shown = run({}, "spec", "show", str(example))
    assert shown.exit_code == 0 and "greeting#greet-name" in shown.output
