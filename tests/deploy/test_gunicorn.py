"""config/gunicorn.conf.py: the image's server, whose every log line is one JSON object."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.servers import PROJECT_DIR, gunicorn, project_env

from .conftest import (
    GUNICORN_CONF,
    LOCAL_EXAMPLE,
    PRODUCTION_EXAMPLE,
    LogLines,
    k8s_object,
    load_compose,
)


def resolved_config(*args: str, **environ: str) -> dict[str, str]:
    """gunicorn's own view of its settings (`--print-config`, which also loads the app), in a
    clean environment with no env file."""
    env = {
        "PATH": os.environ["PATH"],
        "ENVIRONMENT": "no-such-environment",
        "SECRET_KEY": "print-config-" + "k" * 50,
        "OTP_ENCRYPTION_KEYS": "print0config0only0not0a0real0key00000000000=",
        **environ,
    }
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "--print-config", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pairs = (re.match(r"(\w+)\s+= (.*)", line) for line in result.stdout.splitlines())
    return {m.group(1): m.group(2) for m in pairs if m}


def test_defaults_are_sync_workers_on_loopback_with_json_logs():
    config = resolved_config()
    assert config["wsgi_app"] == "config.wsgi"
    assert config["bind"] == "['127.0.0.1:8000']"
    assert int(config["workers"]) >= 2  # one slow call does not hold every other one up
    assert config["worker_class"] == "sync"
    assert config["logger_class"] == "apps.core.gunicorn_logger.JsonLogger"
    assert config["accesslog"] == "-"


def test_by_default_requests_in_flight_finish_before_the_container_is_killed():
    """gunicorn's default graceful timeout fits in what compose and Kubernetes give a stopping
    container (Kubernetes' preStop sleeps 5 s first), and in the worker timeout."""
    config = resolved_config()
    graceful = int(config["graceful_timeout"])
    compose = load_compose()["services"]
    pod = k8s_object("Deployment", "web")["spec"]["template"]["spec"]
    for name in ("web", "grpc"):
        assert int(compose[name]["stop_grace_period"].removesuffix("s")) > graceful
    assert pod["terminationGracePeriodSeconds"] > graceful + 5
    assert graceful < int(config["timeout"])


def test_a_worker_outlives_any_wait_for_the_database_and_the_proxies_outlive_the_worker():
    """A worker waiting for a database that stopped answering gets its 503 out before gunicorn
    kills it (DB_TIMEOUT, or an action's 30 s allowance + DB_TIMEOUT + the 2 s probe), and
    nginx and the ingress wait for gunicorn's answer rather than answering 504 first."""
    worker_timeout = int(resolved_config()["timeout"])
    nginx = (PROJECT_DIR / "deploy" / "nginx" / "nginx.conf").read_text()
    ingress = (PROJECT_DIR / "deploy" / "k8s" / "ingress.yaml").read_text()
    configmap = (PROJECT_DIR / "deploy" / "k8s" / "configmap.yaml").read_text()
    assert worker_timeout > 30 + 10 + 2
    assert re.search(r'GUNICORN_TIMEOUT: "(\d+)"', configmap)[1] == str(worker_timeout)
    for read_timeout in re.findall(r"proxy_read_timeout (\d+)s;", nginx):
        assert int(read_timeout) > worker_timeout
    assert int(re.search(r'proxy-read-timeout: "(\d+)"', ingress)[1]) > worker_timeout


def test_the_environment_sets_workers_bind_timeouts_and_trusted_proxies():
    config = resolved_config(
        WEB_CONCURRENCY="5",
        GUNICORN_BIND="0.0.0.0:8000",
        GUNICORN_TIMEOUT="45",
        GUNICORN_GRACEFUL_TIMEOUT="20",
        FORWARDED_ALLOW_IPS="*",
        LOG_LEVEL="WARNING",
    )
    assert config["workers"] == "5"
    assert config["bind"] == "['0.0.0.0:8000']"
    assert config["timeout"] == "45"
    assert config["graceful_timeout"] == "20"
    assert config["forwarded_allow_ips"] == "['*']"
    assert config["loglevel"] == "warning"


def test_metrics_port_adds_a_listener_on_the_apps_interfaces():
    """The listener where /metrics answers (METRICS_PORT), beside the app's; none without it."""
    config = resolved_config(GUNICORN_BIND="0.0.0.0:8000", METRICS_PORT="9100")
    assert config["bind"] == "['0.0.0.0:8000', '0.0.0.0:9100']"
    assert resolved_config(METRICS_PORT="9100")["bind"] == "['127.0.0.1:8000', '127.0.0.1:9100']"


def test_command_line_bind_and_workers_win_over_the_file():
    """What the tests and bench/harness.py rely on: their own port and worker count."""
    config = resolved_config("--bind", "127.0.0.1:9", "--workers", "3", WEB_CONCURRENCY="5")
    assert config["bind"] == "['127.0.0.1:9']"
    assert config["workers"] == "3"


@pytest.mark.parametrize(
    "example", [LOCAL_EXAMPLE, PRODUCTION_EXAMPLE], ids=["local", "production"]
)
def test_every_variable_the_gunicorn_config_reads_is_documented(example):
    read = set(re.findall(r"""os\.environ\.get\("([A-Z_0-9]+)\"""", GUNICORN_CONF.read_text()))
    documented = set(re.findall(r"^#? ?([A-Z_0-9]+)=", example.read_text(), flags=re.M))
    assert read - documented == set()


@pytest.fixture(scope="module")
def logged_gunicorn(django_db_setup, tmp_path_factory):
    """gunicorn started as the image starts it (the config file), on a free loopback port: one
    for the module, whose tests each find their own lines by request id."""
    folder = tmp_path_factory.mktemp("logged-gunicorn")
    log_path = folder / "stdout.log"
    static_root = folder / "static"
    static_root.mkdir()  # the image has its collected files; an empty folder is enough here
    env = project_env(STATIC_ROOT=str(static_root))
    args = ("--config", str(GUNICORN_CONF))
    with log_path.open("w") as stdout, gunicorn(env=env, args=args, stdout=stdout) as base_url:
        yield base_url, LogLines(log_path)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_access_lines_are_json_with_the_request_id_method_path_status_and_duration(logged_gunicorn):
    base_url, log = logged_gunicorn
    request = urllib.request.Request(
        f"{base_url}/health/ready?probe=1", headers={"X-Request-ID": "deploy-test-1"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200

    line = log.wait_for(logger="gunicorn.access", request_id="deploy-test-1")
    assert line["level"] == "INFO"
    assert line["message"] == "GET /health/ready 200"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/health/ready", 200)
    assert isinstance(line["duration"], float)
    assert 0 < line["duration"] < 10
    assert line["timestamp"].endswith("+00:00")
    assert "probe=1" not in json.dumps(line)  # query strings may carry secrets: never logged


def test_a_request_without_an_id_is_logged_with_the_one_it_was_given(logged_gunicorn):
    base_url, log = logged_gunicorn
    with urllib.request.urlopen(f"{base_url}/health/live", timeout=10) as response:
        given = response.headers["X-Request-ID"]
    assert given
    line = log.wait_for(logger="gunicorn.access", request_id=given)
    assert line["status"] == 200


def test_the_apps_lines_and_gunicorns_own_share_the_stream_and_the_shape(logged_gunicorn):
    base_url, log = logged_gunicorn
    request = urllib.request.Request(
        f"{base_url}/no/such/page", headers={"X-Request-ID": "deploy-test-404"}
    )
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=10)

    django_line = log.wait_for(logger="django.request", request_id="deploy-test-404")
    access_line = log.wait_for(logger="gunicorn.access", request_id="deploy-test-404")
    assert django_line["level"] == "WARNING"
    assert access_line["status"] == 404
    started = log.wait_for(logger="gunicorn.error")
    assert started["level"] == "INFO"
    assert started["request_id"] is None
    for record in log.records():  # every line parsed as JSON, and each has the common fields
        assert {"timestamp", "level", "logger", "message", "request_id"} <= record.keys()
