"""The setup phase of a job: a kept snapshot when one fits, else the repository's setup
through the egress proxy, and a failure that says in three lines what went wrong.

The snapshot's cache key hashes everything the setup depends on: the runner image (the
backend binds the key to the image's build), the setup command, every manifest and
lockfile read at the root, the egress allow-list and the operator's mirrors. A repository
whose manifests hash the same reuses the snapshot; any change to them makes a new one,
with the repository's package cache, so only what changed is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.pipeline.report import fenced
from bot.policy.model import Policy
from bot.sandbox.base import Result, SetupCache, SetupResult
from bot.sandbox.egress import EgressRecord, allowed_hosts, describe, refused_hosts
from bot.sandbox.python_setup import STEP_PREFIX
from bot.sandbox.toolchain import Toolchain

MAX_TAIL_LINES = 20


def egress_hosts(policy: Policy, toolchain: str, setup_env: Mapping[str, str]) -> (
        tuple[str, ...] | None):
    """The hosts the setup may reach through the proxy, or None for no network at all."""
    if not policy.sandbox.setup_network:
        return None
    return allowed_hosts(policy.sandbox.setup_egress, toolchain, mirror_hosts(setup_env))


def mirror_hosts(setup_env: Mapping[str, str]) -> list[str]:
    """The hosts of the operator's registry mirrors (``PIP_INDEX_URL``, ``GOPROXY``, ...)."""
    hosts: list[str] = []
    for value in setup_env.values():
        for url in re.split(r"[\s,|]+", value):
            match = re.match(r"^[a-z][a-z0-9+.-]*://([^/:@\s]+)", url, re.IGNORECASE)
            if match:
                hosts.append(match.group(1).lower())
    return hosts


def setup_cache(
    repo: str,
    toolchain: Toolchain,
    files: Mapping[str, str],
    egress: Sequence[str] | None,
    setup_env: Mapping[str, str],
) -> SetupCache:
    """The cache key and scope of a repository's setup (see the module docstring)."""
    material = {
        "setup": list(toolchain.setup or ()),
        "image": toolchain.image,
        "files": {name: hashlib.sha256(text.encode()).hexdigest()
                  for name, text in sorted(files.items())},
        "egress": list(egress) if egress is not None else None,
        "env": dict(sorted(setup_env.items())),
    }
    key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    scope = hashlib.sha256(repo.encode()).hexdigest()[:16]
    return SetupCache(key=key, scope=scope)


def installed_count(output: str) -> int | None:
    """How many packages the setup's own tools said they installed (pip's "Successfully
    installed a-1 b-2", npm's "added 37 packages"), or None when they did not say."""
    total, seen = 0, False
    for line in output.splitlines():
        if line.startswith("Successfully installed "):
            total += len(line.split()) - 2
            seen = True
        match = re.match(r"^added (\d+) packages?", line.strip())
        if match:
            total += int(match.group(1))
            seen = True
    return total if seen else None


def reused_line(created: float, now: float | None = None) -> str:
    return f"dependencies: reused from a setup snapshot made {_ago((now or time.time()) - created)}"


def installed_line(outcome: SetupResult) -> str:
    count = installed_count(outcome.result.stdout + "\n" + outcome.result.stderr)
    what = f", {count} packages" if count is not None else ""
    return f"dependencies: installed in {outcome.seconds:.0f} s{what}"


def egress_line(records: Sequence[EgressRecord], egress: Sequence[str] | None) -> str:
    if egress is None:
        return "setup network: none (sandbox.setup_network is off)"
    return f"setup egress ({', '.join(egress) or 'no hosts'}): {describe(records)}"


def _ago(seconds: float) -> str:
    if seconds < 120:
        return "just now" if seconds < 60 else "a minute ago"
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"


# why a setup failed ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cause:
    pattern: re.Pattern[str]
    says: str


# Checked in order against the setup's output; the first that matches is the cause.
_CAUSES = (
    _Cause(re.compile(r"setuptools.?scm|hatch.?vcs|unable to detect version|LookupError: "
                      r"(setuptools-scm|hatch)", re.IGNORECASE),
           "the build backend needs git metadata for the version, which the sandbox does not "
           "have; set `SETUPTOOLS_SCM_PRETEND_VERSION` by tagging a release, or give `setup:` "
           "in `.forgebot.yml`"),
    _Cause(re.compile(r"fatal error: [^\n]*\.h: No such file|error: command '(gcc|cc|"
                      r"x86_64-linux-gnu-gcc)' failed|pkg-config.*not found|library not found",
                      re.IGNORECASE),
           "a package needs a system library or a compiler the runner image does not have; "
           "install it in the runner image, or pin a version with a binary wheel"),
    _Cause(re.compile(r"Network is unreachable|Temporary failure in name resolution|"
                      r"Name or service not known|EAI_AGAIN|ENETUNREACH|getaddrinfo",
                      re.IGNORECASE),
           "the setup tried to reach the network around the egress proxy, which has no route"
           " out: only requests through the proxy can leave the sandbox"),
    _Cause(re.compile(r"CERTIFICATE_VERIFY_FAILED|self.signed certificate|"
                      r"unable to get local issuer|SELF_SIGNED_CERT", re.IGNORECASE),
           "HTTPS certificates could not be verified; set `sandbox.ca_bundle` to the CA "
           "bundle your network needs"),
    _Cause(re.compile(r"No matching distribution found|ETARGET|notarget|404 Not Found",
                      re.IGNORECASE),
           "a dependency (or the version asked for) does not exist on the registry"),
)


def explain_failure(outcome: SetupResult, egress: Sequence[str] | None) -> str:
    """Why a setup failed, in three lines before the log's tail: which step, the cause,
    what to change. The tail is the repository's tools talking, fenced as text."""
    result = outcome.result
    output = (result.stdout + "\n" + result.stderr).strip()
    how = ("timed out (`limits.setup_timeout_s`)" if result.timed_out
           else "ran out of memory (`sandbox.memory_mb`)" if result.killed_by == "oom"
           else f"was killed ({result.killed_by})" if result.killed_by
           else f"exited with {result.exit_code}")
    step = _last_step(result)
    lines = [f"- **Failed:** the setup {how}" + (f" at {step}." if step else ".")]
    refused = refused_hosts(outcome.egress)
    if refused:
        lines.append(f"- **Cause:** the egress proxy refused {', '.join(refused)}: not on the "
                     f"allow-list ({', '.join(egress or ()) or 'empty'}).")
        lines.append("- **To change it:** add the host to `sandbox.setup_egress` in the "
                     "bot-wide policy (a repository may only narrow it).")
    elif egress is None and _matches(_CAUSES[2], output):
        lines.append("- **Cause:** the setup has no network: `sandbox.setup_network` is off.")
        lines.append("- **To change it:** turn on `sandbox.setup_network` in the bot-wide "
                     "policy, or pre-install the dependencies in the runner image.")
    else:
        cause = next((c.says for c in _CAUSES if _matches(c, output)), None)
        if result.timed_out:
            cause = cause or "installing took longer than the setup's time limit"
        lines.append(f"- **Cause:** {cause or 'see the log below'}.")
        lines.append("- **To change it:** give the setup command as `setup:` in "
                     "`.forgebot.yml` if the detected one is wrong.")
    tail = "\n".join(output.splitlines()[-MAX_TAIL_LINES:])
    return "The setup could not install this repository's dependencies.\n\n" + "\n".join(
        lines) + "\n\nIts last lines:\n\n" + fenced(tail)


def _matches(cause: _Cause, output: str) -> bool:
    return cause.pattern.search(output) is not None


def _last_step(result: Result) -> str | None:
    steps = [line.split(":", 2)[-1].strip() for line in result.stdout.splitlines()
             if line.startswith(STEP_PREFIX)]
    return f"step “{steps[-1]}”" if steps else None
