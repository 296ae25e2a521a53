"""``forgebot eval``: the shipped suite loads and its reference solutions apply (fast), and the
harness runs the real service on the local forge with the replay provider, grades with the
hidden tests in the Docker sandbox, and reports unresolved and invalid tasks as such."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from click.testing import CliRunner, Result

from bot.agent.editformats import apply_edits, get_format
from bot.cli import main
from bot.eval.tasks import TaskError, load_suite, load_task
from tests.conftest import REPO
from tests.integration.docker_engine import docker_engine

SUITE = REPO / "examples" / "tasks"
IMAGES = ["forgebot-runner-python:1", "forgebot-runner-node:1", "forgebot-runner-go:1"]


# the shipped suite (no Docker) --------------------------------------------------------------


def test_every_task_of_the_suite_loads() -> None:
    tasks = load_suite(SUITE)
    languages = Counter(t.language for t in tasks)
    assert len(tasks) >= 12
    assert languages["python"] >= 5 and languages["javascript"] >= 4 and languages["go"] >= 3
    assert {t.difficulty for t in tasks} == {1, 2, 3}
    for task in tasks:
        assert task.title and task.body.strip(), task.name
        assert task.replay is not None, f"{task.name} has no replay.yml"


@pytest.mark.parametrize("name", sorted(p.name for p in SUITE.iterdir() if p.is_dir()))
def test_reference_solution_applies_to_the_starting_files(name: str) -> None:
    task = load_task(SUITE / name)
    assert task.replay is not None
    [reply] = yaml.safe_load(task.replay.read_text(encoding="utf-8"))
    edits = get_format("search_replace").parse(reply)
    assert edits, f"{name}: the reference reply holds no edit blocks"
    current = {e.path: (task.repo_dir / e.path).read_text(encoding="utf-8")
               for e in edits if (task.repo_dir / e.path).is_file()}
    changed = apply_edits(current, edits)  # raises when a SEARCH part does not match
    # The solution touches the code, not only tests; the hidden tests are not in the repo.
    assert any(not path.startswith(("test", "tests/")) for path in changed), name
    for hidden in task.hidden_dir.rglob("*"):
        if hidden.is_file():
            assert not (task.repo_dir / hidden.relative_to(task.hidden_dir)).exists(), hidden


# task.yml validation (no Docker) ------------------------------------------------------------


def _task_folder(tmp_path: Path, name: str = "py-page-count") -> Path:
    folder = tmp_path / "suite" / name
    shutil.copytree(SUITE / "py-page-count", folder)
    return folder


def _write_task_yml(folder: Path, **change: Any) -> Path:
    path = folder / "task.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in change.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        ({"difficulty": 5}, "difficulty", "must be 1, 2 or 3"),
        ({"difficulty": None}, "difficulty", "required"),
        ({"language": "rust"}, "language", "must be one of go, javascript, python"),
        ({"name": "other-name"}, "name", "must equal the folder's name"),
        ({"name": "Bad Name"}, "name", "lower-case"),
        ({"issue": {"title": "x"}}, "issue.body", "required"),
        ({"issue": {"title": "", "body": "b"}}, "issue.title", "required"),
        ({"issue": {"title": "t", "body": "b", "labels": ["x"]}}, "issue.labels", "unknown key"),
        ({"test": 42}, "test", "must be a command"),
        ({"timeout": 3}, "timeout", "unknown key"),
    ],
)
def test_invalid_task_yml_names_the_file_and_the_key(
    tmp_path: Path, change: dict[str, Any], key: str, reason: str
) -> None:
    path = _write_task_yml(_task_folder(tmp_path), **change)
    with pytest.raises(TaskError) as info:
        load_suite(path.parent.parent)
    assert str(info.value).startswith(f"{path}: {key}:"), str(info.value)
    assert reason in str(info.value)


def test_a_task_without_hidden_tests_is_refused(tmp_path: Path) -> None:
    folder = _task_folder(tmp_path)
    shutil.rmtree(folder / "hidden_tests")
    with pytest.raises(TaskError, match="hidden_tests/: required folder is missing"):
        load_task(folder)


def test_test_command_may_be_a_string_or_a_list(tmp_path: Path) -> None:
    folder = _task_folder(tmp_path)
    _write_task_yml(folder, test="python3 -m pytest -q")
    assert load_task(folder).test == ("sh", "-c", "python3 -m pytest -q")
    _write_task_yml(folder, test=["python3", "-m", "pytest"])
    assert load_task(folder).test == ("python3", "-m", "pytest")


def test_cli_refuses_an_invalid_task_before_running_anything(tmp_path: Path) -> None:
    path = _write_task_yml(_task_folder(tmp_path), difficulty="hard")
    result = _eval(tmp_path, path.parent.parent, "--provider", "replay")
    assert result.exit_code == 2
    assert f"{path}: difficulty: must be 1, 2 or 3, got 'hard'" in result.output
    assert not (tmp_path / "data").exists()


def test_cli_names_an_unknown_only(tmp_path: Path) -> None:
    result = _eval(tmp_path, SUITE, "--only", "no-such-task")
    assert result.exit_code == 2
    assert "no task named no-such-task" in result.output


# running the bot (Docker) -------------------------------------------------------------------


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    with docker_engine(IMAGES, cleanup_label="forgebot.eval=1") as client:
        yield client


def _eval(tmp_path: Path, suite: Path, *args: str) -> Result:
    env = {"FORGEBOT_CONFIG": None, "FORGEBOT_DATA_DIR": str(tmp_path / "settings-data")}
    return CliRunner().invoke(main, ["eval", str(suite), "--data-dir", str(tmp_path / "data"),
                                     *args], env=env, catch_exceptions=False)


def _eval_json(tmp_path: Path, suite: Path, *args: str) -> tuple[Result, dict[str, Any]]:
    out = tmp_path / "results.json"
    result = _eval(tmp_path, suite, "--provider", "replay", "--json", str(out), *args)
    return result, json.loads(out.read_text(encoding="utf-8"))


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in report["tasks"]}


@pytest.mark.docker
@pytest.mark.slow
def test_eval_resolves_one_task_per_language(tmp_path: Path,
                                             engine: docker.DockerClient) -> None:
    names = ["py-page-count", "js-fahrenheit", "go-clamp"]
    only = [arg for name in names for arg in ("--only", name)]
    result, report = _eval_json(tmp_path, SUITE, *only)
    assert result.exit_code == 0, result.output
    assert (report["total"], report["ran"], report["resolved"], report["rate"]) == (3, 3, 3, 1.0)
    assert report["provider"] == "replay" and report["invalid"] == [] and report["errors"] == []
    for name, task in _by_name(report).items():
        assert task["status"] == "ran" and task["outcome"] == "submitted", task
        assert task["resolved"] is True and task["iterations"] == 1, task
        assert task["prompt_tokens"] > 0 and task["completion_tokens"] > 0, task
        assert task["base_exit"] != 0 and task["hidden_exit"] == 0, task
        assert isinstance(task["pull"], int) and task["seconds"] > 0, task
        assert f"\n{name}" in result.output
    assert "resolved 3/3 (100.0%)" in result.output
    rows = [line.split() for line in result.output.splitlines() if line.startswith(tuple(names))]
    assert [row[:5] for row in rows] == [
        ["go-clamp", "go", "1", "submitted", "yes"],
        ["js-fahrenheit", "javascript", "1", "submitted", "yes"],
        ["py-page-count", "python", "1", "submitted", "yes"],
    ]
    # The bot's scratch folders and every sandbox are gone; the forges stay for inspection.
    data = tmp_path / "data"
    for name in names:
        assert (data / name / "forge").is_dir()
        assert not (data / name / "work").exists() and not (data / name / "mirrors").exists()
    assert engine.containers.list(all=True, filters={"label": "forgebot.eval=1"}) == []


@pytest.mark.docker
@pytest.mark.slow
def test_a_replay_that_does_nothing_or_the_wrong_thing_is_unresolved(
    tmp_path: Path, engine: docker.DockerClient
) -> None:
    suite = tmp_path / "suite"
    noop = _task_folder(tmp_path, "py-page-count")
    (noop / "replay.yml").write_text(yaml.safe_dump(
        ["I looked at paginate.py and I do not think anything needs to change."]))
    # A change with a test of its own that fails before and passes after, but that fixes
    # something else: the job submits a pull request, and only the hidden tests tell.
    wrong = suite / "py-unique-emails"
    shutil.copytree(SUITE / "py-unique-emails", wrong)
    (wrong / "replay.yml").write_text(yaml.safe_dump([
        "mailing.py\n<<<<<<< SEARCH\n        key = cleaned\n=======\n"
        "        key = cleaned.rstrip('.')\n>>>>>>> REPLACE\n\n"
        "tests/test_trailing_dot.py\n<<<<<<< NEW\nfrom mailing import unique_emails\n\n\n"
        "def test_trailing_dot() -> None:\n"
        "    assert unique_emails(['a@x.org', 'a@x.org.']) == ['a@x.org']\n>>>>>>> NEW\n"]))
    result, report = _eval_json(tmp_path, suite)
    assert result.exit_code == 0, result.output
    assert (report["ran"], report["resolved"], report["rate"]) == (2, 0, 0.0)
    tasks = _by_name(report)
    assert tasks["py-page-count"]["outcome"] == "no_changes"
    assert tasks["py-page-count"]["resolved"] is False and tasks["py-page-count"]["pull"] is None
    assert tasks["py-unique-emails"]["outcome"] == "submitted"
    assert isinstance(tasks["py-unique-emails"]["pull"], int)
    assert tasks["py-unique-emails"]["resolved"] is False
    assert tasks["py-unique-emails"]["hidden_exit"] not in (None, 0)
    assert "test_case_differences_are_duplicates" in tasks["py-unique-emails"]["hidden_output"]
    assert "resolved 0/2 (0.0%)" in result.output


@pytest.mark.docker
@pytest.mark.slow
def test_hidden_tests_that_pass_on_the_base_make_the_task_invalid(
    tmp_path: Path, engine: docker.DockerClient
) -> None:
    folder = _task_folder(tmp_path)
    shutil.rmtree(folder / "hidden_tests")
    (folder / "hidden_tests" / "tests").mkdir(parents=True)
    (folder / "hidden_tests" / "tests" / "test_hidden.py").write_text(
        "from paginate import page_count\n\n\n"
        "def test_already_true() -> None:\n    assert page_count(20, 10) == 2\n")
    result, report = _eval_json(tmp_path, folder.parent)
    assert result.exit_code == 1, result.output
    assert report["invalid"] == ["py-page-count"] and report["ran"] == 0
    [task] = report["tasks"]
    assert task["status"] == "invalid" and task["base_exit"] == 0
    assert "hidden tests pass on the base commit" in task["detail"]
    assert (task["iterations"], task["pull"], task["outcome"]) == (0, None, None)
    assert "not counted: 1 invalid" in result.output
    # The bot never ran: no issue was filed on the task's repository.
    issues = tmp_path / "data" / "py-page-count" / "forge" / "eval" / "py-page-count" / "issues"
    assert list(issues.iterdir()) == []
