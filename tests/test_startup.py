"""Starting a process of the project loads what its requests need, not what only a rare path
does: the suite starts about two hundred of them (gunicorn workers, `manage.py`, gRPC servers)
and production restarts its workers, so a package loaded for nothing is paid for every time.
The rare paths load theirs when they run; their own tests show they still work (upstreams,
passkeys, QR codes, the schema, metrics, tracing).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.servers import PROJECT_DIR, project_env

# What only one path needs, by the package (or module) it would load.
RARE = {
    "httpx": "an HTTP upstream's client",
    "rich": "httpx's command line (installed with the development tools)",
    "webauthn": "a passkey ceremony",
    "pyasn1": "a passkey ceremony (py_webauthn's attestation formats)",
    "OpenSSL": "a passkey ceremony (py_webauthn's certificate chains)",
    "qrcode": "a QR code drawn",
    "PIL": "a QR code drawn (qrcode's raster images)",
    "drf_spectacular.openapi": "generating the OpenAPI schema",
    "drf_spectacular.plumbing": "generating the OpenAPI schema",
    "prometheus_client": "recording or serving metrics",
    "opentelemetry.sdk.trace": "tracing",
    "opentelemetry.exporter": "tracing",
}
# Until the cache is first used (django-redis); redis-py loads OpenTelemetry's SDK with it.
CACHE = {"redis": "the cache", "opentelemetry.sdk": "the cache (redis-py's metrics)"}

# A fresh process starts as it does in production, then lists the modules it loaded.
STARTS = {
    "the WSGI application": "import config.wsgi",
    # A command runs the system checks first, which load the URLconf and instantiate the cache.
    "manage.py check": (
        "from django.core.management import execute_from_command_line\n"
        "execute_from_command_line(['manage.py', 'check'])"
    ),
    "the gRPC server": (
        "import django\n"
        "django.setup()\n"
        "from apps.rpc.server import build_server\n"
        "build_server(bind='127.0.0.1:0', workers=1)"
    ),
}


def loaded_modules(start: str) -> set[str]:
    """The modules a new process of the project holds once `start` ran, tracing and metrics
    off as by default."""
    code = f"{start}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    env = project_env(OTEL_EXPORTER_OTLP_ENDPOINT="", METRICS_ENABLED="false")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def loaded(modules: set[str], names: dict[str, str]) -> dict[str, str]:
    """Those of `names` among `modules` (a package counts with any of its modules)."""
    return {
        name: why
        for name, why in names.items()
        if any(module == name or module.startswith(f"{name}.") for module in modules)
    }


@pytest.mark.parametrize("start", STARTS)
def test_a_process_starts_without_what_only_a_rare_path_needs(start):
    assert loaded(loaded_modules(STARTS[start]), RARE) == {}


def test_the_wsgi_application_starts_without_the_cache_client():
    """A worker loads redis-py with the cache, when a request first uses it."""
    assert loaded(loaded_modules(STARTS["the WSGI application"]), CACHE) == {}
