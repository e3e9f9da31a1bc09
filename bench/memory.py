"""Memory of the web and gRPC processes after load: what deploy/k8s's requests and limits cover.

    python -m bench.memory              # on the benchmark database (make bench's)
    python -m bench.memory --rounds 50

gunicorn runs as the image runs it (config/gunicorn.conf.py, WEB_CONCURRENCY workers from
deploy/k8s/configmap.yaml), and the gRPC server as grpc.yaml runs it. Every kind of request is
sent, round after round, on a new connection each, so every worker has served each path
(actions, the hit counter, health, the OpenAPI document and Swagger UI, the login pages, a wrong
password); then each process's resident set size (VmRSS) is read from /proc. Summing RSS counts
the pages the workers share with the master once per process, so the total is an upper bound of
what the container's cgroup is charged. tests/deploy/test_resources.py runs the same measurement
and checks the manifests' memory requests and limits against it.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
GUNICORN_CONF = PROJECT_DIR / "config" / "gunicorn.conf.py"
K8S_DIR = PROJECT_DIR / "deploy" / "k8s"
MIB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    """The process's resident set size, from the kernel."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"process {pid} reports no VmRSS")


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (gunicorn's workers)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(child) for child in children]
    return sorted(found)


def configured_workers() -> int:
    """WEB_CONCURRENCY as deploy/k8s/configmap.yaml sets it for every web pod."""
    configmap = yaml.safe_load((K8S_DIR / "configmap.yaml").read_text())
    return int(configmap["data"]["WEB_CONCURRENCY"])


@dataclass
class WebMemory:
    master: int
    workers: list[int]

    def for_workers(self, count: int) -> int:
        """The master plus `count` workers, each as large as the largest one measured."""
        return self.master + count * max(self.workers)


def _request(port: int, method: str, path: str, *, body=None, headers=None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            method, path, body=body, headers={"Host": "localhost", **(headers or {})}
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def load_web(port: int, key: str, *, rounds: int) -> None:
    """Every kind of request, `rounds` times; fails on any 5xx (a broken server measures less)."""
    api = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for number in range(rounds):
        row = json.dumps({"name": f"memory-{number % 50}", "email": f"m{number}@example.com"})
        requests = [
            ("POST", "/actions/example/bar", row, api),
            ("POST", "/actions/example/foo", json.dumps({"name": "memory"}), api),
            # The largest body an action accepts: what a worker holds at its peak.
            ("POST", "/actions/example/foo", json.dumps({"name": "m" * 1_000_000}), api),
            ("POST", "/actions/example/numbers", json.dumps({"count": 1000}), api),
            ("GET", "/", None, {}),
            ("GET", "/health/ready", None, {}),
            ("GET", "/api/schema/", None, {"Accept": "application/json"}),
            ("GET", "/api/docs/", None, {}),
            ("GET", "/account/login/", None, {}),
            ("GET", "/admin/login/", None, {}),
        ]
        if number % 4 == 0:  # a password hashed: slow, and no larger the next time
            requests.append(
                (
                    "POST",
                    "/api/v1/auth/token",
                    json.dumps({"username": f"nobody-{number}", "password": "wrong"}),
                    {"Content-Type": "application/json"},
                )
            )
        for method, path, body, headers in requests:
            status = _request(port, method, path, body=body, headers=headers)
            if status >= 500:
                raise RuntimeError(f"{method} {path} answered {status} while measuring memory")


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on port {port}")


@contextlib.contextmanager
def _running(command: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(
        command, cwd=PROJECT_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_port(port, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure_web(env: dict[str, str], key: str, *, workers: int, rounds: int) -> WebMemory:
    """gunicorn as the image runs it, loaded; the RSS of its master and of each worker."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(GUNICORN_CONF),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
    ]
    with _running(command, {**env, "WEB_CONCURRENCY": str(workers)}, port) as process:
        deadline = time.monotonic() + 60
        while len(child_pids(process.pid)) < workers:
            if time.monotonic() > deadline:
                raise TimeoutError("gunicorn did not start its workers")
            time.sleep(0.1)
        load_web(port, key, rounds=rounds)
        return WebMemory(
            master=rss_bytes(process.pid),
            workers=[rss_bytes(pid) for pid in child_pids(process.pid)],
        )


def measure_grpc(env: dict[str, str], key: str, *, calls: int) -> int:
    """`manage.py grpcserver` as grpc.yaml runs it, after `calls` calls and streams: its RSS."""
    from apps.rpc.client import ActionsClient

    port = _free_port()
    command = [sys.executable, "manage.py", "grpcserver", "--bind", f"127.0.0.1:{port}"]
    with (
        _running(command, env, port) as process,
        ActionsClient(f"127.0.0.1:{port}", key, timeout=30) as client,
    ):
        for number in range(calls):
            client.call("example", "bar", name=f"memory-{number % 50}", email="m@example.com")
            client.call("example", "foo", name="memory")
            for _ in client.stream("example", "numbers", count=1000):
                pass
        return rss_bytes(process.pid)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def container_memory(manifest: str, container: str) -> tuple[int, int]:
    """A container's memory request and limit in deploy/k8s, in bytes."""
    for doc in yaml.safe_load_all((K8S_DIR / manifest).read_text()):
        if doc and doc["kind"] == "Deployment":
            for each in doc["spec"]["template"]["spec"]["containers"]:
                if each["name"] == container:
                    resources = each["resources"]
                    return (
                        quantity_bytes(resources["requests"]["memory"]),
                        quantity_bytes(resources["limits"]["memory"]),
                    )
    raise LookupError(f"no container {container} in {manifest}")


_SUFFIXES = {"Ki": 1024, "Mi": MIB, "Gi": 1024 * MIB, "K": 1000, "M": 10**6, "G": 10**9}


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("512Mi", "1G", "1048576") in bytes."""
    for suffix, factor in _SUFFIXES.items():
        if quantity.endswith(suffix):
            return int(float(quantity.removesuffix(suffix)) * factor)
    return int(quantity)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="Rounds of every request.")
    args = parser.parse_args()

    from bench.run import setup_django

    setup_django()
    from django.core.management import call_command

    name = f"bench-memory-{os.getpid()}"
    key_out = io.StringIO()
    call_command("create_api_client", name, stdout=key_out, stderr=io.StringIO())
    key = key_out.getvalue().strip()
    # Static files collected as the image collects them at build time (the manifest storage
    # of every environment but local needs them).
    static_root = tempfile.mkdtemp(prefix="dbapi-memory-static-")
    env = {**os.environ, "DEBUG": "false", "STATIC_ROOT": static_root}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=PROJECT_DIR,
        env=env,
        check=True,
    )

    workers = configured_workers()
    web = measure_web(env, key, workers=workers, rounds=args.rounds)
    grpc_rss = measure_grpc(env, key, calls=args.rounds)
    web_request, web_limit = container_memory("web.yaml", "web")
    grpc_request, grpc_limit = container_memory("grpc.yaml", "grpc")
    print(f"web: master {web.master / MIB:.0f} MiB, workers", end=" ")
    print(", ".join(f"{rss / MIB:.0f}" for rss in web.workers), "MiB")
    total = web.for_workers(workers)
    print(
        f"web pod ({workers} workers + master): {total / MIB:.0f} MiB;"
        f" request {web_request / MIB:.0f} MiB, limit {web_limit / MIB:.0f} MiB"
    )
    print(
        f"grpc pod: {grpc_rss / MIB:.0f} MiB;"
        f" request {grpc_request / MIB:.0f} MiB, limit {grpc_limit / MIB:.0f} MiB"
    )
    shutil.rmtree(static_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
