"""The Docker sandbox against a real engine and the real runner image.

Needs a running Docker engine and the image built by ``make runner-image``
(runners/python/build-offline.sh). Without them these tests fail, so CI cannot pass by
skipping; set FORGEBOT_ALLOW_SKIP=1 to skip them instead on a machine without Docker.
"""

from __future__ import annotations

import gc
import io
import os
import tarfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from bot.errors import SandboxError
from bot.sandbox.base import Limits, Result
from bot.sandbox.docker import (
    KILL_GRACE_S,
    OUTPUT_LIMIT,
    RUNNER_IMAGE,
    SESSION_LABEL,
    DockerSandbox,
    DockerSession,
    image_status,
    reap_orphans,
)
from bot.sandbox.tarball import tar_directory

pytestmark = pytest.mark.docker

TEST_LABEL = "forgebot.test"
LABELS = {TEST_LABEL: "test_sandbox_docker", "forgebot.job": "42"}
PYTEST = ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider"]


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    """A Docker client, once the engine answers and the runner image is current."""
    problem: str | None
    engine: docker.DockerClient | None = None
    try:
        engine = docker.from_env()
        engine.ping()
        problem = image_status(engine, RUNNER_IMAGE)
    except Exception as exc:  # any failure to reach the engine means "no Docker here"
        problem = f"Docker engine unavailable: {exc}"
    if problem is not None:
        if engine is not None:
            engine.close()
        _collect_leaked_sockets()
        if os.environ.get("FORGEBOT_ALLOW_SKIP") == "1":
            pytest.skip(problem)
        pytest.fail(f"{problem} (set FORGEBOT_ALLOW_SKIP=1 to skip instead)", pytrace=False)
    assert engine is not None
    yield engine
    _remove_test_leftovers(engine)
    engine.close()


@pytest.fixture(scope="module")
def sandbox(client: docker.DockerClient) -> DockerSandbox:
    return DockerSandbox(client)


@pytest.fixture
def session(sandbox: DockerSandbox) -> Iterator[DockerSession]:
    with sandbox.start(RUNNER_IMAGE, Limits(pids=128, memory_mb=512), LABELS) as started:
        yield started


def _collect_leaked_sockets() -> None:
    # docker-py leaves the socket of a failed connection attempt to the garbage collector;
    # collect it now, quietly, rather than let its ResourceWarning fail an unrelated test.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def _remove_test_leftovers(client: docker.DockerClient) -> None:
    selector = {"label": f"{TEST_LABEL}=test_sandbox_docker"}
    for container in client.containers.list(all=True, filters=selector):
        container.remove(force=True)
    for volume in client.volumes.list(filters=selector):
        volume.remove(force=True)


def _tree(files: dict[str, str]) -> bytes:
    """An uncompressed tar of small text files owned by uid 1000."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(name)
            member.size, member.mode, member.uid, member.gid = len(data), 0o644, 1000, 1000
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def _sh(session: DockerSession, script: str, timeout_s: int = 30) -> Result:
    return session.run(["sh", "-c", script], timeout_s)


def _python(session: DockerSession, code: str, timeout_s: int = 30) -> Result:
    return session.run(["python3", "-c", code], timeout_s)


SUITE = {
    "tests/test_ok.py": (
        "import pytest\n\n"
        "def test_one():\n    assert 1 + 1 == 2\n\n"
        "def test_two():\n    assert 'a'.upper() == 'A'\n\n"
        "@pytest.mark.skip(reason='not today')\n"
        "def test_skipped():\n    pass\n"
    ),
}


def test_passing_run_reads_junit(session: DockerSession, tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    for name, text in SUITE.items():
        (tmp_path / name).write_text(text)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]\n")
    session.put(tar_directory(tmp_path))

    result = session.run([*PYTEST, "--junitxml=/sandbox/out/junit.xml"], 60)

    assert result.exit_code == 0, result.stdout + result.stderr
    assert not result.timed_out
    assert result.junit is not None
    assert (result.junit.passed, result.junit.failed, result.junit.skipped) == (2, 0, 1)
    assert result.junit.errors == 0
    assert result.junit.failures == ()
    listing = _sh(session, "ls -A")
    assert ".git" not in listing.stdout.split()


def test_failing_test_is_counted_and_described(session: DockerSession) -> None:
    session.put(
        _tree(
            {
                "test_calc.py": (
                    "def test_fine():\n    assert True\n\n"
                    "def test_broken():\n    assert 1 == 2, 'numbers differ'\n"
                )
            }
        )
    )

    # The report path comes from the environment, as a repository's test script would use it.
    result = _sh(session, 'python3 -m pytest -q -p no:cacheprovider --junitxml="$FORGEBOT_JUNIT"')

    assert result.exit_code == 1
    assert result.junit is not None
    assert (result.junit.passed, result.junit.failed) == (1, 1)
    assert result.junit.failures == ("test_calc::test_broken: AssertionError: numbers differ",)


def test_stale_report_is_not_read_again(session: DockerSession) -> None:
    session.put(_tree({"test_a.py": "def test_a():\n    pass\n"}))
    first = session.run([*PYTEST, "--junitxml=/sandbox/out/junit.xml"], 60)
    assert first.junit is not None

    second = session.run(["true"], 10)

    assert second.junit is None


def test_no_network(session: DockerSession) -> None:
    code = (
        "import socket\n"
        "for host in ('1.1.1.1', '172.17.0.1', '8.8.8.8'):\n"
        "    try:\n"
        "        socket.create_connection((host, 53), timeout=2)\n"
        "        print('CONNECTED', host)\n"
        "    except OSError as exc:\n"
        "        print('blocked', host, exc)\n"
        "try:\n"
        "    socket.getaddrinfo('deb.debian.org', 80)\n"
        "    print('RESOLVED')\n"
        "except OSError:\n"
        "    print('no dns')\n"
        "print(sorted(line.split(':')[0].strip()\n"
        "             for line in open('/proc/net/dev').read().splitlines()[2:]))\n"
    )

    result = _python(session, code)

    assert result.exit_code == 0, result.stderr
    assert "CONNECTED" not in result.stdout
    assert "RESOLVED" not in result.stdout
    assert result.stdout.count("blocked") == 3
    assert result.stdout.strip().endswith("['lo']")


def test_root_filesystem_is_read_only(session: DockerSession) -> None:
    result = _sh(
        session,
        "for path in /etc/forgebot /usr/bin/forgebot /forgebot /home/runner/x; do"
        "  touch $path 2>/dev/null && echo WROTE $path; done;"
        " touch /sandbox/repo/ok /tmp/ok && echo workspace-writable",
    )

    assert "WROTE" not in result.stdout
    assert "workspace-writable" in result.stdout


def test_runs_as_uid_1000_without_capabilities(session: DockerSession) -> None:
    result = _sh(
        session, "id -u; id -g; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status"
    )

    lines = result.stdout.split("\n")
    assert lines[:2] == ["1000", "1000"]
    status = dict(line.split(":\t") for line in lines[2:] if line)
    assert int(status["CapEff"], 16) == 0
    assert int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"  # Docker's default seccomp filter is still on


def test_no_docker_socket_and_no_writable_host_mounts(session: DockerSession) -> None:
    result = _sh(session, "ls /var/run/docker.sock /run/docker.sock 2>&1; cat /proc/mounts")

    assert "No such file" in result.stdout
    mounts = [line.split() for line in result.stdout.splitlines() if line.count(" ") == 5]
    assert ["/sandbox", "tmpfs"] in [[point, kind] for _, point, kind, *_ in mounts]
    assert not [point for _, point, *_ in mounts if point.endswith(".sock")]
    # Disk-backed mounts are Docker's own (init, hosts, resolv.conf), all read-only.
    disk = [(point, options) for device, point, _, options, *_ in mounts if device.startswith("/")]
    assert disk
    assert all(options.split(",")[0] == "ro" for _, options in disk), disk


def test_environment_has_nothing_from_the_host(
    sandbox: DockerSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGEBOT_TEST_SECRET", "hunter2-do-not-leak")
    with sandbox.start(RUNNER_IMAGE, Limits(), LABELS) as session:
        result = session.run(["env"], 10)

    variables = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert "FORGEBOT_TEST_SECRET" not in variables
    assert "hunter2-do-not-leak" not in result.stdout
    assert variables["HOME"] == "/tmp"
    assert variables["FORGEBOT_JUNIT"] == "/sandbox/out/junit.xml"
    assert set(variables) <= {
        "HOME",
        "PATH",
        "LANG",
        "PYTHONDONTWRITEBYTECODE",
        "FORGEBOT_JUNIT",
        "HOSTNAME",
        "PWD",
        "SHLVL",
    }


def test_timeout_kills_the_command(session: DockerSession) -> None:
    started = time.monotonic()
    result = session.run(["sleep", "100"], 2)
    elapsed = time.monotonic() - started

    assert result.timed_out
    assert result.exit_code == 137
    assert elapsed < 6
    # Killed inside by `timeout`: the session lives on.
    assert session.run(["true"], 5).exit_code == 0


def test_host_timer_kills_what_escapes_the_inner_timeout(session: DockerSession) -> None:
    # The command stops its own `timeout` (same uid), so only the host-side timer can end
    # it: by killing the container, which ends the session too.
    started = time.monotonic()
    result = _sh(session, "kill -STOP $PPID; sleep 100", timeout_s=1)
    elapsed = time.monotonic() - started

    assert result.timed_out
    assert result.exit_code == 137
    assert 1 + KILL_GRACE_S <= elapsed < 1 + KILL_GRACE_S + 5
    with pytest.raises(SandboxError, match="timeout"):
        session.run(["true"], 5)


def test_memory_hog_is_killed_not_timed_out(sandbox: DockerSandbox) -> None:
    with sandbox.start(RUNNER_IMAGE, Limits(memory_mb=128), LABELS) as session:
        result = _python(session, "b = bytearray(1024 * 1024 * 1024)\nprint(len(b))")

    assert result.exit_code == 137
    assert not result.timed_out


def test_process_count_is_bounded(sandbox: DockerSandbox) -> None:
    code = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        "            os.close(1); os.close(2); time.sleep(3); os._exit(0)\n"
        "        n += 1\n"
        "except OSError:\n"
        "    print('stopped at', n)\n"
    )
    with sandbox.start(RUNNER_IMAGE, Limits(pids=32), LABELS) as session:
        result = _python(session, code)

    assert result.exit_code == 0, result.stderr
    forked = int(result.stdout.split()[-1])
    assert 0 < forked < 32


def test_fork_bomb_is_contained(sandbox: DockerSandbox, client: docker.DockerClient) -> None:
    started = time.monotonic()
    with sandbox.start(RUNNER_IMAGE, Limits(pids=64), LABELS) as session:
        try:
            result = session.run(["bash", "-c", ":(){ :|:& };:"], 5)
            assert result.exit_code is not None
            stats = client.api.stats(session.name, stream=False, one_shot=True)
            assert stats["pids_stats"]["current"] <= 64
            # The session is either clean enough to use or says clearly that it is not.
            try:
                session.run(["true"], 5)
            except SandboxError as exc:
                assert "pids" in str(exc) or "process" in str(exc)
        except SandboxError as exc:
            assert "process" in str(exc) or "pids" in str(exc)
        name = session.name
    assert time.monotonic() - started < 30
    assert not client.containers.list(all=True, filters={"name": name})


def test_huge_output_is_truncated(session: DockerSession) -> None:
    result = _sh(session, "head -c 20000000 /dev/zero | tr '\\0' a; head -c 5000000 /dev/zero >&2")

    assert result.exit_code == 0
    for text in (result.stdout, result.stderr):
        assert len(text) < OUTPUT_LIMIT + 200
        assert "output truncated" in text
    assert result.stdout.startswith("aaaa") and result.stdout.endswith("aaaa")


def test_output_is_decoded_with_replacement(session: DockerSession) -> None:
    result = _sh(session, "printf 'ok \\377\\376 done'")

    assert result.stdout == "ok \ufffd\ufffd done"


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>\n'
    '<testsuite><testcase classname="x" name="&lol4;"/></testsuite>\n'
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
    '<testsuite><testcase classname="x" name="&x;"/></testsuite>\n'
)

VALID_REPORT = '<testsuite><testcase classname="a" name="b"/></testsuite>'

MALICIOUS_REPORTS = {
    "billion-laughs": f"cat > \"$FORGEBOT_JUNIT\" <<'EOF'\n{BILLION_LAUGHS}EOF",
    "external-entity": f"cat > \"$FORGEBOT_JUNIT\" <<'EOF'\n{EXTERNAL_ENTITY}EOF",
    "garbage": 'head -c 4096 /dev/urandom > "$FORGEBOT_JUNIT"',
    "not-junit": 'echo "<html><body>hi</body></html>" > "$FORGEBOT_JUNIT"',
    "huge": (
        "{ echo '<testsuite>'; yes '<testcase classname=\"a\" name=\"b\"/>' | head -c 5000000;"
        " echo '</testsuite>'; } > \"$FORGEBOT_JUNIT\""
    ),
    "symlink": 'ln -s /etc/passwd "$FORGEBOT_JUNIT"',
    "symlink-to-report": (
        f"printf '{VALID_REPORT}' > /tmp/report.xml && ln -s /tmp/report.xml \"$FORGEBOT_JUNIT\""
    ),
    "directory": (
        f'mkdir "$FORGEBOT_JUNIT" && printf \'{VALID_REPORT}\' > "$FORGEBOT_JUNIT/junit.xml"'
    ),
    "deep-nesting": (
        "python3 -c \"import os; open(os.environ['FORGEBOT_JUNIT'], 'w')"
        ".write('<a>' * 200000 + '</a>' * 200000)\""
    ),
}


@pytest.mark.parametrize("script", MALICIOUS_REPORTS.values(), ids=MALICIOUS_REPORTS.keys())
def test_malicious_report_gives_no_counts(session: DockerSession, script: str) -> None:
    result = _sh(session, script)

    assert result.exit_code == 0, result.stderr
    assert result.junit is None


def test_report_counts_come_from_test_cases(session: DockerSession) -> None:
    # A report that claims totals it does not contain: only the <testcase> elements count.
    report = (
        '<testsuites><testsuite tests="9999" failures="0" errors="0" skipped="0">'
        '<testcase classname="t" name="a"/>'
        '<testcase classname="t" name="b"><failure message="boom&#10;second line"/></testcase>'
        '<testcase classname="t" name="c"><error>setup&#155;31m broke</error></testcase>'
        "</testsuite></testsuites>"
    )
    result = _sh(session, f"cat > \"$FORGEBOT_JUNIT\" <<'EOF'\n{report}\nEOF")

    assert result.junit is not None
    assert (result.junit.passed, result.junit.failed, result.junit.errors) == (1, 1, 1)
    assert result.junit.failures == ("t::b: boom", "t::c: setup 31m broke")


def test_put_replaces_the_previous_content(session: DockerSession) -> None:
    session.put(_tree({"old.txt": "old", "keep/old.txt": "old"}))
    _sh(session, "mkdir locked && touch locked/file && chmod 500 locked")

    session.put(_tree({"new.txt": "new"}))

    result = _sh(session, "find . | sort; cat new.txt")
    assert result.stdout.split() == [".", "./new.txt", "new"]


def test_put_too_large_for_the_workspace_fails(sandbox: DockerSandbox) -> None:
    with (
        sandbox.start(RUNNER_IMAGE, Limits(workspace_mb=1), LABELS) as session,
        pytest.raises(SandboxError, match="does not fit") as raised,
    ):
        session.put(_tree({"big.txt": "x" * 3_000_000}))

    assert raised.value.retryable is False


def test_put_normalises_owners_modes_and_missing_folders(session: DockerSession) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, uid, mode in [
            ("deep/er/root-owned.txt", 0, 0o4755),  # parents missing, root, setuid
            ("/etc/escape.txt", 1000, 0o644),
            ("../escape.txt", 1000, 0o644),
        ]:
            member = tarfile.TarInfo(name)
            member.size, member.uid, member.gid, member.mode = 2, uid, uid, mode
            tar.addfile(member, io.BytesIO(b"hi"))
        fifo = tarfile.TarInfo("fifo")
        fifo.type = tarfile.FIFOTYPE
        tar.addfile(fifo)

    session.put(buffer.getvalue())

    listing = _sh(session, "find /sandbox -exec stat -c '%u %a %n' {} + | sort -k3")
    assert listing.stdout.splitlines() == [
        "1000 755 /sandbox",
        "1000 755 /sandbox/out",
        "1000 755 /sandbox/repo",
        "1000 755 /sandbox/repo/deep",
        "1000 755 /sandbox/repo/deep/er",
        "1000 755 /sandbox/repo/deep/er/root-owned.txt",
    ]
    session.put(_tree({"again.txt": "x"}))  # and it can all be cleared again
    assert _sh(session, "ls").stdout.split() == ["again.txt"]


def test_put_rejects_what_is_not_a_tar(session: DockerSession) -> None:
    session.put(_tree({"kept.txt": "x"}))

    with pytest.raises(SandboxError, match="not a valid tar"):
        session.put(b"this is not a tar archive" * 100)

    assert _sh(session, "ls").stdout.split() == ["kept.txt"]


def test_tar_directory_keeps_symlinks_as_links(session: DockerSession, tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("data")
    (tmp_path / "link").symlink_to("/etc/hostname")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "dirlink").symlink_to(tmp_path)

    session.put(tar_directory(tmp_path))

    result = _sh(session, "stat -c '%U %F %N' data.txt link sub/dirlink")
    assert result.stdout.splitlines() == [
        "runner regular file 'data.txt'",
        "runner symbolic link 'link' -> '/etc/hostname'",
        f"runner symbolic link 'sub/dirlink' -> '{tmp_path}'",
    ]


def test_close_leaves_nothing_behind(sandbox: DockerSandbox, client: docker.DockerClient) -> None:
    session = sandbox.start(RUNNER_IMAGE, Limits(), LABELS)
    name = session.name
    assert client.containers.get(name).labels[SESSION_LABEL] == "1"
    assert client.volumes.get(name).attrs["Labels"]["forgebot.job"] == "42"

    session.close()
    session.close()  # twice is fine

    assert not client.containers.list(all=True, filters={"name": name})
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get(name)
    with pytest.raises(SandboxError, match="closed"):
        session.run(["true"], 5)


def test_missing_image_is_a_clear_error_and_leaves_nothing(
    sandbox: DockerSandbox, client: docker.DockerClient
) -> None:
    before = {volume.name for volume in client.volumes.list()}

    with pytest.raises(SandboxError, match="runner-image") as raised:
        sandbox.start("forgebot-runner-python:does-not-exist", Limits(), LABELS)

    assert raised.value.retryable is False
    assert {volume.name for volume in client.volumes.list()} == before
    assert image_status(client, "forgebot-runner-python:does-not-exist") is not None
    assert image_status(client, RUNNER_IMAGE) is None


def test_reap_orphans_removes_old_sessions_only(
    sandbox: DockerSandbox, client: docker.DockerClient
) -> None:
    # Narrowed by a label of this test alone: other sessions on the engine are not touched.
    mine = {**LABELS, "forgebot.reap": "test"}
    orphan = sandbox.start(RUNNER_IMAGE, Limits(), mine)
    try:
        assert reap_orphans(client, older_than_s=3600, labels=mine) == 0
        assert client.containers.get(orphan.name)
        time.sleep(1.1)  # creation times have a resolution of one second

        removed = reap_orphans(client, older_than_s=0, labels=mine)

        assert removed == 2  # the container and its volume
        assert not client.containers.list(all=True, filters={"name": orphan.name})
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get(orphan.name)
    finally:
        orphan.close()
