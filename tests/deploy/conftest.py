"""Helpers for the deployment tests: the files under test, the tools that check them, and a real
nginx (Debian's, installed by `make test`) run from a private prefix on a free loopback port."""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.servers import PROJECT_DIR, free_port, stop

COMPOSE_FILE = PROJECT_DIR / "compose.yaml"
DOCKERFILE = PROJECT_DIR / "Dockerfile"
GUNICORN_CONF = PROJECT_DIR / "config" / "gunicorn.conf.py"
NGINX_CONF = PROJECT_DIR / "deploy" / "nginx" / "nginx.conf"
K8S_DIR = PROJECT_DIR / "deploy" / "k8s"
FILEBEAT_FILE = PROJECT_DIR / "deploy" / "filebeat.yml"
PRODUCTION_EXAMPLE = PROJECT_DIR / "env" / "production" / ".env.example"
LOCAL_EXAMPLE = PROJECT_DIR / "env" / "local" / ".env.example"

# `${NAME:-default}`, `${NAME:?error}`, `${NAME:+replacement}` and `${NAME}`, as compose
# interpolates them.
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")

# What README ("With compose") has the operator put in ./.env before the first `up`.
OPERATOR_DOT_ENV = {"POSTGRES_PASSWORD": "operator-chosen-db-password"}


class MissingComposeVariable(Exception):
    """compose refuses to start: a `${NAME:?error}` variable is unset or empty."""


def tool(name: str) -> str:
    """A command installed with requirements/dev.txt, from this virtualenv."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def nginx_binary() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).exists():
        raise RuntimeError(
            "nginx is not installed: `make test` installs it (scripts/system-packages.sh)."
        )
    return found


def interpolate(value, environ: dict[str, str] | None = None):
    """Resolve compose's `${NAME:-default}`, `${NAME:?error}` and `${NAME:+replacement}` in
    every string of a loaded file, as compose would with only `environ` set."""
    environ = environ or {}
    if isinstance(value, dict):
        return {key: interpolate(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environ) for item in value]
    if isinstance(value, str):
        return _INTERPOLATION.sub(lambda m: _substitute(m, environ), value)
    return value


def _substitute(match: re.Match, environ: dict[str, str]) -> str:
    name, operator, argument = match.groups()
    if operator in (":?", "?") and not environ.get(name):
        raise MissingComposeVariable(f"{name}: {argument}")
    if operator in (":?", "?"):
        return environ[name]
    if operator == ":+":
        return argument if environ.get(name) else ""
    if operator == "+":
        return argument if name in environ else ""
    return environ.get(name) or argument or ""


def load_compose(environ: dict[str, str] | None = None, *, dot_env=OPERATOR_DOT_ENV) -> dict:
    """compose.yaml as compose sees it in a fresh clone where the operator followed the README
    (`dot_env`, their ./.env), with `environ` set in the shell."""
    return interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), {**dot_env, **(environ or {})})


def env_file_values(path: Path) -> dict[str, str]:
    """The variables an env file sets (commented lines are documentation, not values)."""
    values = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Z_][A-Z_0-9]*)=(.*)", line.strip())
        if match:
            values[match.group(1)] = match.group(2)
    return values


def k8s_documents() -> list[tuple[Path, dict]]:
    """Every Kubernetes object in deploy/k8s (the Kustomization is kustomize's, not the API's)."""
    documents = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        documents += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def k8s_object(kind: str, name: str) -> dict:
    [found] = [
        doc for _, doc in k8s_documents() if (doc["kind"], doc["metadata"]["name"]) == (kind, name)
    ]
    return found


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)


def fetch(url: str, path: str, *, method: str = "GET", headers=None, body: bytes | None = None):
    """One request, exactly as given (no redirects followed, no headers added but Host)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


class LogLines:
    """A server's stdout, where every line must be one JSON object."""

    def __init__(self, path):
        self.path = path

    def records(self) -> list[dict]:
        lines = self.path.read_text().splitlines()
        return [json.loads(line) for line in lines]  # fails on any line that is not JSON

    def wait_for(self, timeout: float = 5.0, **match) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.records() if all(r.get(k) == v for k, v in match.items())]
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line with {match} in {self.path.read_text()}")
            time.sleep(0.05)


class Nginx:
    """deploy/nginx/nginx.conf run by a real nginx, with only what must differ outside Docker
    replaced: the port it listens on and the address of the web upstream."""

    def __init__(self, prefix: Path, *, upstream: str):
        self.prefix = prefix
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = NGINX_CONF.read_text()
        for docker_only, here in (
            ("listen 80;", f"listen 127.0.0.1:{self.port};"),
            ("web:8000;", f"{upstream};"),
        ):
            assert docker_only in config, f"{docker_only!r} is no longer in {NGINX_CONF.name}"
            config = config.replace(docker_only, here)
        self.config = prefix / "nginx.conf"
        self.config.write_text(config)
        self.log = prefix / "stdout.log"
        self.errors = prefix / "stderr.log"
        self.access_log = LogLines(self.log)  # nginx's access_log is /dev/stdout

    def command(self, *extra: str) -> list[str]:
        return [
            nginx_binary(),
            "-p",
            f"{self.prefix}/",
            "-e",
            "stderr",
            "-c",
            str(self.config),
            *extra,
        ]


def nginx_prefix() -> Path:
    """A prefix nginx's workers (nobody, when the tests run as root) can enter for temp files."""
    prefix = Path(tempfile.mkdtemp(prefix="dbapi-nginx-"))
    prefix.chmod(0o755)
    (prefix / "logs").mkdir()
    return prefix


@contextlib.contextmanager
def running_nginx(*, upstream: str) -> Iterator[Nginx]:
    """nginx in the foreground in front of `upstream`; stopped (and its prefix removed) after."""
    prefix = nginx_prefix()
    nginx = Nginx(prefix, upstream=upstream)
    with nginx.log.open("w") as stdout, nginx.errors.open("w") as stderr:
        process = subprocess.Popen(nginx.command("-g", "daemon off;"), stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + 10
        while not _listening(nginx.port):
            if process.poll() is not None:
                raise RuntimeError(
                    f"nginx exited ({process.returncode}): {nginx.errors.read_text()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError("nginx did not start listening")
            time.sleep(0.05)
        yield nginx
    finally:
        stop(process, timeout=10)
        shutil.rmtree(prefix, ignore_errors=True)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def collected_static(request, tmp_path_factory) -> Path:
    """Static files collected as the Dockerfile does at build time: production settings, the
    manifest storage, a throwaway SECRET_KEY and OTP_ENCRYPTION_KEYS and nothing else of the
    environment. Once a run: pytest-xdist's workers share the run's temporary directory, where
    the first to need the files collects them while the others wait (pytest removes those of
    older runs)."""
    base = tmp_path_factory.getbasetemp()
    if hasattr(request.config, "workerinput"):
        base = base.parent  # the run's, above each worker's
    root = base / "collected-static"
    with open(base / "collected-static.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "staticfiles.json").is_file():
            env = {
                "PATH": os.environ["PATH"],
                "ENVIRONMENT": "production",
                "SECRET_KEY": "collectstatic-at-build-time-only-not-a-secret-0123456789abcdef",
                "OTP_ENCRYPTION_KEYS": "collectstatic0at0build0time0only0not0a0key0=",
                "STATIC_ROOT": str(root),
            }
            result = subprocess.run(
                [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
                cwd=PROJECT_DIR,
                env=env,
                capture_output=True,
                text=True,
            )
            assert result.returncode == 0, result.stdout + result.stderr
    return root
