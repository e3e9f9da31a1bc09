"""`make bench-grpc`: the same actions over gRPC (one channel) and over HTTP (a new connection per
call, as the original's clients did), then 100,000 streamed rows.

    python -m bench.rpc [--calls 10000] [--concurrency 4] [--rounds 2]

A different shape from the wrk scenarios: both sides are loaded by one asyncio client in this
process with the same concurrency (grpc.aio on one channel; a fresh TCP connection per HTTP
call), alternating gRPC and HTTP rounds, because the machine is shared and noisy. Prints calls/s,
p50/p99, the server's and this client's CPU time per call for each side (the client shares the
machine), then the stream's rows/s and the gRPC server's peak RSS (against a Call answering the
same rows whole). Both run as deployed, each writing its access line per call: HTTP under
gunicorn with --workers processes; gRPC as `manage.py grpcserver`, --grpc-processes of them
(default: as many as gunicorn's workers; a process serves one connection's calls on one core at
a time), which the one channel takes in turn (round_robin, as with pods behind a headless
Service). Each round
also shows the CPU the rest of the machine used meanwhile (PostgreSQL, Redis, the kernel, other
work): other work slows HTTP, which needs more CPU per call, more than gRPC, and so inflates the
ratio.
Results go to bench/results/rpc-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from apps.rpc.client import CHANNEL_OPTIONS
from bench.harness import PROJECT_DIR, Server, bench_env, cpu_seconds, free_port

ACTIONS = ("foo", "bar")
STREAM_ROWS = 100_000


def action_input(i: int) -> dict[str, str]:
    """The input of call i: bar upserts one of 1,000 names, as the wrk scenario does."""
    return {"name": f"user-{i % 1000}", "email": f"u{i}@example.com"}


@dataclass
class Run:
    calls_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_us_per_call: float  # robust to a noisy machine: what one call costs the server
    client_cpu_us_per_call: float  # this process, which shares the machine with the servers
    others_cpu: float  # CPUs busy with anything else meanwhile (databases, kernel, other work)

    def line(self) -> str:
        return (
            f"{self.calls_per_second:8.0f} calls/s  p50 {self.p50_ms:6.2f} ms  "
            f"p99 {self.p99_ms:6.2f} ms  server CPU {self.server_cpu_us_per_call:5.0f} us/call  "
            f"client CPU {self.client_cpu_us_per_call:4.0f} us/call  "
            f"others {self.others_cpu:4.2f} CPU"
            + (f"  ERRORS {self.errors}" if self.errors else "")
        )


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent on anything but idling, summed over its CPUs."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# --- Servers ------------------------------------------------------------------------------------


class GrpcServer:
    """`manage.py grpcserver` on a free port, as production runs it."""

    def __init__(self, *, workers: int, env: dict[str, str]):
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "grpcserver",
                "--bind",
                self.target,
                "--workers",
                str(workers),
            ],
            cwd=PROJECT_DIR,
            # At the log level gunicorn runs with: each side writes its access line per call.
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait(self, timeout: float = 30) -> None:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"grpcserver exited with {self.process.returncode}")
                try:
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    return
                except grpc.RpcError:
                    time.sleep(0.1)
        raise TimeoutError("grpcserver did not answer")

    def memory_kib(self) -> tuple[int, int]:
        """(VmRSS, VmHWM): resident memory now and at its peak, in KiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# --- Clients ------------------------------------------------------------------------------------


async def load(call, *, calls: int, concurrency: int, pids: list[int]) -> Run:
    """`calls` calls, `concurrency` at a time; call(i) returns True when it succeeded. `pids`
    are the server's processes, whose CPU time is measured."""
    latencies: list[float] = []
    errors = 0

    async def worker(first: int) -> None:
        nonlocal errors
        for i in range(first, calls, concurrency):
            started = time.perf_counter()
            ok = await call(i)
            latencies.append(time.perf_counter() - started)
            errors += not ok

    cpu_before = cpu_seconds(pids)
    client_before = time.process_time()
    machine_before = machine_busy_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    server_cpu = cpu_seconds(pids) - cpu_before
    client_cpu = time.process_time() - client_before
    others = machine_busy_seconds() - machine_before - server_cpu - client_cpu
    cuts = statistics.quantiles(latencies, n=100)
    return Run(
        calls / elapsed,
        cuts[49] * 1000,
        cuts[98] * 1000,
        errors,
        server_cpu / calls * 1e6,
        client_cpu / calls * 1e6,
        max(others, 0) / elapsed,
    )


def grpc_caller(stub, action: str, key: str):
    from apps.rpc.values import to_struct
    from protos.dbapi.v1 import actions_pb2

    requests = [
        actions_pb2.CallRequest(module="example", action=action, params=to_struct(action_input(i)))
        for i in range(1000)
    ]
    metadata = (("authorization", f"Bearer {key}"),)

    async def call(i: int) -> bool:
        try:
            await stub.Call(requests[i % 1000], metadata=metadata, timeout=30)
        except grpc.aio.AioRpcError:
            return False
        return True

    return call


def http_caller(port: int, action: str, key: str):
    """POST /actions/example/<action> on a new TCP connection each time."""

    def request(i: int) -> bytes:
        body = json.dumps(action_input(i)).encode()
        head = (
            f"POST /actions/example/{action} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        return head.encode() + body

    requests = [request(i) for i in range(1000)]

    async def call(i: int) -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(requests[i % 1000])
        answer = await reader.read()  # to the end: the server closes the connection
        writer.close()
        await writer.wait_closed()
        return answer.startswith(b"HTTP/1.1 200")

    return call


# --- Measurements -------------------------------------------------------------------------------


async def compare_calls(
    *, rpc: list[GrpcServer], http: Server, key: str, calls: int, concurrency: int, rounds: int
) -> dict:
    from protos.dbapi.v1 import actions_pb2_grpc

    report = {}
    pids = {"grpc": [s.process.pid for s in rpc], "http": [http.process.pid, *http.worker_pids()]}
    target = "ipv4:" + ",".join(server.target for server in rpc)
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        stub = actions_pb2_grpc.ActionsStub(channel)
        for action in ACTIONS:
            sides = {
                "grpc": grpc_caller(stub, action, key),
                "http": http_caller(http.port, action, key),
            }
            for side, call in sides.items():  # warm up: connections, caches, imports
                await load(call, calls=500, concurrency=concurrency, pids=pids[side])
            runs: dict[str, list[Run]] = {side: [] for side in sides}
            for round_number in range(rounds):
                order = list(sides) if round_number % 2 == 0 else list(reversed(sides))
                for side in order:
                    run = await load(
                        sides[side], calls=calls, concurrency=concurrency, pids=pids[side]
                    )
                    runs[side].append(run)
                    print(f"  {action} round {round_number + 1} {side:<4} {run.line()}", flush=True)
            report[action] = {
                side: {
                    "calls_per_second": statistics.median(r.calls_per_second for r in rs),
                    "p50_ms": statistics.median(r.p50_ms for r in rs),
                    "p99_ms": statistics.median(r.p99_ms for r in rs),
                    "server_cpu_us_per_call": statistics.median(
                        r.server_cpu_us_per_call for r in rs
                    ),
                    "client_cpu_us_per_call": statistics.median(
                        r.client_cpu_us_per_call for r in rs
                    ),
                    "others_cpu": statistics.median(r.others_cpu for r in rs),
                    "errors": sum(r.errors for r in rs),
                }
                for side, rs in runs.items()
            }
            report[action]["ratio"] = (
                report[action]["grpc"]["calls_per_second"]
                / report[action]["http"]["calls_per_second"]
            )
    return report


def measure_stream(*, workers: int, env: dict[str, str], key: str) -> dict:
    """100,000 rows streamed from a fresh server: rows/s and its peak RSS, then the same rows
    answered whole by Call, for comparison."""
    from apps.rpc.client import ActionsClient

    server = GrpcServer(workers=workers, env=env)
    try:
        server.wait()
        with ActionsClient(server.target, key) as client:
            list(client.stream("example", "numbers", count=10))  # warm up
            rss_before, _ = server.memory_kib()
            started = time.perf_counter()
            rows = sum(1 for _ in client.stream("example", "numbers", count=STREAM_ROWS))
            elapsed = time.perf_counter() - started
            _, peak_streamed = server.memory_kib()
            client.call("example", "numbers", count=STREAM_ROWS)
            _, peak_whole = server.memory_kib()
    finally:
        server.stop()
    return {
        "rows": rows,
        "rows_per_second": rows / elapsed,
        "rss_before_kib": rss_before,
        "peak_rss_streamed_kib": peak_streamed,
        "peak_rss_call_whole_kib": peak_whole,
    }


def print_summary(calls: dict, stream: dict) -> None:
    print(
        f"\n{'action':<6} {'gRPC/s':>8} {'HTTP/s':>8} {'ratio':>6} {'p99 ms gRPC / HTTP':>20}"
        f" {'server CPU us/call gRPC / HTTP':>31} {'client CPU us/call gRPC / HTTP':>31}"
    )
    for action, result in calls.items():
        rpc, http = result["grpc"], result["http"]
        print(
            f"{action:<6} {rpc['calls_per_second']:8.0f} {http['calls_per_second']:8.0f} "
            f"{result['ratio']:6.2f} {rpc['p99_ms']:9.2f} / {http['p99_ms']:<8.2f} "
            f"{rpc['server_cpu_us_per_call']:15.0f} / {http['server_cpu_us_per_call']:<6.0f}"
            f"{rpc['client_cpu_us_per_call']:22.0f} / {http['client_cpu_us_per_call']:<6.0f}"
            + ("  ERRORS" if rpc["errors"] or http["errors"] else "")
        )
    mib = {name: value // 1024 for name, value in stream.items() if name.endswith("_kib")}
    print(
        f"stream: {stream['rows_per_second']:.0f} rows/s; server RSS "
        f"{mib['rss_before_kib']} MiB before, peak {mib['peak_rss_streamed_kib']} MiB streaming "
        f"(peak {mib['peak_rss_call_whole_kib']} MiB answering the same rows whole)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--grpc-workers", type=int, default=8, help="grpcserver threads (at most)")
    parser.add_argument(
        "--grpc-processes", type=int, help="grpcserver processes (default: --workers)"
    )
    args = parser.parse_args()

    from bench.run import setup_django

    setup_django()
    from apps.actions.clients import create_api_client
    from apps.actions.models import ApiClient

    ApiClient.objects.filter(name="bench-rpc").delete()
    _, key = create_api_client(name="bench-rpc")
    env = bench_env()

    http = Server("config.wsgi", workers=args.workers, env=env)
    processes = args.grpc_processes or args.workers
    rpc = [GrpcServer(workers=args.grpc_workers, env=env) for _ in range(processes)]
    try:
        http.wait("/health/live")
        for server in rpc:
            server.wait()
        print(
            f"example/foo and example/bar, {args.calls} calls x {args.rounds} rounds, "
            f"concurrency {args.concurrency}: gRPC ({processes} grpcserver, "
            f"{args.grpc_workers} threads each, one channel) vs HTTP (gunicorn -w {args.workers}, "
            "a new connection per call)",
            flush=True,
        )
        calls = asyncio.run(
            compare_calls(
                rpc=rpc,
                http=http,
                key=key,
                calls=args.calls,
                concurrency=args.concurrency,
                rounds=args.rounds,
            )
        )
    finally:
        http.stop()
        for server in rpc:
            server.stop()
    print(f"streaming {STREAM_ROWS} rows of example/numbers over gRPC", flush=True)
    stream = measure_stream(workers=args.grpc_workers, env=env, key=key)

    print_summary(calls, stream)
    results_dir = PROJECT_DIR / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    out = results_dir / f"rpc-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "calls": calls, "stream": stream}, indent=2))
    print(f"\nwritten to {out.relative_to(PROJECT_DIR)}")
    failed = any(r["grpc"]["errors"] or r["http"]["errors"] for r in calls.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
