"""deploy/k8s as a cluster that survives a node and lets in only whom it should.

No cluster runs here, so the rules Kubernetes applies are applied by these tests to the
manifests themselves: label selectors (matchLabels, matchExpressions), NetworkPolicy's additive
allow rules with named ports resolved on the target pod, a PodDisruptionBudget's arithmetic,
kubelet's `$(VAR)` expansion. The PodMonitor, a CRD that kubernetes-validate cannot check,
is validated against a strict schema of the fields it uses, taken from the Prometheus
Operator's monitoring.coreos.com/v1 CRD.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import jsonschema
import pytest
import yaml
from django.http.request import validate_host

from .conftest import K8S_DIR, NGINX_CONF, k8s_documents, k8s_object

DOCUMENTS = [doc for _, doc in k8s_documents()]
LOGIN_PATHS = {"/api/v1/auth/token", "/account/login/", "/admin/login/"}


def pod_template(workload: dict) -> dict:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]
    return workload["spec"]["template"]


def selects(selector: dict, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector, as the API server evaluates it ({} selects everything)."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass
class Pod:
    name: str
    namespace: str
    labels: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)  # container port name -> number


def dbapi_pods() -> dict[str, Pod]:
    """One pod of each workload in deploy/k8s, as its template makes it."""
    pods = {}
    for doc in DOCUMENTS:
        if doc["kind"] in {"Deployment", "StatefulSet", "Job", "CronJob"}:
            template = pod_template(doc)
            ports = {
                port["name"]: port["containerPort"]
                for container in template["spec"]["containers"]
                for port in container.get("ports", [])
                if "name" in port
            }
            pods[doc["metadata"]["name"]] = Pod(
                doc["metadata"]["name"],
                doc["metadata"]["namespace"],
                template["metadata"]["labels"],
                ports,
            )
    return pods


PODS = dbapi_pods()
INGRESS_CONTROLLER = Pod(
    "ingress-nginx-controller",
    "ingress-nginx",
    {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
)
PROMETHEUS = Pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})
STRANGER = Pod("stranger", "default", {"app": "something-else"})
NEIGHBOUR = Pod("neighbour", "dbapi", {"app": "something-else"})  # a pod of ours, unlabelled


def namespace_labels(name: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": name}  # set by Kubernetes on every namespace


def network_policies() -> list[dict]:
    return [doc for doc in DOCUMENTS if doc["kind"] == "NetworkPolicy"]


def _peer_admits(peer: dict, policy_namespace: str, source: Pod) -> bool:
    if "ipBlock" in peer:
        return False  # pod traffic is judged by selectors here
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], namespace_labels(source.namespace))
    else:
        in_namespace = source.namespace == policy_namespace
    return in_namespace and selects(peer.get("podSelector", {}), source.labels)


def _port_admits(rule_ports: list[dict] | None, target: Pod, port: int) -> bool:
    if not rule_ports:
        return True
    for each in rule_ports:
        if each.get("protocol", "TCP") != "TCP":
            continue
        wanted = each.get("port")
        number = target.ports.get(wanted) if isinstance(wanted, str) else wanted
        if wanted is None or number == port:
            return True
    return False


def reaches(source: Pod, target: Pod, port_name: str) -> bool:
    """Whether a TCP connection from `source` to `target`'s named port is let in."""
    port = target.ports[port_name]
    governing = [
        policy
        for policy in network_policies()
        if policy["metadata"]["namespace"] == target.namespace
        and "Ingress" in policy["spec"].get("policyTypes", ["Ingress"])
        and selects(policy["spec"]["podSelector"], target.labels)
    ]
    if not governing:
        return True  # a pod no policy selects takes everything
    return any(
        _port_admits(rule.get("ports"), target, port)
        and (
            not rule.get("from")
            or any(
                _peer_admits(peer, policy["metadata"]["namespace"], source) for peer in rule["from"]
            )
        )
        for policy in governing
        for rule in policy["spec"].get("ingress", [])
    )


# --- NetworkPolicies ----------------------------------------------------------------------------


def test_every_pod_of_the_namespace_refuses_what_no_policy_allows():
    [deny] = [
        p
        for p in network_policies()
        if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")
    ]
    assert deny["spec"]["policyTypes"] == ["Ingress"]
    assert not reaches(NEIGHBOUR, PODS["web"], "http")


@pytest.mark.parametrize(
    ("source", "allowed"),
    [(INGRESS_CONTROLLER, True), (PROMETHEUS, False), (STRANGER, False), (NEIGHBOUR, False)],
    ids=["ingress-controller", "prometheus", "other-namespace", "same-namespace"],
)
def test_only_the_ingress_controller_reaches_the_webs_http_port(source, allowed):
    assert reaches(source, PODS["web"], "http") is allowed


@pytest.mark.parametrize(
    ("source", "allowed"),
    [(PROMETHEUS, True), (INGRESS_CONTROLLER, False), (STRANGER, False), (NEIGHBOUR, False)],
    ids=["prometheus", "ingress-controller", "other-namespace", "same-namespace"],
)
def test_only_monitoring_reaches_the_webs_metrics_port(source, allowed):
    assert reaches(source, PODS["web"], "metrics") is allowed


def test_the_web_serves_metrics_on_the_port_it_declares_and_nothing_routes_there():
    """gunicorn's second listener is METRICS_PORT, the only one answering /metrics; the Service
    (hence the Ingress) sends traffic to the app's port only."""
    [web] = pod_template(k8s_object("Deployment", "web"))["spec"]["containers"]
    [port] = [v["value"] for v in web["env"] if v["name"] == "METRICS_PORT"]
    assert int(port) == PODS["web"].ports["metrics"]
    assert PODS["web"].ports["http"] != PODS["web"].ports["metrics"]
    service = k8s_object("Service", "web")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


@pytest.mark.parametrize(
    ("source", "port", "allowed"),
    [
        (STRANGER, "grpc", True),  # gRPC clients anywhere in the cluster call the Service
        (PODS["web"], "grpc", True),
        (PROMETHEUS, "metrics", True),
        (STRANGER, "metrics", False),
        (INGRESS_CONTROLLER, "metrics", False),
        (PODS["web"], "metrics", False),
    ],
    ids=[
        "client-grpc",
        "web-grpc",
        "prometheus-metrics",
        "client-metrics",
        "ingress-metrics",
        "web-metrics",
    ],
)
def test_grpc_takes_calls_from_the_cluster_and_metrics_from_monitoring_only(source, port, allowed):
    assert reaches(source, PODS["grpc"], port) is allowed


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("web", True),
        ("grpc", True),
        ("migrate", True),
        ("flush-hits", True),
        ("prune-idempotency-keys", True),
        ("send-pending-notifications", True),
        ("prune-security-events", True),
        ("redis", False),
        (INGRESS_CONTROLLER, False),
        (PROMETHEUS, False),
        (NEIGHBOUR, False),
    ],
    ids=str,
)
def test_only_dbapis_processes_reach_postgres(source, allowed):
    source = PODS[source] if isinstance(source, str) else source
    assert reaches(source, PODS["postgres"], "postgres") is allowed


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("web", True),
        ("grpc", True),
        ("flush-hits", True),
        ("migrate", False),
        ("prune-idempotency-keys", False),
        ("send-pending-notifications", False),
        ("prune-security-events", False),
        ("postgres", False),
        (INGRESS_CONTROLLER, False),
        (NEIGHBOUR, False),
    ],
    ids=str,
)
def test_only_the_processes_using_the_cache_reach_redis(source, allowed):
    source = PODS[source] if isinstance(source, str) else source
    assert reaches(source, PODS["redis"], "redis") is allowed


def test_every_policy_selects_pods_and_names_ports_they_have():
    for policy in network_policies():
        selected = [
            pod for pod in PODS.values() if selects(policy["spec"]["podSelector"], pod.labels)
        ]
        assert selected, policy["metadata"]["name"]
        for rule in policy["spec"].get("ingress", []):
            for each in rule.get("ports", []):
                for pod in selected:
                    if isinstance(each["port"], str):
                        assert each["port"] in pod.ports, (policy["metadata"]["name"], pod.name)
                    else:
                        assert each["port"] in pod.ports.values(), (
                            policy["metadata"]["name"],
                            pod.name,
                        )


def test_the_policies_name_the_workloads_that_exist():
    """A name in a policy's `In` list that no workload has would let nobody in, silently."""
    names = {pod.labels["app.kubernetes.io/name"] for pod in PODS.values()}
    for policy in network_policies():
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                for expression in peer.get("podSelector", {}).get("matchExpressions", []):
                    if expression["key"] == "app.kubernetes.io/name":
                        assert set(expression["values"]) <= names


# --- Surviving a node ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["web", "grpc"])
def test_pods_spread_one_per_node(name):
    [constraint] = pod_template(k8s_object("Deployment", name))["spec"]["topologySpreadConstraints"]
    assert constraint["topologyKey"] == "kubernetes.io/hostname"
    assert constraint["maxSkew"] == 1
    assert constraint["whenUnsatisfiable"] == "DoNotSchedule"
    assert constraint["nodeTaintsPolicy"] == "Honor"  # a cordoned node does not block a new pod
    assert selects(constraint["labelSelector"], PODS[name].labels)
    assert not selects(constraint["labelSelector"], PODS["grpc" if name == "web" else "web"].labels)
    assert constraint["matchLabelKeys"] == ["pod-template-hash"]


def test_a_drain_can_take_a_web_pod_but_never_all_of_them():
    budget = k8s_object("PodDisruptionBudget", "web")
    assert selects(budget["spec"]["selector"], PODS["web"].labels)
    fewest = k8s_object("HorizontalPodAutoscaler", "web")["spec"]["minReplicas"]
    assert 1 <= budget["spec"]["minAvailable"] < fewest


def test_a_drain_can_take_one_grpc_pod_at_a_time():
    budget = k8s_object("PodDisruptionBudget", "grpc")
    assert selects(budget["spec"]["selector"], PODS["grpc"].labels)
    replicas = k8s_object("Deployment", "grpc")["spec"]["replicas"]
    assert budget["spec"]["maxUnavailable"] == 1 < replicas


# --- The login paths' rate limit at the Ingress ---------------------------------------------------


def nginx_login_limit() -> tuple[int, int, set[str]]:
    """compose's nginx: requests a minute, burst, and the paths its map limits."""
    config = NGINX_CONF.read_text()
    rate = int(re.search(r"zone=dbapi_login:\S+ rate=(\d+)r/m;", config).group(1))
    burst = int(re.search(r"limit_req zone=dbapi_login burst=(\d+) nodelay;", config).group(1))
    pattern = re.search(r'"~\^/\(([^)]*)\)\$" \$binary_remote_addr;', config).group(1)
    paths = {"/" + alternative for alternative in pattern.split("|")}
    return rate, burst, paths


def test_the_ingress_limits_the_login_paths_as_nginx_does():
    login, web = k8s_object("Ingress", "web-login"), k8s_object("Ingress", "web")
    annotations = login["metadata"]["annotations"]
    rate, burst, paths = nginx_login_limit()
    assert paths == LOGIN_PATHS
    per_minute = int(annotations["nginx.ingress.kubernetes.io/limit-rpm"])
    multiplier = int(annotations["nginx.ingress.kubernetes.io/limit-burst-multiplier"])
    assert (per_minute, per_minute * multiplier) == (rate, burst)
    [rule] = login["spec"]["rules"]
    assert {p["path"] for p in rule["http"]["paths"]} == LOGIN_PATHS
    assert {p["pathType"] for p in rule["http"]["paths"]} == {"Exact"}
    for key in ("ingressClassName", "tls"):
        assert login["spec"][key] == web["spec"][key]
    [web_rule] = web["spec"]["rules"]
    assert rule["host"] == web_rule["host"]
    backends = [p["backend"] for p in rule["http"]["paths"]]
    assert all(b == web_rule["http"]["paths"][0]["backend"] for b in backends)
    body = "nginx.ingress.kubernetes.io/proxy-body-size"
    assert annotations[body] == web["metadata"]["annotations"][body]


def test_the_other_paths_are_not_rate_limited_at_the_ingress():
    annotations = k8s_object("Ingress", "web")["metadata"]["annotations"]
    assert not [key for key in annotations if "/limit-" in key]


# --- Prometheus ---------------------------------------------------------------------------------


def kubelet_environment(container: dict, config: dict[str, str], pod_ip: str) -> dict[str, str]:
    """A container's environment as kubelet builds it: envFrom first, then `env` in order with
    `$(NAME)` expanded from what is defined so far."""
    environment = dict(config)
    for variable in container.get("env", []):
        if "value" in variable:
            value = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                lambda m: environment.get(m.group(1), m.group(0)),
                variable["value"],
            )
        elif variable["valueFrom"].get("fieldRef", {}).get("fieldPath") == "status.podIP":
            value = pod_ip
        else:
            continue
        environment[variable["name"]] = value
    return environment


def test_django_accepts_the_host_prometheus_scrapes_and_the_ingress_host():
    [web] = pod_template(k8s_object("Deployment", "web"))["spec"]["containers"]
    config = k8s_object("ConfigMap", "dbapi-config")["data"]
    environment = kubelet_environment(web, config, pod_ip="10.244.0.17")
    allowed = environment["ALLOWED_HOSTS"].split(",")
    assert validate_host("10.244.0.17", allowed)  # Host: 10.244.0.17:9100, port stripped
    for host in config["ALLOWED_HOSTS"].split(","):
        assert validate_host(host, allowed)
    assert not validate_host("evil.example.net", allowed)


# Every field the PodMonitor uses, as monitoring.coreos.com/v1's CRD declares it; anything else
# (a typo, a field of another kind) fails, as `kubectl apply` would against the real CRD.
_SECRET_KEY_SELECTOR = {
    "type": "object",
    "required": ["key"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "key": {"type": "string"},
        "optional": {"type": "boolean"},
    },
}
_LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "operator"],
                "additionalProperties": False,
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
_DURATION = {
    "type": "string",
    "pattern": (
        r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?"
        r"(([0-9]+)ms)?)$"
    ),
}
POD_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["selector", "podMetricsEndpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": _LABEL_SELECTOR,
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                            "authorization": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "type": {"type": "string"},
                                    "credentials": _SECRET_KEY_SELECTOR,
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def pod_monitor() -> dict:
    [monitor] = [
        doc
        for doc in yaml.safe_load_all((K8S_DIR / "monitoring" / "podmonitor.yaml").read_text())
        if doc
    ]
    return monitor


def test_the_pod_monitor_has_the_crds_shape():
    jsonschema.validate(pod_monitor(), POD_MONITOR_SCHEMA)


def test_the_pod_monitor_schema_refuses_what_the_crd_would():
    """The schema above is strict enough to mean something."""
    broken = pod_monitor()
    broken["spec"]["podMetricsEndpoints"][0]["bearerTokenSecrett"] = {"name": "x", "key": "y"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, POD_MONITOR_SCHEMA)


def test_the_pod_monitor_scrapes_web_and_grpc_on_their_metrics_ports_with_the_token():
    """One endpoint, port `metrics` of each pod: web's answers only with the token (grpc's
    exporter ignores it; its pods hold the same Secret)."""
    monitor = pod_monitor()
    assert monitor["metadata"]["namespace"] == "dbapi"
    selected = {
        name for name, pod in PODS.items() if selects(monitor["spec"]["selector"], pod.labels)
    }
    assert selected == {"web", "grpc"}
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics"
    assert "metrics" in PODS["web"].ports
    assert "metrics" in PODS["grpc"].ports
    assert endpoint["path"] == "/metrics"
    assert endpoint["authorization"]["type"] == "Bearer"
    assert endpoint["authorization"]["credentials"] == {
        "name": "dbapi-secrets",
        "key": "METRICS_TOKEN",
    }
    interval = int(endpoint["interval"].removesuffix("s"))
    assert int(endpoint["scrapeTimeout"].removesuffix("s")) < interval


def test_grpc_serves_its_metrics_on_the_port_it_declares():
    [grpc] = pod_template(k8s_object("Deployment", "grpc"))["spec"]["containers"]
    [bind] = [v["value"] for v in grpc["env"] if v["name"] == "GRPC_METRICS_BIND"]
    host, _, port = bind.rpartition(":")
    assert host == "0.0.0.0"  # noqa: S104 (reachable from Prometheus, not only from the pod)
    assert int(port) == PODS["grpc"].ports["metrics"]


def test_the_monitoring_kustomization_applies_the_pod_monitor():
    kustomization = yaml.safe_load((K8S_DIR / "monitoring" / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["podmonitor.yaml"]
    main = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert "monitoring" not in main["resources"]  # the CRD may be missing: applied on its own


def test_the_cluster_has_every_new_object():
    found = {(doc["kind"], doc["metadata"]["name"]) for doc in DOCUMENTS}
    assert {
        ("NetworkPolicy", "default-deny-ingress"),
        ("NetworkPolicy", "web"),
        ("NetworkPolicy", "grpc"),
        ("NetworkPolicy", "postgres"),
        ("NetworkPolicy", "redis"),
        ("PodDisruptionBudget", "web"),
        ("PodDisruptionBudget", "grpc"),
        ("Ingress", "web-login"),
    } <= found
