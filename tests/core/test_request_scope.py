"""The request scope of the fast paths and gRPC calls (apps.core.scope) checks the thread's
database connections as Django's request signals do: one left broken is replaced, never handed
to the next call."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from django.db import Error, connection, connections

from apps.core.scope import request_scope

SSL_REQUEST = 80877103


class CuttingProxy:
    """A TCP proxy to PostgreSQL that, while `cut` is set, drops a new connection when its client
    sends its first query: for Django, the SET TIME ZONE of its set-up, after libpq connected."""

    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        self.cut = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.upstream)
                threading.Thread(target=self._up, args=(client, server, self.cut)).start()
                threading.Thread(target=self._down, args=(server, client)).start()

    def _down(self, server: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                client.sendall(data)
        _shut(server, client)

    def _up(self, client: socket.socket, server: socket.socket, cut: bool) -> None:
        with contextlib.suppress(OSError):
            started = False
            while True:
                if started:  # a typed message: its kind, then its length
                    kind = _read(client, 1)
                    if cut and kind == b"Q":
                        break
                    head = kind + _read(client, 4)
                    length = struct.unpack("!i", head[1:])[0]
                else:  # the startup packet, or an SSLRequest before it
                    head = _read(client, 4)
                    length = struct.unpack("!i", head)[0]
                body = _read(client, length - 4)
                server.sendall(head + body)
                # After an SSLRequest (answered by the server, through _down) comes the startup.
                started = started or struct.unpack("!i", body[:4])[0] != SSL_REQUEST
        _shut(client, server)

    def close(self) -> None:
        self.listener.close()


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def _shut(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def proxied_default() -> Iterator[CuttingProxy]:
    proxy = CuttingProxy(
        connection.settings_dict["HOST"] or "127.0.0.1",
        int(connection.settings_dict["PORT"] or 5432),
    )
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_while_it_was_set_up_is_replaced_by_the_next_call():
    """The server goes away after libpq connected and before Django's set-up statement: Django
    keeps that connection (connection_created is not sent), and the scope must close it."""
    settings_dict = {
        **connection.settings_dict,
        "HOST": "127.0.0.1",
        "TIME_ZONE": "Europe/Madrid",  # not the server's: Django's set-up sends SET TIME ZONE
    }
    outcomes: list[str] = []

    def call() -> None:
        try:
            with request_scope(None), connections["default"].cursor() as cursor:
                cursor.execute("SELECT 1")
            outcomes.append("ok")
        except Error as exc:  # InterfaceError too: a closed connection handed out
            outcomes.append(type(exc).__name__)

    def calls_in_a_thread_of_their_own(proxy: CuttingProxy) -> None:
        wrapper = connections.create_connection("default")
        wrapper.settings_dict = {**settings_dict, "PORT": proxy.port}
        connections["default"] = wrapper  # this thread's
        try:
            proxy.cut = True
            call()
            proxy.cut = False
            call()
            call()
        finally:
            wrapper.close()

    with proxied_default() as proxy:
        thread = threading.Thread(target=calls_in_a_thread_of_their_own, args=(proxy,))
        thread.start()
        thread.join(timeout=30)
    assert outcomes == ["OperationalError", "ok", "ok"]
