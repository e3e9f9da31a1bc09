"""deploy/nginx/nginx.conf: checked by `nginx -t`, then run by a real nginx in front of gunicorn.

Outside Docker only two things differ, and the tests replace just those: the port nginx listens
on and the address of the `web` upstream (an address, so no DNS resolver is needed).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.servers import free_port, gunicorn, project_env

from .conftest import (
    GUNICORN_CONF,
    NGINX_CONF,
    PRODUCTION_EXAMPLE,
    LogLines,
    env_file_values,
    fetch,
    load_compose,
    nginx_binary,
    nginx_prefix,
    running_nginx,
)

NGINX_ID = re.compile(r"[0-9a-f]{32}")  # nginx's $request_id
METRICS_TOKEN = "metrics-token-for-the-nginx-tests"


def config_value(directive: str) -> str:
    match = re.search(rf"^\s*{directive}\s+([^;]+);", NGINX_CONF.read_text(), flags=re.M)
    assert match, f"{directive} is not set in {NGINX_CONF}"
    return " ".join(match.group(1).split())


def size_in_bytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmM]?)", value).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit.lower()]


# --- The file -------------------------------------------------------------------------------


def test_nginx_t_passes_on_the_config_as_shipped():
    """Unchanged: `web` is looked up per request through the resolver, so -t needs no DNS."""
    prefix = nginx_prefix()
    try:
        result = subprocess.run(
            [nginx_binary(), "-t", "-p", f"{prefix}/", "-e", "stderr", "-c", str(NGINX_CONF)],
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_body_limit_is_actions_max_body():
    limit = size_in_bytes(config_value("client_max_body_size"))
    assert limit == settings.ACTIONS_MAX_BODY == 1024 * 1024
    assert limit == int(env_file_values(PRODUCTION_EXAMPLE)["ACTIONS_MAX_BODY"])
    assert f"The body may be at most {limit} bytes." in NGINX_CONF.read_text()


def test_gzip_covers_json_and_problem_json():
    assert config_value("gzip") == "on"
    types = config_value("gzip_types").split()
    assert {"application/json", "application/problem+json"} <= set(types)


def test_compose_mounts_this_file_and_runs_nginx_with_a_prefix():
    nginx = load_compose()["services"]["nginx"]
    assert "./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert nginx["command"][:3] == ["nginx", "-p", "/var/cache/nginx/"]


# --- Running in front of gunicorn -------------------------------------------------------------


@dataclass
class Stack:
    nginx_url: str
    app_url: str
    app_log: LogLines
    proxy_log: LogLines


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory) -> Iterator[Stack]:
    """nginx in front of one gunicorn started with config/gunicorn.conf.py, for the module
    (on the test database, which django_db_setup creates)."""
    folder = tmp_path_factory.mktemp("stack")
    (folder / "static").mkdir()
    app_log = folder / "gunicorn.log"
    # A metrics token, and no METRICS_PORT: gunicorn itself would answer /metrics here.
    env = project_env(STATIC_ROOT=str(folder / "static"), METRICS_TOKEN=METRICS_TOKEN)
    args = ("--config", str(GUNICORN_CONF))
    with (
        app_log.open("w") as stdout,
        gunicorn(env=env, args=args, stdout=stdout) as app_url,
        running_nginx(upstream=urlsplit(app_url).netloc) as nginx,
    ):
        yield Stack(nginx.url, app_url, LogLines(app_log), nginx.access_log)


def test_the_clients_request_id_goes_through_to_django_and_back(stack):
    answer = fetch(stack.nginx_url, "/health/live", headers={"X-Request-ID": "from-client-1"})
    assert answer.status == 200
    assert answer.headers.get_all("X-Request-ID") == ["from-client-1"]
    assert stack.app_log.wait_for(logger="gunicorn.access", request_id="from-client-1")
    proxy_line = stack.proxy_log.wait_for(request_id="from-client-1")
    assert proxy_line["logger"] == "nginx.access"
    assert (proxy_line["method"], proxy_line["path"], proxy_line["status"]) == (
        "GET",
        "/health/live",
        200,
    )
    assert isinstance(proxy_line["duration"], int | float)


def test_without_an_id_nginx_makes_one_and_django_keeps_it(stack):
    answer = fetch(stack.nginx_url, "/health/live")
    [request_id] = answer.headers.get_all("X-Request-ID")
    assert NGINX_ID.fullmatch(request_id)
    assert stack.app_log.wait_for(logger="gunicorn.access", request_id=request_id)
    assert stack.proxy_log.wait_for(request_id=request_id)


def test_an_id_django_would_refuse_is_replaced_at_the_door(stack):
    answer = fetch(stack.nginx_url, "/health/live", headers={"X-Request-ID": "has spaces"})
    [request_id] = answer.headers.get_all("X-Request-ID")
    assert NGINX_ID.fullmatch(request_id)
    assert stack.app_log.wait_for(logger="gunicorn.access", request_id=request_id)


def test_nginx_masks_the_same_secret_paths_as_the_application():
    config = NGINX_CONF.read_text()
    for prefix in settings.LOG_MASKED_PATH_PREFIXES:
        assert f'"~(?s)^(?<dbapi_path_kept>{prefix}).+" "${{dbapi_path_kept}}[masked]";' in config


def test_the_one_time_code_in_the_check_path_never_reaches_a_log(stack):
    answer = fetch(
        stack.nginx_url, "/api/v1/otp/check/493817", headers={"X-Request-ID": "code-in-path"}
    )
    assert answer.status == 401  # no token: still logged, by nginx, gunicorn and Django
    access = stack.app_log.wait_for(logger="gunicorn.access", request_id="code-in-path")
    assert access["path"] == "/api/v1/otp/check/[masked]"
    assert stack.app_log.wait_for(logger="django.request", request_id="code-in-path")
    proxy = stack.proxy_log.wait_for(request_id="code-in-path")
    assert proxy["path"] == "/api/v1/otp/check/[masked]"
    assert "493817" not in stack.app_log.path.read_text()
    assert "493817" not in stack.proxy_log.path.read_text()


@pytest.mark.parametrize(
    "secret",
    ["%20qzxwvu", "%09qzxwvu", "qzx%20wvu", "qzx%2Fwvu", "%0Aqzxwvu", "qz%78wvu", "qzx/wvu"],
)
def test_a_code_however_encoded_never_reaches_a_log(stack, secret):
    """Whatever follows the prefix is masked, decoded or not (a backup code's letters, which
    nothing else in a log line holds)."""
    for path in (f"/api/v1/otp/check/{secret}", f"/api/v1/otp/%63heck/{secret}"):
        request_id = f"encoded-{abs(hash(path))}"
        fetch(stack.nginx_url, path, headers={"X-Request-ID": request_id})
        access = stack.app_log.wait_for(logger="gunicorn.access", request_id=request_id)
        assert access["path"] == "/api/v1/otp/check/[masked]"
        assert stack.app_log.wait_for(logger="django.request", request_id=request_id)
        proxy = stack.proxy_log.wait_for(request_id=request_id)
        assert proxy["path"] == "/api/v1/otp/check/[masked]"
    logs = stack.app_log.path.read_text() + stack.proxy_log.path.read_text()
    for piece in ("qzx", "wvu", "%78"):
        assert piece not in logs


def test_metrics_are_a_404_problem_through_nginx_even_with_the_token(stack):
    """Prometheus scrapes gunicorn's metrics listener from the monitoring network; the public
    door never serves them, even from an app that would (no METRICS_PORT here)."""
    token = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert fetch(stack.app_url, "/metrics", headers=token).status == 200
    for path in ("/metrics", "/metrics?format=text", "//metrics", "/./metrics"):
        answer = fetch(stack.nginx_url, path, headers={**token, "X-Request-ID": "scrape-1"})
        assert answer.status == 404, path
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.headers.get_all("X-Request-ID") == ["scrape-1"]
        document = json.loads(answer.body)
        assert (document["status"], document["request_id"]) == (404, "scrape-1")
        assert b"dbapi_" not in answer.body


def test_forwarded_for_reaches_gunicorn(stack):
    fetch(stack.nginx_url, "/health/live", headers={"X-Request-ID": "forwarded-1"})
    line = stack.app_log.wait_for(logger="gunicorn.access", request_id="forwarded-1")
    assert line["forwarded_for"] == "127.0.0.1"


def test_json_answers_are_gzipped(stack):
    answer = fetch(
        stack.nginx_url,
        "/api/schema/",
        headers={"Accept": "application/json", "Accept-Encoding": "gzip"},
    )
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in answer.headers["Vary"]
    assert json.loads(gzip.decompress(answer.body))["openapi"].startswith("3.")


def test_a_body_over_the_limit_is_a_413_problem_from_nginx(stack):
    answer = fetch(
        stack.nginx_url,
        "/actions/example/bar",
        method="POST",
        headers={"Content-Type": "application/json", "X-Request-ID": "too-large-1"},
        body=b" " * (settings.ACTIONS_MAX_BODY + 1),
    )
    assert answer.status == 413
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.headers.get_all("X-Request-ID") == ["too-large-1"]
    assert answer.json() == {
        "type": "about:blank",
        "title": "Request Entity Too Large",
        "status": 413,
        "detail": f"The body may be at most {settings.ACTIONS_MAX_BODY} bytes.",
        "request_id": "too-large-1",
    }
    assert stack.proxy_log.wait_for(request_id="too-large-1")["status"] == 413
    app_ids = {line.get("request_id") for line in stack.app_log.records()}
    assert "too-large-1" not in app_ids  # refused before it reached a worker


def test_a_body_of_exactly_the_limit_reaches_django(stack):
    fetch(
        stack.nginx_url,
        "/actions/example/bar",
        method="POST",
        headers={"Content-Type": "application/json", "X-Request-ID": "at-limit-1"},
        body=b" " * settings.ACTIONS_MAX_BODY,
    )
    line = stack.app_log.wait_for(logger="gunicorn.access", request_id="at-limit-1")
    assert line["status"] != 413  # Django judged it (no API key: 401), not the size


def test_no_replica_answering_is_a_502_problem_with_the_request_id():
    with running_nginx(upstream=f"127.0.0.1:{free_port()}") as nginx:
        answer = fetch(nginx.url, "/health/live", headers={"X-Request-ID": "nobody-home"})
    assert answer.status == 502
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.headers.get_all("X-Request-ID") == ["nobody-home"]
    assert answer.json()["request_id"] == "nobody-home"
