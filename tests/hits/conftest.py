"""Helpers for the hit counter's tests: a Redis that can be cut, and flushes that can be stopped."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connections

from apps.hits.signals import flush_step
from tests.servers import redis_db


class RedisProxy:
    """The test Redis behind a TCP proxy that a test can cut and restore.

    Cut, it drops every connection, then accepts new ones and never answers them: what a hung
    Redis or a lost network looks like to a client, which waits for its socket timeout.
    """

    def __init__(self, target_url: str):
        target = urlsplit(target_url)
        self.target = (target.hostname, target.port or 6379)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/{redis_db()}"
        self.up = True
        self.held = 0  # connections accepted while cut, and never answered
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._sockets.append(client)
                if not self.up:
                    self.held += 1
                    continue  # hold it open and silent
                upstream = socket.create_connection(self.target)
                self._sockets.append(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _drop_connections(self) -> None:
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def cut(self) -> None:
        self.up = False
        self._drop_connections()

    def restore(self) -> None:
        self.up = True
        self._drop_connections()

    def close(self) -> None:
        self.listener.close()
        self._drop_connections()


class ManualClock:
    """A monotonic clock that moves only when the test moves it: for the cache's circuit
    breaker, so that a test waits for no retry delay and no scheduling can make one pass."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def redis_proxy() -> Iterator[RedisProxy]:
    proxy = RedisProxy(settings.REDIS_URL)
    yield proxy
    proxy.close()


class SimulatedCrash(Exception):
    """Raised by a receiver of `flush_step`: the flush stops there, as if its process died."""


@contextlib.contextmanager
def flush_stopping_at(step: str, action: Callable[[], None]) -> Iterator[None]:
    """Run `action` in the first flush that reaches `step` (then no more)."""
    done = threading.Event()

    def receiver(sender, *, step: str, **kwargs) -> None:
        if step == wanted and not done.is_set():
            done.set()
            action()

    wanted = step
    flush_step.connect(receiver, weak=False)
    try:
        yield
    finally:
        flush_step.disconnect(receiver)


def crash() -> None:
    raise SimulatedCrash


def in_background(function: Callable[[], object]) -> Future:
    """Call `function` in a new thread, which closes its database connection when done."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(function())
        except BaseException as exc:
            future.set_exception(exc)
        finally:
            connections.close_all()

    threading.Thread(target=run, daemon=True).start()
    return future


def in_threads(function: Callable[[], object], *, count: int, timeout: float = 60) -> list:
    """Call `function` in `count` threads at once and return what each returned."""
    futures = [in_background(function) for _ in range(count)]
    return [future.result(timeout) for future in futures]
