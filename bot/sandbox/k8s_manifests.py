"""The pure half of the Kubernetes sandbox backend: manifests out, API objects in.

Functions from values to plain dicts (the Pod and the NetworkPolicy, in the API's own JSON
form) and back (a Pod's status, an exec's exit status). No IO and no kubernetes client here,
so every hardening field can be checked by a table test and validated against the Kubernetes
JSON schemas, and every status read from recorded API answers. ``bot/sandbox/kubernetes.py``
does the talking.

A session Pod mirrors the Docker backend's container (same layout, user and environment,
imported from ``bot.sandbox.docker`` so the two backends cannot drift):

    /sandbox        an emptyDir with sizeLimit (RAM-backed by default, like Docker's tmpfs)
    /sandbox/repo   the repository; /sandbox/out the reports ($FORGEBOT_JUNIT)
    /tmp            a second, small emptyDir; HOME points here

What Kubernetes cannot express per Pod: a pids limit (it is the kubelet's ``podPidsLimit``,
set per node) and no-new-privileges as such (``allowPrivilegeEscalation: false`` is the same
flag). Both are noted in docs/sandbox.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.errors import SandboxError
from bot.sandbox.base import Limits
from bot.sandbox.docker import (
    OWNER_LABEL,
    SANDBOX_TMP,
    SESSION_ENVIRONMENT,
    SESSION_LABEL,
    WORKSPACE_DIR,
)
from bot.sandbox.tarball import SANDBOX_GID, SANDBOX_UID

__all__ = [
    "CONTAINER_NAME",
    "FIXED_LABELS",
    "MANAGED_BY_LABEL",
    "NETWORK_POLICY_NAME",
    "OWNER_LABEL",
    "SESSION_LABEL",
    "PodProgress",
    "exec_exit_code",
    "is_deny_all",
    "label_selector",
    "label_value",
    "network_policy_manifest",
    "pod_labels",
    "pod_manifest",
    "pod_progress",
]

CONTAINER_NAME = "sandbox"
# Not "<release>-sandbox-deny-all", the Helm chart's own policy, which may exist beside it.
NETWORK_POLICY_NAME = "forgebot-sessions-deny-all"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
# Every session Pod carries these. The two app.kubernetes.io labels are the ones the Helm
# chart's deny-all NetworkPolicy selects (charts/forgebot, "forgebot.sandboxLabels").
FIXED_LABELS = {
    SESSION_LABEL: "1",
    MANAGED_BY_LABEL: "forgebot",
    "app.kubernetes.io/part-of": "forgebot",
    "app.kubernetes.io/component": "sandbox",
}
PULL_POLICIES = frozenset({"Always", "IfNotPresent", "Never"})
WORKSPACE_MEDIUMS = frozenset({"Memory", ""})  # "" is the node's disk
DEFAULT_TMP_MB = 256  # as the Docker backend's default: HOME and tool caches live in /tmp
# Room for the container's writable layer and logs. The root is read-only and the bot reads
# output through exec, so little is needed; a disk-backed workspace is added on top.
EPHEMERAL_SLACK_MB = 64

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"^({_DNS_LABEL}(\.{_DNS_LABEL})*/)?{_LABEL_NAME}$")
_NOT_LABEL_CHAR = re.compile(r"[^-A-Za-z0-9_.]")
_MAX_LABEL_VALUE = 63
_MAX_NAME = 253
DETAIL_LIMIT = 500  # characters of an API message quoted in an error

# Waiting reasons of a container that no amount of waiting fixes.
_IMAGE_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
_CONFIG_REASONS = frozenset(
    {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
)


def pod_manifest(
    *,
    name: str,
    namespace: str,
    image: str,
    limits: Limits,
    labels: Mapping[str, str],
    image_pull_policy: str = "IfNotPresent",
    session_deadline_s: int = 3600,
    runtime_class: str | None = None,
    workspace_medium: str = "Memory",
    tmp_mb: int = DEFAULT_TMP_MB,
) -> dict[str, Any]:
    """The Pod of one sandbox session, as a dict ready for ``create_namespaced_pod``.

    ``labels`` (job, attempt, owner ids) become Pod labels with values made label-safe by
    ``label_value``; the exact values are kept in annotations of the same keys, so the
    reaper can match an owner whose id does not fit a label. ``session_deadline_s`` becomes
    ``activeDeadlineSeconds``: the kubelet kills the Pod after that long whatever the bot does.
    Raises ``ValueError`` for a bad name, label key, pull policy, medium or limit.
    """
    _check_name(name, "pod name")
    _check_name(namespace, "namespace")
    _check_options(image, image_pull_policy, workspace_medium, session_deadline_s, runtime_class)
    _check_limits(limits, tmp_mb)
    spec = _pod_spec(image, image_pull_policy, limits, workspace_medium, tmp_mb)
    spec["activeDeadlineSeconds"] = session_deadline_s
    if runtime_class is not None:
        spec["runtimeClassName"] = runtime_class  # gVisor or Kata, where the cluster has one
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": pod_labels(labels),
            "annotations": _annotations(labels),
        },
        "spec": spec,
    }


def network_policy_manifest(namespace: str) -> dict[str, Any]:
    """A NetworkPolicy that denies all ingress and egress of every sandbox Pod in ``namespace``.

    It selects Pods by ``forgebot.session=1``, which every session Pod carries. It is only
    enforced where the cluster's network plugin implements NetworkPolicy (Calico, Cilium, ...).
    """
    _check_name(namespace, "namespace")
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": NETWORK_POLICY_NAME,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: "forgebot"},
        },
        "spec": {
            "podSelector": {"matchLabels": {SESSION_LABEL: "1"}},
            # Both types listed with no rules: nothing in, nothing out (DNS included).
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [],
        },
    }


def is_deny_all(policy: Mapping[str, Any]) -> bool:
    """Whether ``policy`` (a NetworkPolicy's JSON form) is the deny-all one of
    ``network_policy_manifest``: the same Pod selector, both policy types, no rule at all.

    Used on a policy of that name that exists already, to leave a right one alone (no
    ``update`` permission needed) and to put back one that someone loosened.
    """
    spec = _mapping(policy.get("spec"))
    wanted = network_policy_manifest("placeholder")["spec"]
    return (
        spec.get("podSelector") == wanted["podSelector"]
        and set(_list(spec.get("policyTypes"))) == {"Ingress", "Egress"}
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def pod_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels of a session Pod: the caller's (values made label-safe) and the fixed ones.

    Raises ``ValueError`` for a key that is not a valid label key or that would override a
    fixed label.
    """
    result: dict[str, str] = {}
    for key, value in labels.items():
        _check_label_key(key)
        if key in FIXED_LABELS:
            raise ValueError(f"label {key!r} is set by the sandbox itself")
        result[key] = label_value(value)
    return result | FIXED_LABELS


def label_value(value: str) -> str:
    """``value`` made a valid label value: characters outside ``[-A-Za-z0-9_.]`` become '-',
    at most 63 characters, starting and ending with a letter or digit ('' when none is left).

    Worker ids such as ``host:1234:abcd`` carry colons, which labels refuse.
    """
    cleaned = _NOT_LABEL_CHAR.sub("-", value)[:_MAX_LABEL_VALUE]
    return cleaned.strip("-_.")


def label_selector(labels: Mapping[str, str]) -> str:
    """The label selector of sandbox Pods carrying ``labels`` (values made label-safe)."""
    for key in labels:
        _check_label_key(key)
    pairs = {SESSION_LABEL: "1", **{k: label_value(v) for k, v in labels.items()}}
    return ",".join(f"{key}={value}" for key, value in pairs.items())


def _check_options(
    image: str,
    pull_policy: str,
    workspace_medium: str,
    session_deadline_s: int,
    runtime_class: str | None,
) -> None:
    if not image.strip():
        raise ValueError("the sandbox image is empty")
    if pull_policy not in PULL_POLICIES:
        raise ValueError(
            f"image pull policy {pull_policy!r} is not one of {_sorted(PULL_POLICIES)}"
        )
    if workspace_medium not in WORKSPACE_MEDIUMS:
        raise ValueError(f"workspace medium {workspace_medium!r} is not 'Memory' or ''")
    if session_deadline_s < 1:
        raise ValueError("the session deadline must be at least one second")
    if runtime_class is not None:
        _check_name(runtime_class, "runtime class")


def _pod_spec(
    image: str, pull_policy: str, limits: Limits, workspace_medium: str, tmp_mb: int
) -> dict[str, Any]:
    return {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 0,  # nothing in a sandbox deserves a clean shutdown
        "automountServiceAccountToken": False,
        # No variables naming the namespace's Services. The kubelet still adds the API
        # server's KUBERNETES_SERVICE_* address (not a credential; the policy blocks it).
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        # The pause container becomes PID 1 and reaps orphans of exec'd commands, the part
        # Docker's ``init=True`` plays; ``sleep`` as PID 1 would let zombies pile up.
        "shareProcessNamespace": True,
        "hostname": "sandbox",
        # The NetworkPolicy drops DNS packets, so lookups would hang for seconds each; a
        # resolver that refuses at once fails a test that wants the network quickly.
        "dnsPolicy": "None",
        "dnsConfig": {"nameservers": ["127.0.0.1"], "searches": [], "options": []},
        "securityContext": _pod_security_context(),
        "containers": [_container(image, pull_policy, limits, workspace_medium, tmp_mb)],
        "volumes": _volumes(limits, workspace_medium, tmp_mb),
    }


def _annotations(labels: Mapping[str, str]) -> dict[str, str]:
    # Labels are what selectors use; annotations keep the ids exactly, for logs and the reaper.
    return dict(labels)


def _pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": SANDBOX_UID,
        "runAsGroup": SANDBOX_GID,
        "fsGroup": SANDBOX_GID,  # the emptyDirs are group-owned by the sandbox user
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": SANDBOX_UID,
        "runAsGroup": SANDBOX_GID,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,  # the no_new_privs bit, as Docker's option sets
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container(
    image: str, pull_policy: str, limits: Limits, workspace_medium: str, tmp_mb: int
) -> dict[str, Any]:
    return {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": pull_policy,
        # Commands arrive through exec; the container itself only has to stay up.
        "command": ["sleep", "infinity"],
        "workingDir": WORKSPACE_DIR,
        "env": [
            {"name": key, "value": value} for key, value in sorted(SESSION_ENVIRONMENT.items())
        ],
        "stdin": False,
        "tty": False,
        "securityContext": _container_security_context(),
        "resources": _resources(limits, workspace_medium, tmp_mb),
        "volumeMounts": [
            {"name": "workspace", "mountPath": WORKSPACE_DIR},
            {"name": "tmp", "mountPath": SANDBOX_TMP},
        ],
    }


def _resources(limits: Limits, workspace_medium: str, tmp_mb: int) -> dict[str, Any]:
    disk_mb = EPHEMERAL_SLACK_MB
    if workspace_medium == "":
        disk_mb += limits.workspace_mb + tmp_mb
    # Requests equal limits: the Pod is in the Guaranteed class and is not evicted first.
    amounts = {
        "cpu": f"{max(1, round(limits.cpus * 1000))}m",
        "memory": f"{limits.memory_mb}Mi",
        "ephemeral-storage": f"{disk_mb}Mi",
    }
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _volumes(limits: Limits, workspace_medium: str, tmp_mb: int) -> list[dict[str, Any]]:
    # A RAM-backed emptyDir is a tmpfs of sizeLimit: a full workspace is ENOSPC at once, as in
    # Docker. A disk-backed one is only checked by the kubelet now and then (then evicted).
    return [
        {
            "name": "workspace",
            "emptyDir": {"medium": workspace_medium, "sizeLimit": f"{limits.workspace_mb}Mi"},
        },
        {"name": "tmp", "emptyDir": {"medium": workspace_medium, "sizeLimit": f"{tmp_mb}Mi"}},
    ]


def _check_limits(limits: Limits, tmp_mb: int) -> None:
    if limits.memory_mb < 16 or limits.workspace_mb < 1 or limits.cpus <= 0 or tmp_mb < 1:
        raise ValueError(f"sandbox limits out of range: {limits}, /tmp {tmp_mb} MB")


def _check_name(value: str, what: str) -> None:
    if len(value) > _MAX_NAME or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(f"{what} {value!r} is not a valid Kubernetes name")


def _check_label_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if len(prefix) > _MAX_NAME or not _LABEL_KEY.match(key) or len(name) > _MAX_LABEL_VALUE:
        raise ValueError(f"{key!r} is not a valid Kubernetes label key")


def _sorted(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))


@dataclass(frozen=True)
class PodProgress:
    """How far a starting Pod has got: running, still starting (``detail`` says why), or
    never going to run (``fatal``; ``retryable`` when a new Pod might)."""

    running: bool
    detail: str
    fatal: bool = False
    retryable: bool = False


def pod_progress(pod: Mapping[str, Any]) -> PodProgress:
    """Read a Pod (its JSON form, as the API returns it) for ``KubernetesSession.start``.

    Running means phase Running with the container running. Image pull errors and container
    config errors are fatal at once; a Pod that ended is fatal but worth a retry.
    """
    status = _mapping(pod.get("status"))
    phase = str(status.get("phase") or "Unknown")
    if phase in ("Failed", "Succeeded"):
        detail = f"phase {phase}: {status.get('reason') or ''} {status.get('message') or ''}"
        return PodProgress(running=False, detail=_clip(detail), fatal=True, retryable=True)
    for container in _list(status.get("containerStatuses")):
        state = _mapping(_mapping(container).get("state"))
        if "running" in state and phase == "Running":
            return PodProgress(running=True, detail="running")
        if "terminated" in state:
            ended = _mapping(state["terminated"])
            reason = ended.get("reason") or f"exit {ended.get('exitCode')}"
            return PodProgress(
                False, _clip(f"container ended: {reason}"), fatal=True, retryable=True
            )
        if "waiting" in state:
            waiting = _mapping(state["waiting"])
            return _waiting(str(waiting.get("reason") or ""), str(waiting.get("message") or ""))
    for item in _list(status.get("conditions")):
        condition = _mapping(item)
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            detail = f"{condition.get('reason')}: {condition.get('message')}"
            return PodProgress(running=False, detail=_clip(detail))
    return PodProgress(running=False, detail=f"phase {phase}")


def exec_exit_code(status: bytes, action: str) -> int | None:
    """The exit code in what an exec sent on its status channel (a JSON ``metav1.Status``);
    None when nothing was sent (the stream ended early).

    ``Success`` is 0; ``NonZeroExitCode`` carries the code in the cause of reason
    ``ExitCode``. Any other failure means no process ran: raises ``SandboxError`` naming
    ``action``.
    """
    if not status.strip():
        return None
    try:
        document = json.loads(status)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise SandboxError(f"{action}: unreadable exec status: {exc}", retryable=True) from exc
    if not isinstance(document, dict):
        raise SandboxError(f"{action}: unreadable exec status", retryable=True)
    if document.get("status") == "Success":
        return 0
    if document.get("reason") == "NonZeroExitCode":
        code = _cause_exit_code(document.get("details"))
        if code is not None:
            return code
    message = _clip(str(document.get("message") or "no reason given"))
    raise SandboxError(f"{action}: could not start a process in the sandbox: {message}")


def _waiting(reason: str, message: str) -> PodProgress:
    detail = _clip(f"{reason}: {message}" if message else reason)
    if reason in _IMAGE_REASONS:
        return PodProgress(
            False,
            f"{detail}; the cluster cannot pull the runner image: push it to a registry the"
            " nodes can reach (or load it on every node) and check sandbox.image",
            fatal=True,
        )
    return PodProgress(False, detail, fatal=reason in _CONFIG_REASONS)


def _cause_exit_code(details: object) -> int | None:
    for item in _list(_mapping(details).get("causes")):
        cause = _mapping(item)
        if cause.get("reason") == "ExitCode":
            text = str(cause.get("message", ""))
            if text.isdigit() and int(text) <= 255:
                return int(text)
    return None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _clip(text: str) -> str:
    """One line of at most DETAIL_LIMIT characters."""
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"
