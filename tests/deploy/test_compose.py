"""compose.yaml: valid by the compose specification, and saying what the deployment needs.

The schema accepts strings for integers and any service names, so the values that matter are
asserted here as a fresh clone sees them (no compose variables set). No Docker engine runs here:
the last tests run what compose would run (the production example with compose's overrides,
gunicorn from the image's config, nginx from deploy/nginx) on loopback instead.
"""

from __future__ import annotations

import base64
import contextlib
import re
import secrets
import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.servers import PROJECT_DIR, gunicorn, project_env

from .conftest import (
    COMPOSE_FILE,
    GUNICORN_CONF,
    NGINX_CONF,
    PRODUCTION_EXAMPLE,
    Nginx,
    env_file_values,
    fetch,
    k8s_object,
    load_compose,
    running_nginx,
    tool,
)

README = PROJECT_DIR / "README.md"
APP_SERVICES = (
    "web",
    "migrate",
    "flush_hits",
    "prune_idempotency_keys",
    "grpc",
    "send_pending_notifications",
    "prune_security_events",
)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


def test_compose_yaml_is_valid_by_the_compose_specification():
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_of_the_deployment_is_there(compose):
    assert set(compose["services"]) == {*APP_SERVICES, "nginx", "db", "redis", "pgbouncer"}


def test_web_runs_as_many_replicas_as_the_kubernetes_floor_and_the_variable_changes_it(compose):
    """One host or a cluster, the same room to lose web replicas: compose's default is the
    number the autoscaler never goes below, whose reason tests/deploy/test_kubernetes.py shows
    (a drain and a crash at once leave one serving)."""
    floor = k8s_object("HorizontalPodAutoscaler", "web")["spec"]["minReplicas"]
    assert int(compose["services"]["web"]["deploy"]["replicas"]) == floor
    scaled = load_compose({"WEB_REPLICAS": str(floor + 2)})
    assert int(scaled["services"]["web"]["deploy"]["replicas"]) == floor + 2


def test_web_is_built_here_and_every_app_process_runs_that_image(compose):
    services = compose["services"]
    assert services["web"]["build"] == "."
    assert "command" not in services["web"]  # the image's CMD: gunicorn -c config/gunicorn.conf.py
    images = {services[name]["image"] for name in APP_SERVICES}
    assert images == {"dbapi:local"}
    for name in APP_SERVICES:
        assert services[name]["env_file"] == "env/production/.env"


def test_web_waits_for_the_migrations_to_complete(compose):
    services = compose["services"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "flush_hits", "grpc"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}
        assert depends["db"] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}


def test_only_nginx_and_grpc_publish_ports_where_they_listen(compose):
    """Each publishes the port its server listens on, nginx on the host port the README's
    `curl http://localhost:…` reaches, gRPC on the port it binds, the same on the host."""
    services = compose["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"nginx", "grpc"}
    [nginx] = services["nginx"]["ports"]
    host, listened = nginx.split(":")
    assert re.search(rf"^\s*listen {listened};", NGINX_CONF.read_text(), flags=re.M)
    assert f"http://localhost:{host}/" in README.read_text()
    [grpc] = services["grpc"]["ports"]
    bound = services["grpc"]["command"][-1].rpartition(":")[2]
    assert grpc == f"{bound}:{bound}"


def test_postgres_keeps_its_data_in_a_volume_and_has_a_healthcheck(compose):
    db = compose["services"]["db"]
    assert "pgdata:/var/lib/postgresql/data" in db["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert "pgdata" in compose["volumes"]


def test_redis_appends_every_write_to_a_persistent_file(compose):
    redis = compose["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "redisdata:/data" in redis["volumes"]
    assert "redisdata" in compose["volumes"]
    url = urlsplit(env_file_values(PRODUCTION_EXAMPLE)["REDIS_URL"])
    assert url.hostname == "redis"


def test_flush_hits_runs_in_a_loop_every_minute(compose):
    flusher = compose["services"]["flush_hits"]
    [shell, flag, script] = flusher["command"]
    assert (shell, flag) == ("sh", "-c")
    assert re.fullmatch(r"while :; do python manage\.py flush_hits; sleep 60; done", script), script
    assert flusher["restart"] == "unless-stopped"


@pytest.mark.parametrize(
    ("service", "command", "every"),
    [
        ("send_pending_notifications", "send_pending_notifications", 300),
        ("prune_security_events", "prune_security_events --days 365", 86400),
    ],
)
def test_the_security_event_jobs_run_in_a_loop(compose, service, command, every):
    job = compose["services"][service]
    [shell, flag, script] = job["command"]
    assert (shell, flag) == ("sh", "-c")
    assert script == f"while :; do python manage.py {command}; sleep {every}; done"
    assert job["restart"] == "unless-stopped"
    assert job["init"] is True


def test_grpc_serves_on_every_interface_with_its_health_service_checked(compose):
    grpc = compose["services"]["grpc"]
    assert grpc["command"] == ["python", "manage.py", "grpcserver", "--bind", "0.0.0.0:50051"]
    assert grpc["healthcheck"]["test"] == ["CMD", "python", "deploy/healthcheck.py", "grpc"]


def test_one_shot_and_loop_processes_do_not_inherit_the_http_healthcheck(compose):
    for name in ("migrate", "flush_hits"):
        assert compose["services"][name]["healthcheck"] == {"disable": True}


def test_stopping_gives_gunicorn_longer_than_its_graceful_timeout(compose):
    graceful = int(env_file_values(PRODUCTION_EXAMPLE)["GUNICORN_GRACEFUL_TIMEOUT"])
    stop = compose["services"]["web"]["stop_grace_period"]
    assert int(stop.removesuffix("s")) > graceful


# --- The documented path: `cp env/production/.env.example env/production/.env; compose up` --


def compose_app_env(**overrides: str) -> dict[str, str]:
    """What a compose app container gets: the production example (env_file), compose's
    `environment:` over it; here pointed at the test databases, with collected static files."""
    env = project_env()
    env.update(env_file_values(PRODUCTION_EXAMPLE))
    env.update(load_compose()["x-app"]["environment"])
    test_databases = project_env()
    env.update(
        DATABASE_URL=test_databases["DATABASE_URL"],
        REDIS_URL=test_databases["REDIS_URL"],
        CACHE_KEY_PREFIX=test_databases["CACHE_KEY_PREFIX"],
        # The operator's own keys, as the example asks (its published ones are refused).
        SECRET_KEY=secrets.token_urlsafe(50),
        OTP_ENCRYPTION_KEYS=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    )
    env.update(overrides)
    return env


@contextlib.contextmanager
def stack(env: dict[str, str], folder) -> Iterator[Nginx]:
    """gunicorn as the image runs it, behind nginx as compose runs it, on loopback ports."""
    args = ("--config", str(GUNICORN_CONF))
    with (
        (folder / "gunicorn.log").open("w") as stdout,
        gunicorn(env=env, args=args, stdout=stdout) as app_url,
        running_nginx(upstream=urlsplit(app_url).netloc) as nginx,
    ):
        yield nginx


def localhost(port: int) -> dict[str, str]:
    """The Host header a browser on the compose host sends to http://localhost:<port>/."""
    return {"Host": f"localhost:{port}"}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_fresh_clone_answers_on_localhost_through_nginx(collected_static, tmp_path):
    env = compose_app_env(STATIC_ROOT=str(collected_static))
    with stack(env, tmp_path) as nginx:
        host = localhost(nginx.port)
        ready = fetch(nginx.url, "/health/ready", headers=host)
        login = fetch(nginx.url, "/admin/login/", headers=host)
        stylesheet = re.search(rb'href="(/static/[^"]+\.css)"', login.body)
        static = fetch(nginx.url, stylesheet.group(1).decode(), headers=host)
    assert ready.status == 200, ready.body
    assert login.status == 200, login.body  # not a redirect to an https:// nobody serves
    assert static.status == 200  # collected with a manifest, served by whitenoise
    assert "Strict-Transport-Security" not in login.headers


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_with_https_on_a_client_cannot_claim_https_through_nginx(collected_static, tmp_path):
    """DBAPI_HTTPS=true: nginx overwrites X-Forwarded-Proto, so plain HTTP is redirected even
    when the client says otherwise; the probes' health/ paths never are."""
    env = compose_app_env(STATIC_ROOT=str(collected_static))
    env.update(load_compose({"DBAPI_HTTPS": "true"})["x-app"]["environment"])
    with stack(env, tmp_path) as nginx:
        headers = {**localhost(nginx.port), "X-Forwarded-Proto": "https"}
        login = fetch(nginx.url, "/admin/login/", headers=headers)
        live = fetch(nginx.url, "/health/live", headers=headers)
    assert login.status == 301
    assert login.headers["Location"] == f"https://localhost:{nginx.port}/admin/login/"
    assert live.status == 200
