"""deploy/k8s/: every object valid for Kubernetes 1.30 (strict: no unknown field, no unknown
kind), and saying what the deployment needs."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
import yaml

from .conftest import (
    K8S_DIR,
    LOCAL_EXAMPLE,
    PRODUCTION_EXAMPLE,
    env_file_values,
    k8s_documents,
    k8s_object,
    load_compose,
)

KUBERNETES_VERSION = "1.30.0"
DOCUMENTS = k8s_documents()


def pod_spec(obj: dict) -> dict:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def container(obj: dict, name: str) -> dict:
    [found] = [c for c in pod_spec(obj)["containers"] if c["name"] == name]
    return found


def dbapi_workloads() -> list[dict]:
    """The objects that run the dbapi image."""
    return [
        doc
        for _, doc in DOCUMENTS
        if doc["kind"] in {"Deployment", "Job", "CronJob", "StatefulSet"}
        and any(c["image"].startswith("dbapi") for c in pod_spec(doc)["containers"])
    ]


@pytest.mark.parametrize(
    "document",
    [doc for _, doc in DOCUMENTS],
    ids=[f"{path.name}:{doc['kind']}/{doc['metadata']['name']}" for path, doc in DOCUMENTS],
)
def test_manifest_is_valid_for_kubernetes(document):
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_deployment_has_every_object_it_needs():
    found = {(doc["kind"], doc["metadata"]["name"]) for _, doc in DOCUMENTS}
    assert {
        ("Namespace", "dbapi"),
        ("ConfigMap", "dbapi-config"),
        ("Deployment", "web"),
        ("Service", "web"),
        ("Ingress", "web"),
        ("HorizontalPodAutoscaler", "web"),
        ("Job", "migrate"),
        ("CronJob", "flush-hits"),
        ("CronJob", "send-pending-notifications"),
        ("CronJob", "prune-security-events"),
        ("Deployment", "grpc"),
        ("Service", "grpc"),
        ("StatefulSet", "postgres"),
        ("Service", "db"),
        ("StatefulSet", "redis"),
        ("Service", "redis"),
    } <= found


def test_everything_is_in_the_dbapi_namespace():
    for _, doc in DOCUMENTS:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "dbapi", doc["metadata"]["name"]


def test_kustomization_applies_every_manifest():
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    files = {path.name for path in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)


def test_web_probes_ask_for_health_with_a_host_django_allows():
    web = container(k8s_object("Deployment", "web"), "web")
    allowed = k8s_object("ConfigMap", "dbapi-config")["data"]["ALLOWED_HOSTS"].split(",")
    probes = {kind: web[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/health/live"
    assert probes["readinessProbe"]["path"] == "/health/ready"
    for probe in [*probes.values(), web["startupProbe"]["httpGet"]]:
        [host] = [h["value"] for h in probe["httpHeaders"] if h["name"] == "Host"]
        assert host in allowed  # kubelet would send the pod's IP, which Django refuses


def test_the_ingress_serves_the_allowed_host_with_the_actions_body_limit():
    ingress = k8s_object("Ingress", "web")
    config = k8s_object("ConfigMap", "dbapi-config")["data"]
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] in config["ALLOWED_HOSTS"].split(",")
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == "web"
    limit = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert limit == "1m"
    assert int(config["ACTIONS_MAX_BODY"]) == 1024 * 1024


def test_web_runs_the_images_gunicorn_and_waits_for_the_migrations():
    spec = pod_spec(k8s_object("Deployment", "web"))
    web = container(k8s_object("Deployment", "web"), "web")
    assert "command" not in web  # the image's CMD
    assert "args" not in web
    assert web["ports"] == [
        {"name": "http", "containerPort": 8000},
        {"name": "metrics", "containerPort": 9100},  # gunicorn's METRICS_PORT listener
    ]
    [wait] = spec["initContainers"]
    assert "manage.py migrate --check" in " ".join(wait["command"])
    graceful = int(k8s_object("ConfigMap", "dbapi-config")["data"]["GUNICORN_GRACEFUL_TIMEOUT"])
    assert spec["terminationGracePeriodSeconds"] > graceful + 5  # preStop sleeps 5 s first


def test_the_autoscaler_owns_the_web_replicas():
    hpa = k8s_object("HorizontalPodAutoscaler", "web")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "web",
    }
    assert hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]  # room to scale
    assert "replicas" not in k8s_object("Deployment", "web")["spec"]


def test_at_the_fewest_web_pods_a_drain_and_a_crash_at_once_leave_one_serving():
    """What the autoscaler's floor is for: a drain may evict what the disruption budget spares,
    and a pod crashing meanwhile still leaves one to answer."""
    fewest = k8s_object("HorizontalPodAutoscaler", "web")["spec"]["minReplicas"]
    kept = k8s_object("PodDisruptionBudget", "web")["spec"]["minAvailable"]
    evicted = fewest - kept
    assert evicted >= 1  # the drain can proceed
    assert fewest - evicted - 1 >= 1  # and one crash during it leaves one pod serving


def test_migrate_job_runs_the_migrations():
    migrate = container(k8s_object("Job", "migrate"), "migrate")
    assert migrate["command"] == ["python", "manage.py", "migrate", "--noinput"]


def cron_interval(schedule: str) -> int:
    """Seconds between the runs of a schedule that fires every N minutes (`*/N * * * *`)."""
    minute, *rest = schedule.split()
    assert rest == ["*"] * 4, schedule
    return 60 * (1 if minute == "*" else int(minute.removeprefix("*/")))


def test_flush_hits_risks_no_more_hits_than_compose_and_never_runs_twice_at_once():
    """The hits a Redis restart loses are those since the last flush: Kubernetes flushes at
    least as often as compose does (FLUSH_HITS_EVERY's default), one flush at a time."""
    cronjob = k8s_object("CronJob", "flush-hits")
    [loop] = load_compose()["services"]["flush_hits"]["command"][2:]
    compose_every = int(re.search(r"sleep (\d+);", loop)[1])
    assert cron_interval(cronjob["spec"]["schedule"]) <= compose_every
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    flusher = container(cronjob, "flush-hits")
    assert flusher["command"] == ["python", "manage.py", "flush_hits"]


def test_pending_notifications_are_sent_every_five_minutes_never_two_at_once():
    cronjob = k8s_object("CronJob", "send-pending-notifications")
    assert cronjob["spec"]["schedule"] == "*/5 * * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    sender = container(cronjob, "send-pending-notifications")
    assert sender["command"] == ["python", "manage.py", "send_pending_notifications"]


def test_security_events_are_pruned_daily_keeping_a_year():
    cronjob = k8s_object("CronJob", "prune-security-events")
    assert cronjob["spec"]["schedule"] == "41 3 * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pruner = container(cronjob, "prune-security-events")
    assert pruner["command"] == ["python", "manage.py", "prune_security_events", "--days", "365"]


def test_grpc_uses_kubernetes_native_grpc_probes_on_its_port():
    grpc = container(k8s_object("Deployment", "grpc"), "grpc")
    assert grpc["command"] == ["python", "manage.py", "grpcserver", "--bind", "0.0.0.0:50051"]
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert grpc[kind]["grpc"] == {"port": 50051}  # service "": the whole server
    service = k8s_object("Service", "grpc")
    assert service["spec"]["ports"][0]["port"] == 50051


def test_redis_has_aof_on_and_both_stores_keep_data_on_volumes():
    redis = container(k8s_object("StatefulSet", "redis"), "redis")
    assert "--appendonly yes" in " ".join(redis["command"])
    for name in ("redis", "postgres"):
        assert k8s_object("StatefulSet", name)["spec"]["volumeClaimTemplates"]


def test_every_dbapi_container_has_resources_and_runs_as_the_images_user():
    for workload in dbapi_workloads():
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsUser"] == 10001
        assert spec["securityContext"]["runAsNonRoot"] is True
        for each in spec["containers"] + spec.get("initContainers", []):
            assert {"requests", "limits"} <= each["resources"].keys(), each["name"]
            assert each["securityContext"]["allowPrivilegeEscalation"] is False
            assert each["envFrom"] == [
                {"configMapRef": {"name": "dbapi-config"}},
                {"secretRef": {"name": "dbapi-secrets"}},
            ]


@pytest.mark.parametrize(
    "example", [LOCAL_EXAMPLE, PRODUCTION_EXAMPLE], ids=["local", "production"]
)
def test_configmap_sets_only_documented_variables(example):
    """(The Secret is the operator's, made by the README's commands: test_secrets.py.)"""
    documented = set(env_file_values(example)) | {
        line.split("=", 1)[0].lstrip("# ")
        for line in example.read_text().splitlines()
        if line.startswith("# ") and "=" in line
    }
    keys = set(k8s_object("ConfigMap", "dbapi-config")["data"])
    assert keys - documented == set()
