"""Each secret has one documented place, and deploying never overwrites it.

Kubernetes: no manifest holds or generates a Secret, so `kubectl apply -k deploy/k8s` cannot
replace the one the operator created; the README's commands are run as written, in order,
against a stand-in `kubectl` that keeps the cluster's state and refuses what the API server
would (a namespaced object before its namespace, a second `create` of the same Secret). Compose:
the database password is one variable, and the README's commands are run the same way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.servers import PROJECT_DIR

from .conftest import (
    COMPOSE_FILE,
    K8S_DIR,
    LOCAL_EXAMPLE,
    PRODUCTION_EXAMPLE,
    MissingComposeVariable,
    env_file_values,
    interpolate,
    k8s_documents,
    load_compose,
)

README = PROJECT_DIR / "README.md"
APP_SERVICES = (
    "web",
    "grpc",
    "flush_hits",
    "prune_idempotency_keys",
    "migrate",
    "send_pending_notifications",
    "prune_security_events",
)


def readme_block(heading: str) -> str:
    """The first ```sh block under a README heading."""
    text = README.read_text()
    section = text[text.index(f"\n{heading}\n") :]
    return re.search(r"```sh\n(.*?)```", section, flags=re.S).group(1)


def kustomization_documents(directory: Path) -> list[dict]:
    """Every object `kubectl apply -k directory` sends, nested kustomizations included."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    documents = []
    for resource in kustomization["resources"]:
        path = directory / resource
        if path.is_dir():
            documents += kustomization_documents(path)
        else:
            documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


# --- Kubernetes -------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", [K8S_DIR, K8S_DIR / "monitoring"], ids=["k8s", "monitoring"])
def test_applying_the_manifests_never_replaces_a_secret(directory):
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert "secretGenerator" not in kustomization
    kinds = {doc["kind"] for doc in kustomization_documents(directory)}
    assert "Secret" not in kinds


def test_no_manifest_in_deploy_holds_a_secret_value():
    """Not even one left out of the kustomization, to be copied and applied by hand."""
    for path in sorted((PROJECT_DIR / "deploy").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert not (doc and doc.get("kind") == "Secret"), path


def secret_references() -> set[tuple[str, str | None]]:
    """(Secret name, key) of every reference in the manifests; key None for a whole envFrom."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            if "secretRef" in node:
                found.add((node["secretRef"]["name"], None))
            if "secretKeyRef" in node:
                found.add((node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]))
            if node.get("credentials", {}).get("key"):  # a PodMonitor's authorization
                found.add((node["credentials"]["name"], node["credentials"]["key"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for directory in (K8S_DIR, K8S_DIR / "monitoring"):
        for doc in kustomization_documents(directory):
            walk(doc)
    return found


class FakeCluster:
    """A directory of stand-in commands (kubectl, minikube, curl) on PATH; kubectl keeps the
    objects it was given in a JSON file, as an API server would keep them."""

    KUBECTL = textwrap.dedent(
        '''\
        #!PYTHON
        """kubectl for the README test: namespaces, Secrets and applied objects, in a JSON file."""
        import json, os, sys
        from pathlib import Path

        import yaml

        state_path = Path(os.environ["FAKE_CLUSTER_STATE"])
        state = json.loads(state_path.read_text())
        args = sys.argv[1:]
        namespace = "default"
        for flag in ("-n", "--namespace"):
            if flag in args:
                at = args.index(flag)
                namespace = args[at + 1]
                del args[at : at + 2]


        def fail(message):
            sys.stderr.write(f"Error from server: {message}\\n")
            sys.exit(1)


        def documents_of(directory):
            kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
            if kustomization.get("secretGenerator"):
                fail("the fake cluster does not run kustomize's secretGenerator")
            found = []
            for resource in kustomization["resources"]:
                path = directory / resource
                found += documents_of(path) if path.is_dir() else [
                    doc for doc in yaml.safe_load_all(path.read_text()) if doc
                ]
            return found


        def apply(documents):
            # kustomize and kubectl send Namespaces first
            documents.sort(key=lambda doc: doc["kind"] != "Namespace")
            for doc in documents:
                name = doc["metadata"]["name"]
                if doc["kind"] == "Namespace":
                    state["namespaces"].append(name)
                    continue
                where = doc["metadata"].get("namespace", namespace)
                if where not in state["namespaces"]:
                    fail(f'namespaces "{where}" not found')
                key = f"{doc['kind']}/{where}/{name}"
                if doc["kind"] == "Secret" and key in state["secrets"]:
                    state["replaced"].append(key)
                state["applied"].append(key)


        state["commands"].append(sys.argv[1:])
        if args[:2] == ["apply", "-f"]:
            apply([doc for doc in yaml.safe_load_all(Path(args[2]).read_text()) if doc])
        elif args[:2] == ["apply", "-k"]:
            apply(documents_of(Path(args[2])))
        elif args[:2] == ["create", "namespace"]:
            state["namespaces"].append(args[2])
        elif args[:3] == ["create", "secret", "generic"]:
            if namespace not in state["namespaces"]:
                fail(f'namespaces "{namespace}" not found')
            key = f"Secret/{namespace}/{args[3]}"
            if key in state["secrets"]:
                fail(f'secrets "{args[3]}" already exists')
            data = {}
            for arg in args[4:]:
                if arg.startswith("--from-literal="):
                    name, _, value = arg.removeprefix("--from-literal=").partition("=")
                    data[name] = value
                else:
                    fail(f"the fake cluster does not know {arg}")
            state["secrets"][key] = data
        state_path.write_text(json.dumps(state))
        '''
    )

    def __init__(self, folder: Path):
        self.bin = folder / "bin"
        self.bin.mkdir()
        self.state_path = folder / "cluster.json"
        self.state_path.write_text(
            json.dumps(
                {"namespaces": [], "secrets": {}, "applied": [], "replaced": [], "commands": []}
            )
        )
        kubectl = self.bin / "kubectl"
        kubectl.write_text(self.KUBECTL.replace("#!PYTHON", f"#!{sys.executable}"))
        kubectl.chmod(0o755)
        for name, script in {
            "minikube": 'if [ "$1" = ip ]; then echo 192.168.49.2; fi',
            "curl": "exit 0",
        }.items():
            path = self.bin / name
            path.write_text(f"#!/bin/sh\n{script}\n")
            path.chmod(0o755)

    def run(self, script: str) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "FAKE_CLUSTER_STATE": str(self.state_path),
        }
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    @property
    def state(self) -> dict:
        return json.loads(self.state_path.read_text())


@pytest.fixture
def cluster(tmp_path) -> FakeCluster:
    return FakeCluster(tmp_path)


def test_the_readmes_kubernetes_commands_work_as_written_in_their_order(cluster):
    result = cluster.run(readme_block("### On Kubernetes"))
    assert result.returncode == 0, result.stderr
    state = cluster.state
    assert state["replaced"] == []  # apply -k left the operator's Secret alone
    applied = set(state["applied"])
    for doc in kustomization_documents(K8S_DIR):
        if doc["kind"] != "Namespace":
            assert f"{doc['kind']}/dbapi/{doc['metadata']['name']}" in applied
    secret = state["secrets"]["Secret/dbapi/dbapi-secrets"]
    references = secret_references()
    assert {name for name, _ in references} == {"dbapi-secrets"}
    assert {key for _, key in references if key} <= set(secret)


def test_the_readmes_secret_holds_fresh_values_that_agree(cluster):
    assert cluster.run(readme_block("### On Kubernetes")).returncode == 0
    secret = cluster.state["secrets"]["Secret/dbapi/dbapi-secrets"]
    assert len(secret["SECRET_KEY"]) >= 50
    for example in (LOCAL_EXAMPLE, PRODUCTION_EXAMPLE):
        assert secret["SECRET_KEY"] not in example.read_text()
    url = urlsplit(secret["DATABASE_URL"])
    assert url.password == secret["POSTGRES_PASSWORD"]  # one generated value, given to both
    assert len(secret["POSTGRES_PASSWORD"]) >= 32
    assert (url.hostname, url.username) == ("db", "dbapi")
    assert len(secret["METRICS_TOKEN"]) >= 32


def test_creating_the_secret_before_its_namespace_fails_as_a_cluster_would(cluster):
    """What the stand-in refuses, so that the test above means something."""
    block = readme_block("### On Kubernetes").replace(
        "kubectl apply -f deploy/k8s/namespace.yaml", "true"
    )
    result = cluster.run(block)
    assert result.returncode != 0
    assert 'namespaces "dbapi" not found' in result.stderr


def test_a_secret_in_the_kustomization_would_be_caught_replacing_the_operators(cluster, tmp_path):
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: dbapi-secrets, namespace: dbapi}\n"
        "stringData: {SECRET_KEY: CHANGE-me}\n"
    )
    (overlay / "kustomization.yaml").write_text("resources: [secret.yaml]\n")
    block = readme_block("### On Kubernetes") + f"\nkubectl apply -k {overlay}\n"
    assert cluster.run(block).returncode == 0
    assert cluster.state["replaced"] == ["Secret/dbapi/dbapi-secrets"]


def test_the_readme_says_postgres_reads_its_password_only_on_a_new_volume():
    text = " ".join(README.read_text().split())
    assert "PostgreSQL reads `POSTGRES_PASSWORD` only when it creates the `pgdata` volume" in text
    assert "ALTER ROLE dbapi PASSWORD" in text
    postgres = (K8S_DIR / "postgres.yaml").read_text()
    assert "PostgreSQL reads it only when it initialises an empty volume" in postgres


def test_every_secret_setting_documented_in_the_examples_is_not_in_the_configmap():
    configmap = next(doc for _, doc in k8s_documents() if doc["kind"] == "ConfigMap")
    for secret in ("SECRET_KEY", "DATABASE_URL", "METRICS_TOKEN", "POSTGRES_PASSWORD"):
        assert secret not in configmap["data"]


# --- Compose ----------------------------------------------------------------------------------


def database_urls(compose: dict) -> dict[str, str]:
    return {name: compose["services"][name]["environment"]["DATABASE_URL"] for name in APP_SERVICES}


def test_compose_takes_the_database_password_from_one_variable():
    compose = load_compose({"POSTGRES_PASSWORD": "the-one-password"})
    services = compose["services"]
    assert services["db"]["environment"]["POSTGRES_PASSWORD"] == "the-one-password"
    assert services["pgbouncer"]["environment"]["DB_PASSWORD"] == "the-one-password"
    for name, url in database_urls(compose).items():
        assert urlsplit(url).password == "the-one-password", name
    assert "POSTGRES_PASSWORD:-" not in COMPOSE_FILE.read_text()  # no default to forget


def test_compose_sets_the_apps_database_url_over_the_env_file():
    """The example's DATABASE_URL (and its placeholder password) is never what an app uses."""
    assert "DATABASE_URL" in env_file_values(PRODUCTION_EXAMPLE)
    compose = load_compose()
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["env_file"] == "env/production/.env"
        assert "CHANGE" not in service["environment"]["DATABASE_URL"]


def test_compose_refuses_to_start_without_the_database_password():
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    with pytest.raises(MissingComposeVariable, match="POSTGRES_PASSWORD"):
        interpolate(raw, {})
    with pytest.raises(MissingComposeVariable, match="POSTGRES_PASSWORD"):
        interpolate(raw, {"POSTGRES_PASSWORD": ""})


@pytest.fixture
def clone(tmp_path) -> Path:
    """What the README's compose commands need of a fresh clone, in a folder of its own, with
    stand-ins for docker and git."""
    folder = tmp_path / "clone"
    (folder / "env" / "production").mkdir(parents=True)
    shutil.copy(PRODUCTION_EXAMPLE, folder / "env" / "production" / ".env.example")
    shutil.copy(COMPOSE_FILE, folder / "compose.yaml")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("docker", "git", "curl"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / name).chmod(0o755)
    return folder


def run_in_clone(clone: Path, script: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{clone.parent / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_readmes_compose_commands_make_the_one_database_password(clone):
    block = readme_block("### With compose (one host)")
    result = run_in_clone(clone, block)
    assert result.returncode == 0, result.stderr
    dot_env = env_file_values(clone / ".env")
    assert set(dot_env) == {"POSTGRES_PASSWORD"}
    assert len(dot_env["POSTGRES_PASSWORD"]) >= 32
    compose = load_compose(dot_env=dot_env)
    assert (
        compose["services"]["db"]["environment"]["POSTGRES_PASSWORD"]
        == (dot_env["POSTGRES_PASSWORD"])
    )
    assert (clone / "env" / "production" / ".env").exists()


def test_running_the_readmes_compose_commands_again_keeps_the_password(clone):
    """PostgreSQL keeps the first password in pgdata: a second one would lock the apps out."""
    block = readme_block("### With compose (one host)")
    assert run_in_clone(clone, block).returncode == 0
    first = (clone / ".env").read_text()
    assert run_in_clone(clone, block).returncode == 0
    assert (clone / ".env").read_text() == first
