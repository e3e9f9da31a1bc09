"""Every deployment YAML passes yamllint (.yamllint.yaml); deploy/filebeat.yml ships the JSON
lines to Elasticsearch, decoded."""

from __future__ import annotations

import subprocess

import yaml

from tests.servers import PROJECT_DIR

from .conftest import COMPOSE_FILE, FILEBEAT_FILE, K8S_DIR, tool

YAML_FILES = [
    COMPOSE_FILE,
    FILEBEAT_FILE,
    PROJECT_DIR / ".yamllint.yaml",
    *sorted(K8S_DIR.rglob("*.yaml")),
]


def test_yamllint_passes_on_every_deployment_file():
    result = subprocess.run(
        [tool("yamllint"), "--strict", *map(str, YAML_FILES)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def filebeat() -> dict:
    return yaml.safe_load(FILEBEAT_FILE.read_text())


def processors(name: str) -> list[dict]:
    return [p[name] for p in filebeat()["processors"] if name in p]


def test_filebeat_reads_the_containers_stdout_logs():
    inputs = {i["id"]: i for i in filebeat()["filebeat.inputs"]}
    docker = inputs["dbapi-docker"]
    assert docker["enabled"] is True
    assert docker["paths"] == ["/var/lib/docker/containers/*/*.log"]
    assert {"container"} <= {key for parser in docker["parsers"] for key in parser}
    assert inputs["dbapi-kubernetes"]["paths"] == ["/var/log/containers/*_dbapi_*.log"]


def test_filebeat_decodes_the_json_lines_and_uses_their_timestamp():
    [decode] = processors("decode_json_fields")
    assert decode["fields"] == ["message"]
    assert decode["target"] == "dbapi"
    [timestamp] = processors("timestamp")
    assert timestamp["field"] == "dbapi.timestamp"


def test_filebeat_ships_to_elasticsearch():
    output = filebeat()["output.elasticsearch"]
    assert "ELASTICSEARCH_HOSTS" in output["hosts"]
