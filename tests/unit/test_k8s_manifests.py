"""The pure half of the Kubernetes backend: the manifests it sends and the statuses it reads.

Every hardening field is checked by a table, and the manifests are validated against the
Kubernetes JSON schemas of several releases (``kubernetes-validate``, strict: an unknown
field fails). Pod statuses are read from the same recorded API objects the backend's own
tests replay (tests/fixtures/k8s/objects).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from bot.errors import SandboxError
from bot.sandbox.base import Limits
from bot.sandbox.docker import SESSION_ENVIRONMENT
from bot.sandbox.k8s_manifests import (
    NETWORK_POLICY_NAME,
    exec_exit_code,
    is_deny_all,
    label_selector,
    label_value,
    network_policy_manifest,
    pod_labels,
    pod_manifest,
    pod_progress,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "k8s"
LABELS = {"forgebot.job": "12", "forgebot.attempt": "31", "forgebot.owner": "host:4242:9f3c"}
# The oldest and newest schemas the package bundles, and releases between.
SCHEMA_VERSIONS = ["1.25.0", "1.28.0", "1.30.0", "1.33.0", "1.37.0"]


def make_pod(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "name": "forgebot-0123456789abcdef",
        "namespace": "forgebot-sandboxes",
        "image": "forgebot-runner-python:1",
        "limits": Limits(memory_mb=512, cpus=1.5, workspace_mb=128),
        "labels": LABELS,
        **overrides,
    }
    return pod_manifest(**arguments)


def at(document: Any, path: str) -> Any:
    """The value at a dotted path; list items by index (``spec.containers.0.name``)."""
    for part in path.split("."):
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


POD = make_pod()

HARDENING = [
    ("spec.automountServiceAccountToken", False),
    ("spec.enableServiceLinks", False),
    ("spec.hostNetwork", False),
    ("spec.hostPID", False),
    ("spec.hostIPC", False),
    ("spec.restartPolicy", "Never"),
    ("spec.activeDeadlineSeconds", 3600),
    ("spec.terminationGracePeriodSeconds", 0),
    ("spec.dnsPolicy", "None"),
    ("spec.dnsConfig.nameservers", ["127.0.0.1"]),
    ("spec.securityContext.runAsNonRoot", True),
    ("spec.securityContext.runAsUser", 1000),
    ("spec.securityContext.runAsGroup", 1000),
    ("spec.securityContext.fsGroup", 1000),
    ("spec.securityContext.seccompProfile", {"type": "RuntimeDefault"}),
    ("spec.containers.0.securityContext.runAsNonRoot", True),
    ("spec.containers.0.securityContext.runAsUser", 1000),
    ("spec.containers.0.securityContext.readOnlyRootFilesystem", True),
    ("spec.containers.0.securityContext.allowPrivilegeEscalation", False),
    ("spec.containers.0.securityContext.privileged", False),
    ("spec.containers.0.securityContext.capabilities", {"drop": ["ALL"]}),
    ("spec.containers.0.securityContext.seccompProfile", {"type": "RuntimeDefault"}),
    ("spec.containers.0.stdin", False),
    ("spec.containers.0.tty", False),
    ("spec.containers.0.workingDir", "/sandbox"),
    ("spec.containers.0.command", ["sleep", "infinity"]),
    ("spec.containers.0.resources.limits.cpu", "1500m"),
    ("spec.containers.0.resources.limits.memory", "512Mi"),
    ("spec.containers.0.resources.limits.ephemeral-storage", "64Mi"),
    ("spec.containers.0.volumeMounts.0", {"name": "workspace", "mountPath": "/sandbox"}),
    ("spec.containers.0.volumeMounts.1", {"name": "tmp", "mountPath": "/tmp"}),
    ("spec.volumes.0.emptyDir", {"medium": "Memory", "sizeLimit": "128Mi"}),
    ("spec.volumes.1.emptyDir", {"medium": "Memory", "sizeLimit": "256Mi"}),
]


@pytest.mark.parametrize(("path", "expected"), HARDENING, ids=[p for p, _ in HARDENING])
def test_pod_hardening_field(path: str, expected: Any) -> None:
    assert at(POD, path) == expected


def test_pod_has_nothing_that_loosens_it() -> None:
    spec, container = POD["spec"], POD["spec"]["containers"][0]
    assert len(spec["containers"]) == 1 and "initContainers" not in spec
    assert not {"serviceAccountName", "nodeName", "hostAliases", "hostUsers"} & spec.keys()
    assert not {"envFrom", "ports", "lifecycle", "volumeDevices"} & container.keys()
    assert "add" not in container["securityContext"]["capabilities"]
    for volume in spec["volumes"]:
        assert volume.keys() == {"name", "emptyDir"}  # no hostPath, secret or projected token


def test_requests_equal_limits_so_the_pod_is_guaranteed() -> None:
    resources = at(POD, "spec.containers.0.resources")
    assert resources["requests"] == resources["limits"]
    assert resources["limits"].keys() == {"cpu", "memory", "ephemeral-storage"}


def test_environment_is_the_docker_backends_and_nothing_else() -> None:
    env = at(POD, "spec.containers.0.env")
    assert {item["name"]: item["value"] for item in env} == dict(SESSION_ENVIRONMENT)
    assert all(item.keys() == {"name", "value"} for item in env)  # no valueFrom: no secrets


def test_labels_carry_ids_made_label_safe_and_annotations_the_exact_ids() -> None:
    metadata = POD["metadata"]
    assert metadata["labels"] == {
        "forgebot.job": "12",
        "forgebot.attempt": "31",
        "forgebot.owner": "host-4242-9f3c",
        "forgebot.session": "1",
        "app.kubernetes.io/managed-by": "forgebot",
        "app.kubernetes.io/part-of": "forgebot",
        "app.kubernetes.io/component": "sandbox",
    }
    assert metadata["annotations"] == LABELS


def test_every_pod_is_selected_by_the_network_policy() -> None:
    selector = network_policy_manifest("forgebot-sandboxes")["spec"]["podSelector"]
    assert selector["matchLabels"].items() <= POD["metadata"]["labels"].items()


def test_every_pod_is_selected_by_the_helm_charts_sandbox_policy() -> None:
    # charts/forgebot/templates/_helpers.tpl, "forgebot.sandboxLabels"
    chart_selector = {
        "app.kubernetes.io/part-of": "forgebot",
        "app.kubernetes.io/component": "sandbox",
    }
    assert chart_selector.items() <= POD["metadata"]["labels"].items()


def test_network_policy_denies_all_ingress_and_egress() -> None:
    policy = network_policy_manifest("forgebot-sandboxes")
    assert policy["metadata"]["name"] == NETWORK_POLICY_NAME
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"] == [] and policy["spec"]["egress"] == []
    assert is_deny_all(policy)


@pytest.mark.parametrize(
    ("change", "denies_all"),
    [
        ({}, True),
        ({"ingress": None, "egress": None}, True),  # as the API server returns it
        ({"egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}, False),
        ({"ingress": [{}]}, False),
        ({"policyTypes": ["Ingress"]}, False),
        ({"podSelector": {}}, False),
        ({"podSelector": {"matchLabels": {"forgebot.session": "0"}}}, False),
    ],
)
def test_is_deny_all(change: dict[str, Any], denies_all: bool) -> None:
    policy = network_policy_manifest("forgebot-sandboxes")
    policy["spec"] = {**policy["spec"], **change}
    assert is_deny_all(policy) is denies_all


def test_is_deny_all_of_recorded_policies() -> None:
    assert is_deny_all(recorded("networkpolicy"))
    assert not is_deny_all(recorded("networkpolicy_loosened"))


def test_disk_backed_workspace_counts_in_ephemeral_storage() -> None:
    pod = make_pod(workspace_medium="", tmp_mb=64)
    assert at(pod, "spec.volumes.0.emptyDir") == {"medium": "", "sizeLimit": "128Mi"}
    assert at(pod, "spec.containers.0.resources.limits.ephemeral-storage") == "256Mi"


def test_options_reach_the_pod() -> None:
    pod = make_pod(image_pull_policy="Always", session_deadline_s=900, runtime_class="gvisor")
    assert at(pod, "spec.runtimeClassName") == "gvisor"
    assert at(pod, "spec.activeDeadlineSeconds") == 900
    assert at(pod, "spec.containers.0.imagePullPolicy") == "Always"
    assert "runtimeClassName" not in POD["spec"]


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize(
    "manifest",
    [
        POD,
        make_pod(workspace_medium="", runtime_class="gvisor"),
        network_policy_manifest("forgebot-sandboxes"),
    ],
    ids=["pod", "pod-on-disk", "network-policy"],
)
def test_manifests_validate_against_the_kubernetes_schema(
    manifest: dict[str, Any], version: str
) -> None:
    kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize(
    "name", ["pod_created", "pod_running", "pod_image_pull_backoff", "pod_list", "networkpolicy"]
)
def test_recorded_objects_validate_against_the_kubernetes_schema(name: str) -> None:
    text = (FIXTURES / "objects" / f"{name}.json").read_text()
    text = text.replace("{pod}", "forgebot-0123").replace("{namespace}", "forgebot-sandboxes")
    kubernetes_validate.validate(json.loads(text), "1.30.0", strict=True)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "Not_A_Name"}, "pod name"),
        ({"namespace": ""}, "namespace"),
        ({"image": " "}, "image is empty"),
        ({"image_pull_policy": "Sometimes"}, "pull policy"),
        ({"workspace_medium": "HugePages"}, "medium"),
        ({"session_deadline_s": 0}, "deadline"),
        ({"runtime_class": "no spaces"}, "runtime class"),
        ({"limits": Limits(cpus=0)}, "limits"),
        ({"tmp_mb": 0}, "limits"),
        ({"labels": {"bad key!": "1"}}, "label key"),
        ({"labels": {"forgebot.session": "0"}}, "set by the sandbox"),
        ({"labels": {"app.kubernetes.io/component": "x"}}, "set by the sandbox"),
    ],
)
def test_bad_input_is_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_pod(**overrides)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", "12"),
        ("host:4242:9f3c", "host-4242-9f3c"),
        ("-leading and trailing-", "leading-and-trailing"),
        ("x" * 80, "x" * 63),
        (":::", ""),
        ("ünïcode", "n-code"),
    ],
)
def test_label_value(value: str, expected: str) -> None:
    assert label_value(value) == expected


def test_label_selector_and_pod_labels_agree() -> None:
    assert label_selector({}) == "forgebot.session=1"
    selector = label_selector({"forgebot.owner": "host:1:a"})
    assert selector == "forgebot.session=1,forgebot.owner=host-1-a"
    labels = pod_labels({"forgebot.owner": "host:1:a"})
    assert all(labels[k] == v for k, v in (pair.split("=") for pair in selector.split(",")))


def recorded(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / "objects" / f"{name}.json").read_text())
    return document


@pytest.mark.parametrize(
    ("name", "running", "fatal", "retryable", "detail"),
    [
        ("pod_created", False, False, False, "phase Pending"),
        ("pod_pending", False, False, False, "ContainerCreating"),
        ("pod_running", True, False, False, "running"),
        ("pod_unschedulable", False, False, False, "Unschedulable: 0/3 nodes are available"),
        ("pod_image_pull_backoff", False, True, False, "cannot pull the runner image"),
        ("pod_failed_deadline", False, True, True, "DeadlineExceeded"),
    ],
)
def test_pod_progress_of_recorded_pods(
    name: str, running: bool, fatal: bool, retryable: bool, detail: str
) -> None:
    progress = pod_progress(recorded(name))
    assert (progress.running, progress.fatal, progress.retryable) == (running, fatal, retryable)
    assert detail in progress.detail


@pytest.mark.parametrize(
    "pod",
    [
        {},
        {"status": None},
        {"status": {"containerStatuses": "nonsense"}},
        {"status": {"phase": "Running", "containerStatuses": [{"state": {"waiting": None}}]}},
    ],
)
def test_pod_progress_of_odd_pods_is_not_running(pod: dict[str, Any]) -> None:
    assert not pod_progress(pod).running


def test_pod_progress_detail_is_bounded() -> None:
    pod = {
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {"state": {"waiting": {"reason": "ContainerCreating", "message": "x\n" * 5000}}}
            ],
        }
    }
    assert len(pod_progress(pod).detail) <= 500


def status(document: Any) -> bytes:
    return json.dumps(document).encode()


NON_ZERO = {
    "metadata": {},
    "status": "Failure",
    "message": "command terminated with non-zero exit code: error executing command, exit code 3",
    "reason": "NonZeroExitCode",
    "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (status({"metadata": {}, "status": "Success"}), 0),
        (status(NON_ZERO), 3),
        (b"", None),
        (b"  ", None),
    ],
)
def test_exec_exit_code(raw: bytes, expected: int | None) -> None:
    assert exec_exit_code(raw, "run") == expected


@pytest.mark.parametrize(
    ("raw", "retryable"),
    [
        (b"{not json", True),
        (b"[1, 2]", True),
        (b"\xff\xfe", True),
        (status({"status": "Failure", "reason": "InternalError", "message": "no sh"}), False),
        (
            status({**NON_ZERO, "details": {"causes": [{"reason": "ExitCode", "message": "-1"}]}}),
            False,
        ),
        (
            status({**NON_ZERO, "details": {"causes": [{"reason": "ExitCode", "message": "999"}]}}),
            False,
        ),
    ],
)
def test_exec_exit_code_refuses_what_it_cannot_read(raw: bytes, retryable: bool) -> None:
    with pytest.raises(SandboxError) as caught:
        exec_exit_code(raw, "run")
    assert caught.value.retryable is retryable
