"""One client, several servers: a channel to dbapi connects to every address its target names
or resolves to (the pods behind a headless Service), spreads its calls over them and goes on
when one stops. Both ActionsClient's own channels and `upstream_channel()` do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.core.upstreams import close_upstreams, upstream_channel
from apps.rpc.client import ActionsClient
from apps.rpc.server import Server, build_server

ESTABLISHED = "01"


def accepted_connections(port: int) -> int:
    """The open TCP connections a server of this process accepted on `port` (gRPC's sockets
    are IPv6 ones, listing 127.0.0.1 as ::ffff:127.0.0.1, so both tables are read)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            _, local, _, state, *_ = line.split()
            if state == ESTABLISHED and int(local.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


@pytest.fixture
def servers(transactional_db) -> Iterator[list[Server]]:
    started = [build_server(bind="127.0.0.1:0", workers=2) for _ in range(2)]
    for server in started:
        server.start()
    yield started
    for server in started:
        server.stop(grace=1)


@pytest.fixture
def target(servers) -> str:
    """Both servers, as one target."""
    return "ipv4:" + ",".join(f"127.0.0.1:{server.port}" for server in servers)


def calls_spread_and_survive(client: ActionsClient, servers: list[Server]) -> None:
    for i in range(20):
        assert client.call("example", "foo", name=f"ana{i}")["name"] == f"ana{i}"
    # A connection to each (gRPC's default policy would use the first one only).
    assert [accepted_connections(server.port) for server in servers] == [1, 1]

    servers[0].stop(grace=5)
    for i in range(10):
        assert client.call("example", "foo", name=f"bo{i}")["name"] == f"bo{i}"
    assert [accepted_connections(server.port) for server in servers] == [0, 1]


def test_an_actions_client_calls_every_server_of_its_target(servers, target, api_key):
    with ActionsClient(target, api_key, timeout=10) as client:
        calls_spread_and_survive(client, servers)


def test_a_named_grpc_upstream_calls_every_server_of_its_url(settings, servers, target, api_key):
    settings.UPSTREAMS = {
        "dbapi": {"URL": f"grpc://{target}", "TIMEOUT": 10.0, "RETRIES": 0, "TOKEN": api_key}
    }
    try:
        calls_spread_and_survive(ActionsClient(upstream_channel("dbapi")), servers)
    finally:
        close_upstreams()
