"""Redis Sentinel for tests: one master, one replica and three sentinels, each on a free loopback
port, all the test's own (never the machine's shared Redis); stopped afterwards."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.servers import free_port, stop, wait_until

MASTER_NAME = "dbapi"


@dataclass
class SentinelSetup:
    master_port: int
    replica_port: int
    sentinel_ports: list[int]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def sentinels(self) -> str:
        """REDIS_SENTINELS for the application."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def current_master(self) -> int | None:
        """The master's port as the sentinels' majority see it."""
        ports = []
        for port in self.sentinel_ports:
            with contextlib.suppress(redis.RedisError):
                found = redis.Redis(port=port, socket_timeout=1).sentinel_get_master_addr_by_name(
                    MASTER_NAME
                )
                ports.append(int(found[1]) if found else None)
        return max(set(ports), key=ports.count) if ports else None

    def kill_master(self) -> None:
        process = self.processes["master"]
        process.kill()
        process.wait()

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1)


def _redis(port: int, directory: Path, *args: str) -> subprocess.Popen:
    """A redis-server working in `directory`: a replica writes the snapshot its master sends to
    its `dir` even with `--save ""`, and the default `dir` is the current one (the project)."""
    return subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--dbfilename",
            f"dump-{port}.rdb",
            "--save",
            "",
            "--appendonly",
            "no",
            *args,
        ],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _answers(port: int) -> bool:
    try:
        return redis.Redis(port=port, socket_timeout=0.5).ping()
    except redis.RedisError:
        return False


@contextlib.contextmanager
def redis_sentinels(directory: Path) -> Iterator[SentinelSetup]:
    setup = SentinelSetup(
        master_port=free_port(),
        replica_port=free_port(),
        sentinel_ports=[free_port() for _ in range(3)],
    )
    try:
        setup.processes["master"] = _redis(setup.master_port, directory)
        wait_until(lambda: _answers(setup.master_port), timeout=10)
        setup.processes["replica"] = _redis(
            setup.replica_port, directory, "--replicaof", "127.0.0.1", str(setup.master_port)
        )

        def replica_in_sync() -> bool:
            info = setup.client(setup.replica_port).info("replication")
            return info.get("master_link_status") == "up"

        wait_until(replica_in_sync, timeout=10)
        for index, port in enumerate(setup.sentinel_ports):
            config = directory / f"sentinel-{index}.conf"  # a sentinel rewrites its file
            config.write_text(
                f"port {port}\n"
                "bind 127.0.0.1\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {setup.master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 500\n"
                f"sentinel failover-timeout {MASTER_NAME} 5000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            setup.processes[f"sentinel-{index}"] = subprocess.Popen(
                ["redis-sentinel", str(config)],
                cwd=directory,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        def sentinels_ready() -> bool:
            """Every sentinel knows the master, its replica and the two other sentinels."""
            for port in setup.sentinel_ports:
                try:
                    master = setup.client(port).sentinel_master(MASTER_NAME)
                except redis.RedisError:
                    return False
                if master.get("num-slaves") != 1 or master.get("num-other-sentinels") != 2:
                    return False
            return True

        wait_until(sentinels_ready, timeout=30, interval=0.1)
        yield setup
    finally:
        for process in setup.processes.values():
            if process.poll() is None:
                stop(process, timeout=5)
