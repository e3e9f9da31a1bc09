"""The threads that serve gRPC calls: grpcio's executor, a `ThreadPoolExecutor`, told two more
things.

How many calls it holds: the server refuses a call when every thread of its kind is taken
(RESOURCE_EXHAUSTED at once) rather than queue it behind calls that may take long.

How to end: Django's database connections belong to the thread that opened them, and a
ThreadPoolExecutor has no hook for a thread's end, so `stop()` hands each thread a task that
closes its own connections before the threads end (a test database can then be dropped, and
PostgreSQL sees a clean goodbye rather than a dropped socket).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any

from django.db import connections

# Seconds the threads wait for each other to close their connections; only a thread that no
# longer takes tasks would make them wait that long.
BARRIER_TIMEOUT = 10.0


class Workers(futures.ThreadPoolExecutor):
    """At most `size` threads, started as calls need them, each keeping its database connections
    from one call to the next (as CONN_MAX_AGE says)."""

    def __init__(self, size: int, *, name: str):
        if size < 1:
            raise ValueError("a pool needs at least one thread")
        super().__init__(max_workers=size, thread_name_prefix=name, initializer=self._started)
        self.size = size
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._held = 0  # calls submitted and not yet done
        self._thread_ids: set[int] = set()
        self._stopped = False

    @property
    def full(self) -> bool:
        """Whether every thread has a call: a new one would wait for a thread."""
        return self._held >= self.size

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future:
        with self._lock:
            self._held += 1
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._done(None)
            raise
        future.add_done_callback(self._done)
        return future

    def stop(self) -> None:
        """Wait for the calls still running (the server has stopped taking new ones), have
        each thread close its database connections, then end the threads. Once is enough."""
        with self._settled:
            if self._stopped:
                return
            self._stopped = True
            self._settled.wait_for(lambda: self._held == 0)
        self._close_connections_in_each_thread()
        self.shutdown(wait=True)

    def _close_connections_in_each_thread(self) -> None:
        """One task per thread, each waiting at a barrier until every thread holds one, so that
        no thread takes two; a thread started meanwhile is caught by the next round."""
        closed: set[int] = set()
        while True:
            with self._lock:
                if self._thread_ids <= closed:
                    return
                threads = len(self._thread_ids)
            barrier = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)
            tasks = [self.submit(self._close_connections, barrier, closed) for _ in range(threads)]
            futures.wait(tasks)
            if barrier.broken:
                return

    def _started(self) -> None:
        with self._lock:
            self._thread_ids.add(threading.get_ident())

    def _done(self, future: futures.Future | None) -> None:
        with self._lock:
            self._held -= 1
            if not self._held:
                self._settled.notify_all()

    @staticmethod
    def _close_connections(barrier: threading.Barrier, closed: set[int]) -> None:
        connections.close_all()
        closed.add(threading.get_ident())
        with contextlib.suppress(threading.BrokenBarrierError):  # see BARRIER_TIMEOUT
            barrier.wait()
