"""The Dockerfile, checked without a Docker engine: hadolint, what it declares, and the two things
it runs that can be run here (collectstatic as at build time, and the HEALTHCHECK script)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from tests.servers import PROJECT_DIR, free_port, gunicorn, project_env

from .conftest import DOCKERFILE, tool

HEALTHCHECK = PROJECT_DIR / "deploy" / "healthcheck.py"


def healthcheck_module():
    spec = importlib.util.spec_from_file_location("healthcheck", HEALTHCHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def arguments(name: str) -> list[str]:
    return [args for instruction, args in instructions() if instruction == name]


def test_hadolint_passes():
    result = subprocess.run(
        [tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True, cwd=PROJECT_DIR
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_on_slim_python_311_with_the_production_requirements():
    stages = arguments("FROM")
    assert len(stages) >= 2
    assert any("python:3.11-slim" in args for args in arguments("ARG"))
    assert any("requirements/production.txt" in args for args in arguments("RUN"))
    assert any(args.startswith("--from=builder") for args in arguments("COPY"))


def test_static_files_are_collected_at_build_with_a_throwaway_key():
    [collect] = [args for args in arguments("RUN") if "collectstatic" in args]
    assert "manage.py collectstatic --noinput" in collect
    assert re.search(r"SECRET_KEY=\S*(build|throwaway)\S*", collect)
    assert re.search(r"OTP_ENCRYPTION_KEYS=\S*build\S*", collect)
    assert not [args for args in arguments("ENV") if "SECRET_KEY" in args]
    assert not [args for args in arguments("ENV") if "OTP_ENCRYPTION_KEYS" in args]


def test_runs_as_a_non_root_numeric_user_with_production_settings():
    assert arguments("USER") == ["10001:10001"]
    env = " ".join(arguments("ENV"))
    assert "ENVIRONMENT=production" in env
    assert "GUNICORN_BIND=0.0.0.0:8000" in env
    # /metrics on a listener of its own, which nginx and the Ingress never reach.
    assert "METRICS_PORT=9100" in env
    assert "9100" in arguments("EXPOSE")[0].split()


def test_healthcheck_and_command():
    [healthcheck] = arguments("HEALTHCHECK")
    assert 'CMD ["python", "deploy/healthcheck.py", "http"]' in healthcheck
    assert arguments("CMD") == ['["gunicorn", "--config", "config/gunicorn.conf.py"]']


def test_collectstatic_succeeds_with_the_production_storage(collected_static):
    """The build step, run here: the manifest that whitenoise needs outside `local`."""
    assert (collected_static / "staticfiles.json").is_file()
    assert list(collected_static.rglob("*.css.gz"))


def run_healthcheck(*args: str, **environ: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], **environ}
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture(scope="module")
def production_like_gunicorn(tmp_path_factory):
    """gunicorn with a production ALLOWED_HOSTS that does not list 127.0.0.1."""
    static_root = tmp_path_factory.mktemp("static")
    env = project_env(
        ENVIRONMENT="healthcheck-test",
        SECRET_KEY="healthcheck-test-" + "k" * 50,
        OTP_ENCRYPTION_KEYS="healthcheck0test0only0not0a0real0key0000000=",
        ALLOWED_HOSTS=".dbapi.example.com",
        SECURE_SSL_REDIRECT="true",
        STATIC_ROOT=str(static_root),
    )
    with gunicorn(env=env) as base_url:
        yield base_url.removeprefix("http://")


def test_healthcheck_passes_against_a_live_server(production_like_gunicorn):
    result = run_healthcheck(
        "http", GUNICORN_BIND=production_like_gunicorn, ALLOWED_HOSTS=".dbapi.example.com"
    )
    assert result.returncode == 0, result.stderr


def test_healthcheck_fails_on_the_400_django_gives_a_host_it_does_not_allow(
    production_like_gunicorn,
):
    result = run_healthcheck(
        "http", GUNICORN_BIND=production_like_gunicorn, ALLOWED_HOSTS="elsewhere.example.org"
    )
    assert result.returncode == 1
    assert "400" in result.stderr


@pytest.mark.parametrize(
    ("allowed_hosts", "host"),
    [
        ("dbapi.example.com,localhost", "dbapi.example.com"),
        (".example.com", "example.com"),
        ("*,api.example.com", "api.example.com"),
        ("*", "localhost"),
        ("", "localhost"),
    ],
)
def test_healthcheck_names_the_first_usable_allowed_host(monkeypatch, allowed_hosts, host):
    monkeypatch.setenv("ALLOWED_HOSTS", allowed_hosts)
    assert healthcheck_module().allowed_host() == host


@pytest.mark.parametrize(
    ("bind", "address"),
    [
        ("0.0.0.0:8000", "127.0.0.1:8000"),
        ("[::]:8001", "127.0.0.1:8001"),
        ("10.0.0.5:8000", "10.0.0.5:8000"),
    ],
)
def test_healthcheck_reaches_the_server_where_it_is_bound(bind, address):
    assert healthcheck_module().local_address(bind, "8000") == address


def test_healthcheck_fails_when_nothing_answers():
    result = run_healthcheck("http", GUNICORN_BIND=f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
