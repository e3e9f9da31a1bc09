"""compose.yaml's optional PgBouncer: off unless its profile is on, pooling per transaction,
pinned by version, and one variable moving the applications' connections to it, with the
settings transaction pooling needs."""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
import sys
from urllib.parse import urlsplit

from tests.servers import PROJECT_DIR, project_env

from .conftest import PRODUCTION_EXAMPLE, env_file_values, load_compose

THROUGH_POOLER = ("web", "grpc", "flush_hits")


def hosts(compose: dict) -> dict[str, str]:
    services = compose["services"]
    return {
        name: urlsplit(services[name]["environment"]["DATABASE_URL"]).netloc.rpartition("@")[2]
        for name in (*THROUGH_POOLER, "migrate")
    }


def test_pgbouncer_runs_only_with_its_profile():
    pgbouncer = load_compose()["services"]["pgbouncer"]
    assert pgbouncer["profiles"] == ["pgbouncer"]
    other = {n for n, s in load_compose()["services"].items() if s.get("profiles")}
    assert other == {"pgbouncer"}  # everything else runs without any profile


def test_pgbouncer_pools_per_transaction_in_front_of_the_database():
    pgbouncer = load_compose()["services"]["pgbouncer"]
    environment = pgbouncer["environment"]
    assert environment["POOL_MODE"] == "transaction"
    assert (environment["DB_HOST"], environment["DB_PORT"]) == ("db", "5432")
    assert (environment["DB_NAME"], environment["DB_USER"]) == ("dbapi", "dbapi")
    assert environment["AUTH_TYPE"] == "scram-sha-256"  # PostgreSQL 15's password_encryption
    assert pgbouncer["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert "pg_isready" in pgbouncer["healthcheck"]["test"]


def test_pgbouncer_is_a_maintained_image_pinned_by_version():
    image = load_compose()["services"]["pgbouncer"]["image"]
    assert re.fullmatch(r"edoburu/pgbouncer:v?\d+\.\d+\.\d+(-p\d+)?", image), image


def test_by_default_every_process_connects_to_postgres_directly():
    assert set(hosts(load_compose()).values()) == {"db:5432"}


def test_one_variable_sends_the_serving_processes_through_pgbouncer():
    compose = load_compose({"DBAPI_DATABASE_HOST": "pgbouncer"})
    found = hosts(compose)
    listen_port = compose["services"]["pgbouncer"]["environment"].get("LISTEN_PORT", "5432")
    for name in THROUGH_POOLER:
        assert found[name] == f"pgbouncer:{listen_port}", name
    assert found["migrate"] == "db:5432"  # a migration keeps its own session


def test_the_serving_processes_wait_for_pgbouncer_only_when_it_runs():
    services = load_compose()["services"]
    for name in THROUGH_POOLER:
        assert services[name]["depends_on"]["pgbouncer"] == {
            "condition": "service_healthy",
            "required": False,  # its profile off: nothing to wait for
        }


def pooled_services(compose: dict) -> dict[str, dict]:
    """The services whose DATABASE_URL names PgBouncer, with the environment compose gives them."""
    return {
        name: service["environment"]
        for name, service in compose["services"].items()
        if "DATABASE_URL" in service.get("environment", {})
        and urlsplit(service["environment"]["DATABASE_URL"]).hostname == "pgbouncer"
    }


def django_database_settings(environment: dict[str, str]) -> dict:
    """What Django makes of a compose service's environment (over the production example, as
    its env_file), read by the settings module in a process of its own."""
    env = project_env()
    env.update(env_file_values(PRODUCTION_EXAMPLE))
    env.update(environment)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",  # the image's, not the suite's
        DATABASE_URL=project_env()["DATABASE_URL"],
        # The operator's own keys, as the example asks (its published ones are refused).
        SECRET_KEY=secrets.token_urlsafe(50),
        OTP_ENCRYPTION_KEYS=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    )
    script = (
        "import json, django; django.setup(); from django.conf import settings; "
        "db = settings.DATABASES['default']; "
        "print(json.dumps([db['CONN_HEALTH_CHECKS'], db['DISABLE_SERVER_SIDE_CURSORS']]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_DIR, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    health_checks, no_server_side_cursors = json.loads(result.stdout.strip().splitlines()[-1])
    return {"health_checks": health_checks, "no_server_side_cursors": no_server_side_cursors}


def test_the_profiles_two_lines_give_the_pooled_processes_what_transaction_pooling_needs():
    """README's two lines and nothing else: every process that then talks to PgBouncer checks a
    kept connection before use and opens server-side cursors only inside transactions."""
    compose = load_compose({"COMPOSE_PROFILES": "pgbouncer", "DBAPI_DATABASE_HOST": "pgbouncer"})
    pooled = pooled_services(compose)
    assert set(THROUGH_POOLER) <= set(pooled)
    for name, environment in pooled.items():
        assert environment["DB_DISABLE_SERVER_SIDE_CURSORS"] == "true", name
        assert environment["DB_CONN_HEALTH_CHECKS"] == "true", name
    assert django_database_settings(pooled["web"]) == {
        "health_checks": True,
        "no_server_side_cursors": True,
    }


def test_direct_connections_skip_the_health_checks_round_trip():
    environment = load_compose()["services"]["web"]["environment"]
    assert django_database_settings(environment) == {
        "health_checks": False,  # the production example's default, as before the profile
        "no_server_side_cursors": True,  # harmless: every action runs in a transaction
    }
