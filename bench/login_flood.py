"""Action calls while wrong passwords flood the login: `make bench-login-flood`.

    python -m bench.login_flood                     # 3 rounds of 10 s each way
    python -m bench.login_flood --seconds 20 --rounds 5

One gunicorn (2 sync workers, the production settings and so production's password hasher,
Django's PBKDF2) serves both. wrk loads `POST /actions/example/bar` as `make bench` does, in
rounds that alternate between quiet and flooded: meanwhile `--threads` (8) threads of this process
POST /api/v1/auth/token with random usernames and wrong passwords, each as fast as it is
answered, all from one address (loopback). The issue's bar: the actions' p99 under the flood stays
within 3x their p99 without it, medians of the same run.

Before the first round the flood runs until the address is throttled: the first
LOGIN_ADDRESS_LIMIT wrong passwords of a window are checked (hashed), the rest answered 429
without hashing. The window (LOGIN_ADDRESS_WINDOW, 900 s) outlasts the run, so the rounds measure
that steady state; the attempts the flood got hashed are printed with the results.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import secrets
import statistics
import sys
import threading
import time

from bench.harness import Server, bench_env, run_wrk
from bench.run import setup_django
from bench.scenarios.actions import LUA

TARGET = 3.0  # the flood's p99 over the quiet p99


class Flood:
    """Threads posting wrong passwords for random usernames while `running` is set."""

    def __init__(self, url: str, *, threads: int):
        host, port = url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.running = threading.Event()
        self.stopped = threading.Event()
        self.statuses: collections.Counter[int] = collections.Counter()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.attack, daemon=True) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def attack(self) -> None:
        while not self.stopped.is_set():
            if not self.running.wait(timeout=0.1):
                continue
            body = json.dumps({"username": secrets.token_hex(6), "password": secrets.token_hex(8)})
            connection = http.client.HTTPConnection(*self.address, timeout=30)
            try:
                connection.request(
                    "POST", "/api/v1/auth/token", body, {"Content-Type": "application/json"}
                )
                status = connection.getresponse().status
            except OSError:
                status = 0
            finally:
                connection.close()
            with self.lock:
                self.statuses[status] += 1

    def counts(self) -> collections.Counter[int]:
        with self.lock:
            return collections.Counter(self.statuses)

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=35)


def prepare() -> str:
    """An API key for the actions, on the benchmark database."""
    from apps.actions.clients import create_api_client
    from apps.actions.models import ApiClient

    ApiClient.objects.filter(name="bench-login-flood").delete()
    _, key = create_api_client(name="bench-login-flood")
    return key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=4, help="wrk's, for the actions")
    parser.add_argument("--threads", type=int, default=8, help="the flood's")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    setup_django()
    from django.core.cache import cache

    cache.delete_pattern("login-*")  # no login counts left from an earlier run
    script = LUA % {"key": prepare()}
    server = Server("config.wsgi", workers=args.workers, env=bench_env())
    flood = None
    try:
        server.wait("/health/live")
        url = server.url + "/actions/example/bar"
        run_wrk(url, script, seconds=2, connections=args.connections)  # warm up

        flood = Flood(server.url, threads=args.threads)
        flood.running.set()
        deadline = time.monotonic() + 120
        while flood.counts()[429] < 100 and time.monotonic() < deadline:
            time.sleep(0.2)
        flood.running.clear()
        before = flood.counts()
        print(f"flood warmed up: {dict(before)} (401: hashed, 429: refused before hashing)")

        p99 = {"quiet": [], "flood": []}
        for number in range(args.rounds):
            order = ["quiet", "flood"] if number % 2 == 0 else ["flood", "quiet"]
            for side in order:
                if side == "flood":
                    flood.running.set()
                    time.sleep(0.5)
                started = flood.counts()
                measured = run_wrk(url, script, seconds=args.seconds, connections=args.connections)
                flooded = flood.counts() - started
                flood.running.clear()
                p99[side].append(measured.p99_ms)
                rate = sum(flooded.values()) / args.seconds
                print(
                    f"  round {number + 1} {side:<5} {measured.requests_per_second:7.0f} "
                    f"actions/s  p50 {measured.p50_ms:6.2f} ms  p99 {measured.p99_ms:6.2f} ms"
                    + (f"  flood {rate:5.0f} req/s {dict(flooded)}" if side == "flood" else "")
                    + (f"  ERRORS {measured.errors}" if measured.errors else ""),
                    flush=True,
                )
        after = flood.counts() - before
    finally:
        if flood is not None:
            flood.stop()
        server.stop()

    quiet, flooded = statistics.median(p99["quiet"]), statistics.median(p99["flood"])
    ratio = flooded / quiet
    print(
        f"\nactions p99: {quiet:.2f} ms quiet, {flooded:.2f} ms flooded: {ratio:.2f}x "
        f"(target <= {TARGET:.0f}x); flood answers during the rounds: {dict(after)}"
    )
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
