"""The egress allow-list, squid's configuration and access log, and the setup phase's
reporting: tables, no Docker (the proxy itself runs in tests/integration/test_egress_proxy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.errors import ConfigError, PolicyError
from bot.hostnames import check_host
from bot.pipeline.dependencies import (
    egress_hosts,
    explain_failure,
    installed_count,
    mirror_hosts,
    reused_line,
    setup_cache,
)
from bot.policy.load import merge_repo_policy
from bot.policy.model import Policy
from bot.sandbox.base import Result, SetupResult
from bot.sandbox.egress import (
    EgressRecord,
    allowed_hosts,
    describe,
    parse_access_log,
    squid_config,
)
from bot.sandbox.options import load_ca_bundle
from bot.sandbox.toolchain import Toolchain


@pytest.mark.parametrize("host", ["pypi.org", ".example.com", "Files.PythonHosted.org", "a-b.c"])
def test_host_names_are_taken(host: str) -> None:
    assert check_host(host) == host.lower()


@pytest.mark.parametrize(
    "bad",
    ["https://pypi.org", "pypi.org:443", "*.example.com", "pypi.org/simple", "", "a..b",
     "10.0.0.0/8", "-x.org", "ex ample.org", "a" * 300],
)
def test_anything_but_a_host_name_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a host name"):
        check_host(bad)


def test_registries_expand_to_the_toolchains_public_registries() -> None:
    assert allowed_hosts(["registries"], "python") == ("pypi.org", "files.pythonhosted.org")
    assert allowed_hosts(["registries", "npm.example.com"], "node") == (
        "registry.npmjs.org", "registry.yarnpkg.com", "npm.example.com")
    assert allowed_hosts([], "go", mirrors=["goproxy.internal"]) == ("goproxy.internal",)


def test_policy_typos_in_the_allow_list_are_errors() -> None:
    with pytest.raises(ValidationError, match="not a host name"):
        Policy.model_validate({"sandbox": {"setup_egress": ["https://pypi.org/simple"]}})


NARROWING = {
    "a registry host under registries": (["registries"], ["pypi.org"], ["pypi.org"], []),
    "a host the bot-wide list lacks": (["registries"], ["evil.example"], [],
                                       ["sandbox.setup_egress.evil.example"]),
    "a subdomain of a bot-wide domain": ([".corp.example"], ["pypi.corp.example"],
                                         ["pypi.corp.example"], []),
    "a whole domain around a bot-wide host": (["pypi.corp.example"], [".corp.example"], [],
                                              ["sandbox.setup_egress..corp.example"]),
    "registries when the bot-wide list names hosts": (["pypi.org"], ["registries"], [],
                                                       ["sandbox.setup_egress.registries"]),
}


@pytest.mark.parametrize(("base", "wanted", "kept", "ignored"), NARROWING.values(),
                         ids=NARROWING.keys())
def test_a_repository_may_only_narrow_the_allow_list(
    base: list[str], wanted: list[str], kept: list[str], ignored: list[str]
) -> None:
    bot_wide = Policy.model_validate({"sandbox": {"setup_egress": base}})

    merged = merge_repo_policy(bot_wide, {"sandbox": {"setup_egress": wanted}})

    assert list(merged.policy.sandbox.setup_egress) == kept
    assert [i.key for i in merged.ignored] == ignored


def test_a_repository_cannot_turn_network_on_or_loosen_the_dependency_check() -> None:
    bot_wide = Policy.model_validate({"sandbox": {"setup_network": False},
                                      "checks": {"new_dependencies": "block"}})

    merged = merge_repo_policy(bot_wide, {"sandbox": {"setup_network": True},
                                          "checks": {"new_dependencies": "allow"}})

    assert merged.policy.sandbox.setup_network is False
    assert merged.policy.checks.new_dependencies == "block"
    assert {i.key for i in merged.ignored} == {"sandbox.setup_network", "checks.new_dependencies"}


def test_a_typo_in_the_dependency_check_is_an_error() -> None:
    with pytest.raises(PolicyError, match="new_dependencies"):
        merge_repo_policy(Policy(), {"checks": {"new_dependencies": "drafts"}})


def test_no_network_means_no_egress_at_all() -> None:
    off = Policy.model_validate({"sandbox": {"setup_network": False}})

    assert egress_hosts(off, "python", {}) is None
    assert egress_hosts(Policy(), "python", {"PIP_INDEX_URL": "https://mirror.corp/simple"}) == (
        "pypi.org", "files.pythonhosted.org", "mirror.corp")


def test_mirror_hosts_from_the_operators_setup_env() -> None:
    env = {"GOPROXY": "https://goproxy.corp,direct", "npm_config_registry": "http://npm.corp:4873/"}

    assert mirror_hosts(env) == ["goproxy.corp", "npm.corp"]


def test_squid_allows_only_the_listed_hosts(tmp_path: Path) -> None:
    config = squid_config(["pypi.org", ".corp.example"], "172.30.0.1", 3130, tmp_path)

    lines = config.splitlines()
    assert "http_port 172.30.0.1:3130" in lines
    assert "acl allowed dstdomain pypi.org .corp.example" in lines
    assert lines[-1] == "http_access deny all"
    assert "http_access deny CONNECT !ssl_port" in lines
    assert "cache deny all" in lines


def test_squid_with_an_empty_list_allows_nothing(tmp_path: Path) -> None:
    config = squid_config([], "127.0.0.1", 3130, tmp_path)

    assert "http_access allow" not in config


ACCESS_LOG = """\
1733600000 172.30.0.2 CONNECT pypi.org:443 200 14976 TCP_TUNNEL
1733600001 172.30.0.2 CONNECT evil.example:443 403 3378 TCP_DENIED
1733600002 172.30.0.2 GET http://neverssl.com/x?token=abc 403 3380 TCP_DENIED
1733600003 172.30.0.2 - error:transaction-end-before-headers 0 0 NONE_NONE
not a log line at all
1733600004 172.30.0.2 CONNECT [2001:db8::1]:443 403 10 TCP_DENIED
"""


def test_the_access_log_gives_host_bytes_and_verdict_never_a_path() -> None:
    records = parse_access_log(ACCESS_LOG)

    assert [(r.host, r.status, r.allowed) for r in records] == [
        ("pypi.org", 200, True),
        ("evil.example", 403, False),
        ("neverssl.com", 403, False),
        ("2001:db8::1", 403, False),
    ]
    assert "token" not in repr(records)
    assert records[0].as_event() == {"host": "pypi.org", "method": "CONNECT", "status": 200,
                                     "bytes": 14976, "verdict": "allowed"}


def test_the_egress_line_names_refused_hosts() -> None:
    line = describe(parse_access_log(ACCESS_LOG))

    assert line.startswith("1 requests allowed (14 KB; pypi.org)")
    assert line.endswith("refused: evil.example, neverssl.com, 2001:db8::1")


def _failed(out: str, egress: tuple[EgressRecord, ...] = (), **kw: object) -> SetupResult:
    result = Result(kw.pop("exit_code", 1), out, "", bool(kw.pop("timed_out", False)))  # type: ignore[arg-type]
    return SetupResult(None, result, egress=egress)


FAILURES = {
    "a refused host": (
        _failed("forgebot: step 1/2: install the project\nERROR: 403 Forbidden",
                egress=(EgressRecord("evil.example", "CONNECT", 403, 0, False),)),
        ("pypi.org",),
        ["at step “install the project”", "refused evil.example",
         "add the host to `sandbox.setup_egress`"],
    ),
    "no network at all": (
        _failed("Failed to establish a new connection: [Errno 101] Network is unreachable"),
        None,
        ["`sandbox.setup_network` is off", "turn on `sandbox.setup_network`"],
    ),
    "a raw socket around the proxy": (
        _failed("socket.gaierror: [Errno -3] Temporary failure in name resolution"),
        ("pypi.org",),
        ["around the egress proxy"],
    ),
    "a missing system library": (
        _failed("src/x.c:1:10: fatal error: libpq-fe.h: No such file or directory"),
        ("pypi.org",),
        ["system library"],
    ),
    "git metadata": (
        _failed("LookupError: setuptools-scm was unable to detect version for /sandbox/repo"),
        ("pypi.org",),
        ["needs git metadata"],
    ),
    "a timeout": (
        _failed("Collecting numpy", exit_code=137, timed_out=True),
        ("pypi.org",),
        ["timed out (`limits.setup_timeout_s`)", "longer than the setup's time limit"],
    ),
    "certificates": (
        _failed("SSLError: [SSL: CERTIFICATE_VERIFY_FAILED] self-signed certificate in chain"),
        ("pypi.org",),
        ["`sandbox.ca_bundle`"],
    ),
}


@pytest.mark.parametrize(("outcome", "egress", "says"), FAILURES.values(), ids=FAILURES.keys())
def test_a_failed_setup_says_what_failed_why_and_what_to_change(
    outcome: SetupResult, egress: tuple[str, ...] | None, says: list[str]
) -> None:
    text = explain_failure(outcome, egress)

    head = text.split("Its last lines:")[0]
    assert [line for line in head.splitlines() if line.startswith("- **")] == [
        line for line in head.splitlines() if line.startswith("- ")]
    assert len([line for line in head.splitlines() if line.startswith("- **")]) == 3
    for phrase in says:
        assert phrase in head


def test_the_failure_log_cannot_break_out_of_its_fence() -> None:
    text = explain_failure(_failed("````\n# injected heading\n````"), ("pypi.org",))

    assert "`````text\n" in text


def test_installed_package_counts_from_pip_and_npm() -> None:
    out = "Successfully installed a-1 b-2 c-3\nadded 37 packages, and audited 38 packages in 2s\n"

    assert installed_count(out) == 40
    assert installed_count("nothing here") is None


def test_reused_line_says_how_old_the_snapshot_is() -> None:
    assert reused_line(1000.0, now=1000.0 + 2 * 86_400 + 5) == (
        "dependencies: reused from a setup snapshot made 2 days ago")


def test_the_cache_key_changes_with_a_manifest_but_not_with_other_files() -> None:
    toolchain = Toolchain("python", "img:1", ("sh", "-c", "pip install ."), ("pytest",), ())
    one = setup_cache("o/r", toolchain, {"pyproject.toml": "a"}, ("pypi.org",), {})
    same = setup_cache("o/r", toolchain, {"pyproject.toml": "a"}, ("pypi.org",), {})
    changed = setup_cache("o/r", toolchain, {"pyproject.toml": "b"}, ("pypi.org",), {})
    narrower = setup_cache("o/r", toolchain, {"pyproject.toml": "a"}, (), {})
    other_repo = setup_cache("o/s", toolchain, {"pyproject.toml": "a"}, ("pypi.org",), {})

    assert one == same
    assert len({one.key, changed.key, narrower.key}) == 3
    assert other_repo.key == one.key and other_repo.scope != one.scope


def test_a_ca_bundle_with_a_private_key_is_refused(tmp_path: Path) -> None:
    cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    good, bad, empty = tmp_path / "good.pem", tmp_path / "bad.pem", tmp_path / "empty.pem"
    good.write_text(cert)
    bad.write_text(cert + "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    empty.write_text("hello\n")

    assert load_ca_bundle(good) == cert.encode()
    with pytest.raises(ConfigError, match="more than certificates"):
        load_ca_bundle(bad)
    with pytest.raises(ConfigError, match="no PEM certificate"):
        load_ca_bundle(empty)
    with pytest.raises(ConfigError, match="cannot read"):
        load_ca_bundle(tmp_path / "missing.pem")
