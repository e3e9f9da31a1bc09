"""`manage.py runserver`'s request lines carry the request id the response went out with."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.servers import PROJECT_DIR, free_port, project_env, stop, wait_for_http

pytestmark = pytest.mark.django_db(transaction=True)


def request_lines(log: Path) -> list[dict]:
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    return [r for r in map(json.loads, lines) if r.get("logger") == "django.server"]


def wait_for_line(log: Path, text: str) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [r for r in request_lines(log) if text in r["message"]]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no request line with {text!r} in {log.read_text()}")


def test_runservers_request_lines_carry_the_answers_request_id(tmp_path):
    port = free_port()
    log = tmp_path / "runserver.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=PROJECT_DIR,
            env=project_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for_http(f"{base}/health/live", timeout=60, process=server)
            with urllib.request.urlopen(f"{base}/health/live?made=here") as answer:
                made_here = answer.headers["X-Request-ID"]
            line = wait_for_line(log, "/health/live?made=here")
            assert line["request_id"] == made_here

            request = urllib.request.Request(
                f"{base}/account/login/", headers={"X-Request-ID": "from-the-client-1"}
            )
            with urllib.request.urlopen(request) as answer:
                assert answer.headers["X-Request-ID"] == "from-the-client-1"
            assert wait_for_line(log, "/account/login/")["request_id"] == "from-the-client-1"

            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{base}/api/v1/otp/check/%20705866")
            assert refused.value.code == 401
            line = wait_for_line(log, "/api/v1/otp/check/")
            assert line["request_id"] == refused.value.headers["X-Request-ID"]
            assert line["message"].startswith('"GET /api/v1/otp/check/[masked] HTTP/1.1" 401 ')
        finally:
            stop(server)
    assert "705866" not in log.read_text()
