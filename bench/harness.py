"""Load benchmarks: the project under gunicorn against a minimal WSGI app doing the same work.

Both run under the same gunicorn (same worker count, same config), are loaded by wrk from a second
process on loopback, and are measured alternately (A B B A ...) in the same run, because the
machine is shared and noisy: only the ratio between them means something.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
GUNICORN_CONF = PROJECT_DIR / "config" / "gunicorn.conf.py"

# The benchmark's own database and Redis database, never the tests' or a developer's.
BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dbapi_bench"
)
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")


def bench_env(**overrides: str) -> dict[str, str]:
    """Production-like settings on loopback: DEBUG off, no HTTPS redirect."""
    env = dict(os.environ)
    env.update(
        ENVIRONMENT="bench",
        SECRET_KEY="bench-only-" + "k" * 50,
        # A Fernet key for the benchmark's sealed TOTP secrets only (both sides unseal with it).
        OTP_ENCRYPTION_KEYS="RrnHuN2I1gV1oT8nFYQf4QRhsHklgB3zbYYcPynIGhs=",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        DATABASE_URL=BENCH_DATABASE_URL,
        REDIS_URL=BENCH_REDIS_URL,
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


@dataclass
class Target:
    """One side of a comparison: a WSGI app and the request wrk sends to it."""

    app: str  # a gunicorn app spec, e.g. "config.wsgi" or "bench.baselines.hits:application"
    path: str = "/"
    method: str = "GET"
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    lua: str | None = None  # a whole wrk script, for requests that vary (replaces the above)
    # This side's own settings (on top of the scenario's), e.g. a control on or off.
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None  # the code to serve, when not this checkout (another commit's)

    def wrk_script(self) -> str:
        if self.lua is not None:
            return self.lua
        lines = [f"wrk.method = {json.dumps(self.method)}"]
        if self.body is not None:
            lines.append(f"wrk.body = {json.dumps(self.body)}")
        lines += [
            f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in self.headers.items()
        ]
        return "\n".join(lines) + "\n"


@dataclass
class Scenario:
    """A path of the project and its same-work baseline.

    `prepare` runs once (with Django set up on the benchmark database) before the servers start,
    and may change the targets, e.g. to add the API key it created to their headers.
    """

    name: str
    description: str
    django: Target
    baseline: Target
    target_ratio: float
    prepare: Callable[[Scenario], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Measurement:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    # CPU the server's workers spent per request: what the other load on a shared machine
    # disturbs least, so the steadier way to compare the two sides.
    cpu_us_per_request: float = 0.0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes (all their threads) have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


class Server:
    """gunicorn serving one app on a free loopback port."""

    def __init__(self, app: str, *, workers: int, env: dict[str, str], cwd: Path | None = None):
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
        ]
        if GUNICORN_CONF.exists():
            command += ["--config", str(GUNICORN_CONF)]
        self.process = subprocess.Popen(
            command,
            cwd=cwd or PROJECT_DIR,
            env={**env, "WEB_CONCURRENCY": str(workers)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self, path: str = "/", timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=2):  # noqa: S310
                    return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"{self.url} did not answer")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * _UNITS[unit]


def run_wrk(url: str, script: str, *, seconds: float, connections: int) -> Measurement:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: run `make bench`, which installs it.")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--latency",
                "-s",
                lua.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(lua.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = _milliseconds(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _milliseconds(re.search(r"\s99%\s+(\S+)", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)", out)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    # A scenario's script may check the bodies too, and report the answers it rejects.
    rejected = re.search(r"Rejected answers:\s+(\d+)", out)
    if rejected:
        errors += int(rejected.group(1))
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Measurement(rps, p50, p99, errors, requests=requests)


def compare(
    scenario: Scenario,
    *,
    workers: int,
    connections: int,
    seconds: float,
    rounds: int,
    warmup: float = 2.0,
) -> dict:
    """Alternate the two sides for `rounds` rounds; return medians and ratios."""
    env = bench_env(**scenario.env)
    sides = {"django": scenario.django, "baseline": scenario.baseline}
    servers = {
        name: Server(t.app, workers=workers, env={**env, **t.env}, cwd=t.cwd)
        for name, t in sides.items()
    }
    try:
        for server in servers.values():
            server.wait("/health/live" if server is servers["django"] else "/")
        for name, target in sides.items():  # warm up: imports, connections, caches
            run_wrk(
                servers[name].url + target.path,
                target.wrk_script(),
                seconds=warmup,
                connections=connections,
            )
        results: dict[str, list[Measurement]] = {name: [] for name in sides}
        for round_number in range(rounds):
            order = ["django", "baseline"] if round_number % 2 == 0 else ["baseline", "django"]
            for name in order:
                target = sides[name]
                workers_pids = servers[name].worker_pids()
                cpu_before = cpu_seconds(workers_pids)
                measurement = run_wrk(
                    servers[name].url + target.path,
                    target.wrk_script(),
                    seconds=seconds,
                    connections=connections,
                )
                cpu = cpu_seconds(workers_pids) - cpu_before
                measurement.cpu_us_per_request = cpu * 1e6 / max(measurement.requests, 1)
                results[name].append(measurement)
                print(
                    f"  {scenario.name:<12} round {round_number + 1} {name:<8} "
                    f"{measurement.requests_per_second:9.0f} req/s  "
                    f"p50 {measurement.p50_ms:7.2f} ms  p99 {measurement.p99_ms:7.2f} ms  "
                    f"CPU {measurement.cpu_us_per_request:5.0f} us/req"
                    + (f"  ERRORS {measurement.errors}" if measurement.errors else ""),
                    flush=True,
                )
    finally:
        for server in servers.values():
            server.stop()

    summary = {
        name: {
            "requests_per_second": statistics.median(m.requests_per_second for m in runs),
            "p50_ms": statistics.median(m.p50_ms for m in runs),
            "p99_ms": statistics.median(m.p99_ms for m in runs),
            "errors": sum(m.errors for m in runs),
            "cpu_us_per_request": statistics.median(m.cpu_us_per_request for m in runs),
        }
        for name, runs in results.items()
    }
    django, baseline = summary["django"], summary["baseline"]
    summary["ratio"] = {
        "requests_per_second": django["requests_per_second"] / baseline["requests_per_second"],
        "p50": django["p50_ms"] / baseline["p50_ms"],
        "p99": django["p99_ms"] / baseline["p99_ms"],
        "cpu_per_request": django["cpu_us_per_request"] / baseline["cpu_us_per_request"],
    }
    summary["target_ratio"] = scenario.target_ratio
    return summary
