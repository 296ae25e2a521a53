"""Policy files, the repository merge, diff parsing and the policy gate, on plain values."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import PolicyError
from bot.policy.changeset import ChangeSet, DiffError, FileStatus, Line, parse_diff
from bot.policy.evaluate import Violation, evaluate, is_test_path, normalise_path
from bot.policy.load import ci_for_pull, load_policy, merge_repo_policy
from bot.policy.model import CI, Policy, schema_json

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POLICY = ROOT / "policies" / "default.yml"


# --- diff builders ------------------------------------------------------------------------


def added(path: str, lines: list[str], mode: str = "100644") -> str:
    body = "".join(f"+{line}\n" for line in lines)
    return (
        f"diff --git a/{path} b/{path}\nnew file mode {mode}\nindex 0000000..1111111\n"
        f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n{body}"
    )


def deleted(path: str, lines: list[str]) -> str:
    body = "".join(f"-{line}\n" for line in lines)
    return (
        f"diff --git a/{path} b/{path}\ndeleted file mode 100644\nindex 1111111..0000000\n"
        f"--- a/{path}\n+++ /dev/null\n@@ -1,{len(lines)} +0,0 @@\n{body}"
    )


def modified(path: str, removed: list[str], new: list[str], context: str = "x = 1") -> str:
    body = f" {context}\n" + "".join(f"-{line}\n" for line in removed)
    body += "".join(f"+{line}\n" for line in new)
    return (
        f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n"
        f"+++ b/{path}\n@@ -1,{1 + len(removed)} +1,{1 + len(new)} @@\n{body}"
    )


def renamed(old: str, new: str) -> str:
    return (
        f"diff --git a/{old} b/{new}\nsimilarity index 100%\nrename from {old}\nrename to {new}\n"
    )


def symlink(path: str, target: str) -> str:
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 120000\nindex 0000000..3333333\n"
        f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+{target}\n\\ No newline at end of file\n"
    )


def quoted_added(escaped: str) -> str:
    """A new file whose name git had to quote; ``escaped`` uses git's C escapes."""
    return (
        f'diff --git "a/{escaped}" "b/{escaped}"\nnew file mode 100644\n'
        f'--- /dev/null\n+++ "b/{escaped}"\n@@ -0,0 +1 @@\n+x\n'
    )


def rules(violations: list[Violation]) -> set[str]:
    return {violation.rule for violation in violations}


def write(tmp_path: Path, text: str, name: str = "policy.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- loading ------------------------------------------------------------------------------


def test_default_file_loads_and_equals_the_model_defaults() -> None:
    assert load_policy(DEFAULT_POLICY) == Policy()


def test_default_policy_values() -> None:
    policy = Policy()
    assert policy.paths.deny == (
        ".github/**",
        ".forgebot.yml",
        ".forgebot/**",
        "policies/**",
        ".git/**",
    )
    assert policy.paths.allow == ()
    assert policy.limits.max_files_changed == 20
    assert policy.limits.max_lines_changed == 500
    assert policy.trigger.labels == ("forgebot",)
    assert policy.publish.branch_prefix == "forgebot/"
    assert policy.checks.forbid_test_deletion is True


def test_committed_schema_matches_the_model() -> None:
    committed = (ROOT / "policies" / "schema.json").read_text()
    assert committed == schema_json(), (
        "regenerate: python -m bot.policy.model > policies/schema.json"
    )


def test_typo_names_the_file_and_the_dotted_key(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nlimits:\n  max_files_chaged: 5\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: limits.max_files_chaged: unknown key")
    assert "did you mean max_files_changed?" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("limits:\n  max_files_changed: twenty\n", "limits.max_files_changed: expected an integer"),
        ('limits:\n  max_files_changed: "20"\n', "limits.max_files_changed: expected an integer"),
        ("limits:\n  max_files_changed: true\n", "limits.max_files_changed: expected an integer"),
        ("limits:\n  max_files_changed: 0\n", "limits.max_files_changed: must be at least 1"),
        ("checks:\n  secret_scan: 'no'\n", "checks.secret_scan: expected true or false"),
        ("trigger:\n  labels: forgebot\n", "trigger.labels: expected a list"),
        ("paths:\n  deny: [ok/**, 3]\n", "paths.deny[1]: expected a string"),
        ("paths:\n  deny: ['../up/**']\n", "paths.deny[0]: glob '../up/**' may not contain"),
        ("paths:\n  deny: ['/abs/**']\n", "paths.deny[0]: glob '/abs/**' must be relative"),
        ("publish:\n  branch_prefix: main\n", "publish.branch_prefix: branch prefix 'main'"),
        ("limits: 5\n", "limits: expected a mapping"),
        ("version: 2\n", "version: Input should be 1"),
        ("extra: 1\n", "extra: unknown key"),
    ],
)
def test_wrong_values_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert f"{path}: {expected}" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("limits: [\n", "invalid YAML: line 2"),
        ("limits:\n  a: 1\n b: 2\n", "invalid YAML"),
        ("limits: {}\nlimits: {}\n", "duplicate key 'limits'"),
        ("a: &x [1]\nb: *x\n", "aliases are not allowed"),
        ("on: 1\n", "key True is not a string"),
        ("- a\n- b\n", "expected a mapping of policy keys, found a list"),
        ("just a string\n", "expected a mapping of policy keys, found a string"),
        ("", "found an empty file"),
    ],
)
def test_bad_documents(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert expected in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "nope.yml")


def test_every_problem_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "limits:\n  max_iterations: 0\n  job_timeout: 5\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert "limits.max_iterations" in message
    assert "limits.job_timeout: unknown key" in message


def test_policy_is_frozen() -> None:
    with pytest.raises(ValueError):
        Policy().limits.max_files_changed = 1000  # type: ignore[misc]


# --- merging a repository override --------------------------------------------------------


def test_empty_override_changes_nothing() -> None:
    result = merge_repo_policy(Policy(), {})
    assert result.policy == Policy()
    assert result.ignored == []


def test_smaller_limits_win_and_larger_are_ignored() -> None:
    override = {"limits": {"max_files_changed": 5, "max_lines_changed": 9000}}
    policy, ignored = merge_repo_policy(Policy(), override)
    assert policy.limits.max_files_changed == 5
    assert policy.limits.max_lines_changed == 500
    assert [item.key for item in ignored] == ["limits.max_lines_changed"]
    assert "9000" in str(ignored[0])


def test_deny_globs_are_unioned() -> None:
    policy, ignored = merge_repo_policy(Policy(), {"paths": {"deny": ["docs/**"]}})
    assert policy.paths.deny == (*Policy().paths.deny, "docs/**")
    assert ignored == []


def test_allow_narrows_from_everything() -> None:
    policy, ignored = merge_repo_policy(Policy(), {"paths": {"allow": ["src/**"]}})
    assert policy.paths.allow == ("src/**",)
    assert ignored == []


def test_allow_keeps_only_provably_narrower_globs() -> None:
    base = Policy.model_validate({"paths": {"allow": ["src/**", "README.md"]}})
    wanted = ["src/app/*.py", "README.md", "docs/**", "src/**/x", "*.md"]
    policy, ignored = merge_repo_policy(base, {"paths": {"allow": wanted}})
    assert policy.paths.allow == ("src/app/*.py", "README.md", "src/**/x")
    assert [item.key for item in ignored] == ["paths.allow"]
    assert "docs/**" in ignored[0].reason and "*.md" in ignored[0].reason


def test_allow_cannot_be_widened_to_everything() -> None:
    base = Policy.model_validate({"paths": {"allow": ["src/**"]}})
    policy, ignored = merge_repo_policy(base, {"paths": {"allow": []}})
    assert policy.paths.allow == ("src/**",)
    assert [item.key for item in ignored] == ["paths.allow"]


def test_allow_wholly_outside_keeps_the_base() -> None:
    base = Policy.model_validate({"paths": {"allow": ["src/**"]}})
    policy, ignored = merge_repo_policy(base, {"paths": {"allow": ["docs/**"]}})
    assert policy.paths.allow == ("src/**",)
    assert ignored


def test_checks_can_only_be_switched_on() -> None:
    base = Policy.model_validate({"checks": {"tests_must_pass": False}})
    override = {"checks": {"tests_must_pass": True, "secret_scan": False}}
    policy, ignored = merge_repo_policy(base, override)
    assert policy.checks.tests_must_pass is True
    assert policy.checks.secret_scan is True
    assert [item.key for item in ignored] == ["checks.secret_scan"]


def test_publish_and_trigger_only_tighten() -> None:
    override = {
        "publish": {"draft_when_failed": False, "branch_prefix": "forgebot/web/"},
        "trigger": {"labels": ["forgebot", "anything"]},
    }
    policy, ignored = merge_repo_policy(Policy(), override)
    assert policy.publish.draft_when_failed is True
    assert policy.publish.branch_prefix == "forgebot/web/"
    assert policy.trigger.labels == ("forgebot",)
    assert {item.key for item in ignored} == {"publish.draft_when_failed", "trigger.labels"}


def test_branch_prefix_outside_the_base_is_ignored() -> None:
    policy, ignored = merge_repo_policy(Policy(), {"publish": {"branch_prefix": "main/"}})
    assert policy.publish.branch_prefix == "forgebot/"
    assert [item.key for item in ignored] == ["publish.branch_prefix"]


def test_labels_wholly_outside_keep_the_base() -> None:
    policy, ignored = merge_repo_policy(Policy(), {"trigger": {"labels": ["ai"]}})
    assert policy.trigger.labels == ("forgebot",)
    assert [item.key for item in ignored] == ["trigger.labels"]


def test_override_typo_names_its_source() -> None:
    with pytest.raises(PolicyError) as caught:
        merge_repo_policy(Policy(), {"limits": {"max_file_changed": 3}})
    assert str(caught.value).startswith(".forgebot.yml: limits.max_file_changed: unknown key")


def test_override_wrong_type_is_an_error_not_ignored() -> None:
    with pytest.raises(PolicyError, match=r"repo\.yml: limits\.max_iterations: expected"):
        merge_repo_policy(Policy(), {"limits": {"max_iterations": "2"}}, source="repo.yml")


def test_loosening_everything_leaves_the_base() -> None:
    override = {
        "limits": {"max_files_changed": 10_000, "max_iterations": 50},
        "checks": {"tests_must_pass": False, "secret_scan": False, "forbid_test_deletion": False},
        "paths": {"deny": []},
    }
    policy, ignored = merge_repo_policy(Policy(), override)
    assert policy == Policy()
    assert len(ignored) == 5


# --- parsing diffs ------------------------------------------------------------------------

GIT_DIFF = (
    added("b.bin", []).split("--- ")[0].replace("index 0000000..1111111\n", "")
    + "index 0000000..8352675\nBinary files /dev/null and b/b.bin differ\n"
    + symlink("link", "/etc/passwd")
    + "diff --git a/src/a.py b/src/a.py\nold mode 100644\nnew mode 100755\n"
    "index ce01362..94954ab\n--- a/src/a.py\n+++ b/src/a.py\n@@ -1 +1,2 @@\n hello\n+world\n"
    + renamed("src/ren.py", "src/renamed.py")
    + 'diff --git "a/src/\\303\\274n.py" "b/src/\\303\\274n.py"\nnew file mode 100644\n'
    'index 0000000..587be6b\n--- /dev/null\n+++ "b/src/\\303\\274n.py"\n@@ -0,0 +1 @@\n+x\n'
    + deleted("tests/test_x.py", ["def test_a():", "    pass"])
)


def test_parse_git_diff() -> None:
    changes = parse_diff(GIT_DIFF)
    by_path = {change.path: change for change in changes.files}
    assert list(by_path) == [
        "b.bin",
        "link",
        "src/a.py",
        "src/renamed.py",
        "src/ün.py",
        "tests/test_x.py",
    ]
    assert by_path["b.bin"].is_binary and by_path["b.bin"].status is FileStatus.ADDED
    link = by_path["link"]
    assert link.is_symlink and link.added == (Line(1, "/etc/passwd"),)
    assert by_path["src/a.py"].status is FileStatus.MODIFIED
    assert by_path["src/a.py"].new_mode == "100755"
    assert by_path["src/a.py"].added == (Line(2, "world"),)
    rename = by_path["src/renamed.py"]
    assert rename.status is FileStatus.RENAMED and rename.old_path == "src/ren.py"
    assert rename.paths == ("src/ren.py", "src/renamed.py")
    gone = by_path["tests/test_x.py"]
    assert gone.status is FileStatus.DELETED and gone.removed_count == 2 and gone.new_mode is None
    assert changes.files_changed == 6
    assert (changes.lines_added, changes.lines_removed, changes.lines_changed) == (3, 2, 5)


def test_empty_diff_is_an_empty_change_set() -> None:
    assert parse_diff("") == ChangeSet()
    assert parse_diff("\n  \n") == ChangeSet()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello, world\n", "no file headers"),
        ("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\n", "Hunk is shorter than expected"),
        ("+++ b/x\n@@ -1 +1 @@\n-a\n+b\n", "Target without source"),
    ],
)
def test_malformed_diff(text: str, expected: str) -> None:
    with pytest.raises(DiffError, match=expected):
        parse_diff(text)


def test_diff_error_is_a_value_error() -> None:
    assert issubclass(DiffError, ValueError)


# --- evaluation ---------------------------------------------------------------------------

TEST_FILE = ["import pytest", "", "def test_one():", "    assert True"]

CASES = [
    ("ordinary change", modified("src/app.py", ["a = 1"], ["a = 2"]), set()),
    ("new file", added("src/new.py", ["print(1)"]), set()),
    ("workflow", added(".github/workflows/ci.yml", ["on: push"]), {"paths.deny"}),
    ("codeowners", modified(".github/CODEOWNERS", [], ["* @me"]), {"paths.deny"}),
    ("policy dir", added("policies/x.yml", ["version: 1"]), {"paths.deny"}),
    ("repo policy", modified(".forgebot.yml", [], ["limits: {}"]), {"paths.deny"}),
    ("repo policy dir", added(".forgebot/prompt.md", ["hi"]), {"paths.deny"}),
    ("nested .forgebot.yml is not the repo's", added("sub/.forgebot.yml", ["x"]), set()),
    ("rename away from a denied path", renamed(".github/ci.yml", "ci.yml"), {"paths.deny"}),
    ("delete a denied file", deleted(".github/workflows/ci.yml", ["on: push"]), {"paths.deny"}),
    ("parent dir", added("../etc/passwd", ["root::0:0"]), {"paths.outside_repo"}),
    ("sneaky parent dir", added("src/../../x", ["x"]), {"paths.outside_repo"}),
    ("absolute", added("/etc/passwd", ["root::0:0"]), {"paths.outside_repo"}),
    ("backslash", added("src\\..\\x.py", ["x"]), {"paths.outside_repo"}),
    ("drive letter", added("C:/x.py", ["x"]), {"paths.outside_repo"}),
    ("git dir", added(".git/hooks/pre-commit", ["#!/bin/sh"]), {"paths.git_dir"}),
    ("nested git dir", added("vendor/x/.git/config", ["[core]"]), {"paths.git_dir"}),
    ("git dir any case", added(".GIT/config", ["[core]"]), {"paths.git_dir"}),
    ("git dir with a trailing dot", added(".git./config", ["[core]"]), {"paths.git_dir"}),
    ("gitignore is fine", added(".gitignore", ["*.pyc"]), set()),
    ("symlink to /etc/passwd", symlink("link", "/etc/passwd"), {"paths.symlink"}),
    ("symlink escaping", symlink("src/link", "../../outside"), {"paths.symlink"}),
    ("symlink into .git", symlink("docs/cfg", "../.git/config"), {"paths.symlink"}),
    ("symlink to a denied path", symlink("docs/ci", "../.github/ci.yml"), {"paths.symlink"}),
    ("symlink inside the repo", symlink("docs/readme", "../README.md"), set()),
    (
        "file becomes a symlink",
        "diff --git a/x b/x\nold mode 100644\nnew mode 120000\n",
        {"paths.symlink"},
    ),
    (
        "submodule",
        "diff --git a/lib b/lib\nnew file mode 160000\nindex 0000000..abc1234\n--- /dev/null\n"
        "+++ b/lib\n@@ -0,0 +1 @@\n+Subproject commit abc1234\n",
        {"paths.submodule"},
    ),
    ("control character", quoted_added("x\\ny"), {"paths.invalid"}),
    ("quoted unicode name", quoted_added("caf\\303\\251.py"), set()),
    (
        "too many files",
        "".join(added(f"src/f{n}.py", ["x"]) for n in range(21)),
        {"limits.max_files_changed"},
    ),
    ("files at the limit", "".join(added(f"src/f{n}.py", ["x"]) for n in range(20)), set()),
    (
        "too many lines",
        added("src/big.py", [f"x = {n}" for n in range(501)]),
        {"limits.max_lines_changed"},
    ),
    ("lines at the limit", added("src/big.py", [f"x = {n}" for n in range(500)]), set()),
    (
        "lines count removed ones too",
        modified("src/big.py", [f"y = {n}" for n in range(300)], [f"x = {n}" for n in range(201)]),
        {"limits.max_lines_changed"},
    ),
    ("deleted test file", deleted("tests/test_api.py", TEST_FILE), {"checks.forbid_test_deletion"}),
    (
        "deleted go test",
        deleted("pkg/api_test.go", ["package api"]),
        {"checks.forbid_test_deletion"},
    ),
    ("deleted js test", deleted("web/app.test.js", ["it('x')"]), {"checks.forbid_test_deletion"}),
    (
        "deleted test helper",
        deleted("tests/conftest.py", ["import x"]),
        {"checks.forbid_test_deletion"},
    ),
    (
        "test renamed away",
        renamed("tests/test_a.py", "attic/a.py"),
        {"checks.forbid_test_deletion"},
    ),
    ("test renamed to a test", renamed("tests/test_a.py", "tests/test_b.py"), set()),
    (
        "removed test function",
        modified("tests/test_api.py", ["def test_one():", "    assert True"], []),
        {"checks.forbid_test_deletion"},
    ),
    (
        "removed async test function",
        modified("src/thing_test.py", ["async def test_io():"], []),
        {"checks.forbid_test_deletion"},
    ),
    (
        "test function rewritten in place",
        modified("tests/test_api.py", ["def test_one():"], ["def test_one(tmp_path):"]),
        set(),
    ),
    ("removed helper in a test file", modified("tests/test_api.py", ["def helper():"], []), set()),
    ("def test_ outside tests", modified("src/app.py", ["def test_mode():"], []), set()),
    (
        "skip marker",
        modified("tests/test_api.py", [], ["@pytest.mark.skip(reason='flaky')"]),
        {"checks.forbid_test_skip"},
    ),
    (
        "skipif is allowed",
        modified("tests/test_api.py", [], ["@pytest.mark.skipif(WIN, reason='x')"]),
        set(),
    ),
    (
        "go skip",
        modified("pkg/api_test.go", [], ['\tt.Skip("later")']),
        {"checks.forbid_test_skip"},
    ),
    (
        "js skip",
        modified("web/app.test.js", [], ["it.skip('x', () => {})"]),
        {"checks.forbid_test_skip"},
    ),
    ("deleted non-test file", deleted("src/old.py", ["x = 1"]), set()),
]


@pytest.mark.parametrize(
    ("diff", "expected"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_evaluate_default_policy(diff: str, expected: set[str]) -> None:
    assert rules(evaluate(Policy(), parse_diff(diff))) == expected


def test_allow_list() -> None:
    policy = Policy.model_validate({"paths": {"allow": ["src/**", "README.md"]}})
    diff = added("src/a.py", ["x"]) + added("docs/a.md", ["x"]) + added("README.md", ["x"])
    violations = evaluate(policy, parse_diff(diff))
    assert [(v.rule, v.path) for v in violations] == [("paths.allow", "docs/a.md")]
    assert "src/**" in violations[0].message


def test_test_deletion_can_be_switched_off() -> None:
    policy = Policy.model_validate({"checks": {"forbid_test_deletion": False}})
    diff = deleted("tests/test_api.py", TEST_FILE) + modified(
        "tests/test_b.py", [], ["pytest.skip('x')"]
    )
    assert evaluate(policy, parse_diff(diff)) == []


def test_extra_deny_glob() -> None:
    policy = Policy.model_validate({"paths": {"deny": ["**/*.lock"]}})
    violations = evaluate(policy, parse_diff(added("web/yarn.lock", ["x"])))
    assert [v.rule for v in violations] == ["paths.deny"]


def test_messages_name_rule_file_line_and_glob() -> None:
    diff = (
        added(".github/workflows/ci.yml", ["on: push"])
        + modified("tests/test_api.py", ["def test_gone():"], [])
        + "".join(added(f"f{n}", ["x"]) for n in range(21))
    )
    by_rule = {v.rule: v for v in evaluate(Policy(), parse_diff(diff))}
    deny = by_rule["paths.deny"]
    assert (deny.path, deny.line) == (".github/workflows/ci.yml", None)
    assert (
        deny.message
        == "[paths.deny] .github/workflows/ci.yml: matches the denied glob '.github/**'"
    )
    gone = by_rule["checks.forbid_test_deletion"]
    assert (gone.path, gone.line) == ("tests/test_api.py", 2)
    assert gone.message.startswith("[checks.forbid_test_deletion] tests/test_api.py:2: ")
    assert "test_gone" in gone.message
    files = by_rule["limits.max_files_changed"]
    assert files.path is None and "23 files" in files.message and "20" in files.message


def test_symlink_message_names_target_and_line() -> None:
    (violation,) = evaluate(Policy(), parse_diff(symlink("link", "/etc/passwd")))
    assert violation.line == 1
    assert "'/etc/passwd'" in violation.message


def test_a_path_that_escapes_is_not_also_glob_matched() -> None:
    violations = evaluate(Policy(), parse_diff(added(".git/config", ["x"])))
    assert rules(violations) == {"paths.git_dir"}


def test_control_characters_are_quoted_in_messages() -> None:
    diff = quoted_added("evil\\n[paths.deny] forged")
    (violation,) = evaluate(Policy(), parse_diff(diff))
    assert violation.rule == "paths.invalid"
    assert violation.path == "evil\n[paths.deny] forged"
    assert "\n" not in violation.message


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("a/b.py", "a/b.py"),
        ("./a//b.py", "a/b.py"),
        ("a/./b", "a/b"),
        ("../x", None),
        ("a/../b", None),
        ("/etc/x", None),
        ("a\\b", None),
        ("C:x", None),
        ("", None),
        (".", None),
    ],
)
def test_normalise_path(path: str, normal: str | None) -> None:
    assert normalise_path(path) == normal


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tests/unit/helpers.py", True),
        ("pkg/test/Foo.java", True),
        ("web/__tests__/a.js", True),
        ("test_x.py", True),
        ("src/x_test.py", True),
        ("src/x_test.go", True),
        ("src/x.test.ts", True),
        ("src/x.spec.jsx", True),
        ("src/testing.py", False),
        ("src/contest.py", False),
        ("tests.py", False),
        ("test.js", True),
        ("lib/test.mjs", True),
        ("specs/dep_graph_spec.js", True),
        ("lib/graph_spec.js", True),
        ("testing/test_iniconfig.py", True),
        ("testing/conftest.py", True),
        ("lib/latest.js", False),
        ("lib/inspect.js", False),
    ],
)
def test_is_test_path(path: str, expected: bool) -> None:
    assert is_test_path(path) is expected


def test_min_permission_can_only_be_raised_by_a_repository():
    from bot.policy.load import merge_repo_policy
    from bot.policy.model import Policy

    base = Policy()
    raised = merge_repo_policy(base, {"trigger": {"min_permission": "maintain"}})
    assert raised.policy.trigger.min_permission == "maintain" and raised.ignored == []
    lowered = merge_repo_policy(base, {"trigger": {"min_permission": "read"}})
    assert lowered.policy.trigger.min_permission == "write"
    assert [i.key for i in lowered.ignored] == ["trigger.min_permission"]


@pytest.mark.parametrize(("recorded", "expected"), [
    ({"repair": "comment", "max_repairs": 1}, ("comment", 1)),  # tighter: followed
    ({"repair": "off"}, ("off", 2)),
    ({"repair": "fix", "max_repairs": 9}, ("fix", 2)),  # looser than the bot-wide: capped
    ({"repair": "explode"}, ("fix", 2)),  # unreadable record: the bot-wide section
    ("fix", ("fix", 2)),
    (None, ("fix", 2)),
])
def test_a_pull_requests_recorded_ci_section_never_loosens_the_bot_wide(
        recorded: object, expected: tuple[str, int]) -> None:
    ci = ci_for_pull(CI(repair="fix", max_repairs=2), recorded)
    assert (ci.repair, ci.max_repairs) == expected
