"""The metrics of real servers: one scrape of gunicorn (its config, two workers, multiprocess
mode) counts every call whichever worker served it, a new start counts from zero, and the gRPC
server exports its own calls on GRPC_METRICS_BIND."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client.mmap_dict import MmapedDict

from apps.actions.clients import create_api_client
from apps.rpc.client import ActionsClient
from tests.metrics import TOKEN, samples, value
from tests.rpc.test_server import GrpcServerProcess
from tests.servers import free_port, gunicorn, project_env, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CONFIG = ("--config", "config/gunicorn.conf.py")
BAR = {"module": "example", "action": "bar", "outcome": "ok"}


def get(url: str, *, token: str | None = TOKEN) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post_bar(url: str, key: str) -> int:
    request = urllib.request.Request(
        f"{url}/actions/example/bar",
        data=json.dumps({"name": "ana"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def http_calls(url: str) -> float:
    status, body = get(f"{url}/metrics")
    assert status == 200
    return value(samples(body), "dbapi_action_calls_total", transport="http", **BAR)


def workers_that_counted(directory) -> set[str]:
    """The pids of the workers that counted an action call, read from prometheus-client's file
    per process (any request makes a worker's file: a call counted in it shows it served one)."""
    return {
        path.stem.rpartition("_")[2]
        for path in directory.glob("counter_*.db")
        if any(
            '"dbapi_action_calls_total"' in key and value > 0
            for key, value, *_ in MmapedDict.read_all_values_from_file(str(path))
        )
    }


def test_one_scrape_counts_the_calls_of_every_gunicorn_worker(tmp_path):
    _, key = create_api_client(name="counted")
    directory = tmp_path / "metrics"
    env = project_env(METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR=str(directory))
    with gunicorn(env=env, workers=2, args=CONFIG) as url:
        assert get(f"{url}/metrics", token=None)[0] == 404
        assert get(f"{url}/metrics", token="wrong")[0] == 404
        calls = 0

        def both_workers_served() -> bool:
            nonlocal calls
            assert post_bar(url, key) == 200
            calls += 1
            return len(workers_that_counted(directory)) == 2

        wait_until(both_workers_served, timeout=60, interval=0)
        # Each scrape is answered by either worker, and each reads both workers' files.
        assert [http_calls(url) for _ in range(6)] == [calls] * 6

    # The next start counts from zero: the directory is emptied of the last server's files (one
    # worker is enough to show it: a scrape reads every file there, whoever wrote it).
    with gunicorn(env=env, workers=1, args=CONFIG) as url:
        assert http_calls(url) == 0
        assert post_bar(url, key) == 200
        assert http_calls(url) == 1


def test_with_metrics_port_gunicorn_serves_metrics_on_its_second_listener_only(tmp_path):
    """As the image runs it (METRICS_PORT): the app's port, the one nginx and the Ingress reach,
    answers /metrics with a 404 whatever the token; the metrics listener answers Prometheus."""
    _, key = create_api_client(name="counted on the metrics port")
    metrics_port = free_port()
    env = project_env(
        METRICS_TOKEN=TOKEN,
        METRICS_PORT=str(metrics_port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    # Two --bind as the config makes them from GUNICORN_BIND and METRICS_PORT (the command
    # line's win over the file's, and tests/servers.py gives the first).
    args = (*CONFIG, "--bind", f"127.0.0.1:{metrics_port}")
    with gunicorn(env=env, workers=2, args=args) as url:
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        assert post_bar(url, key) == 200
        status, body = get(f"{url}/metrics")
        assert (status, b"dbapi_" in body) == (404, False)
        assert get(f"{url}/metrics", token=None)[0] == 404
        assert get(metrics_url, token=None)[0] == 404
        assert get(metrics_url, token="wrong")[0] == 404
        status, body = get(metrics_url)
        assert status == 200
        assert value(samples(body), "dbapi_action_calls_total", transport="http", **BAR) == 1


def test_the_grpc_server_exports_its_calls_on_grpc_metrics_bind(tmp_path):
    _, key = create_api_client(name="counted over grpc")
    port, metrics_port = free_port(), free_port()
    server = GrpcServerProcess(
        tmp_path,
        "--bind",
        f"127.0.0.1:{port}",
        GRPC_METRICS_BIND=f"127.0.0.1:{metrics_port}",
    )
    try:
        server.wait_until_serving(f"127.0.0.1:{port}")
        with ActionsClient(f"127.0.0.1:{port}", key) as client:
            for _ in range(3):
                client.call("example", "bar", name="ana")
        status, body = get(f"http://127.0.0.1:{metrics_port}/metrics", token=None)
    finally:
        server.kill()
    assert status == 200
    found = samples(body)
    assert value(found, "dbapi_action_calls_total", transport="grpc", **BAR) == 3
    assert (
        value(
            found,
            "dbapi_action_duration_seconds_count",
            module="example",
            action="bar",
            transport="grpc",
        )
        == 3
    )
