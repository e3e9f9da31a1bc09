"""compose.yaml's optional PgBouncer: off unless its profile is on, pooling per transaction,
pinned by version, and one variable moving the applications' connections to it."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .conftest import load_compose

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
