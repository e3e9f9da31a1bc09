"""`python -m apps.rpc`, the command line for calling actions by hand (it needs no Django)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.servers import PROJECT_DIR, free_port


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "apps.rpc", *args],
        cwd=PROJECT_DIR,
        env={"PATH": os.environ["PATH"], **env},  # no DJANGO_SETTINGS_MODULE, no database
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_call_prints_the_result_as_json(target, api_key):
    result = run_cli(
        "call", "example", "bar", '{"name": "ana"}', "--target", target, "--key", api_key
    )
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert row["name"] == "ana"


def test_stream_prints_a_json_line_per_row_with_target_and_key_from_the_environment(
    target, api_key
):
    result = run_cli(
        "stream",
        "example",
        "numbers",
        '{"count": 3}',
        DBAPI_GRPC_TARGET=target,
        DBAPI_API_KEY=api_key,
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"n": n, "label": f"row {n}"} for n in (1, 2, 3)
    ]


def test_a_refused_call_prints_status_request_id_and_problem_and_exits_1(target, api_key):
    result = run_cli(
        "call",
        "example",
        "bar",
        "{}",
        "--target",
        target,
        "--key",
        api_key,
        "--request-id",
        "cli-1",
    )
    assert result.returncode == 1
    first_line, _, problem = result.stderr.partition("\n")
    assert first_line == "INVALID_ARGUMENT: The input is not valid. (request id cli-1)"
    assert json.loads(problem)["errors"] == {"name": ["This field is required."]}
    assert result.stdout == ""


def test_params_must_be_a_json_object(target):
    result = run_cli("call", "example", "bar", "[1, 2]", "--target", target)
    assert result.returncode == 2
    assert "params must be a JSON object" in result.stderr


def test_a_server_that_cannot_be_reached_is_said_so_plainly():
    port = free_port()  # nothing listens there
    result = run_cli("call", "example", "foo", "{}", "--target", f"127.0.0.1:{port}", "--key", "k")
    assert result.returncode == 1
    assert result.stderr.startswith(f"Could not reach the gRPC server at 127.0.0.1:{port}: ")
    assert "request id" not in result.stderr
    assert result.stdout == ""
