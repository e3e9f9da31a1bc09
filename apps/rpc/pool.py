"""The threads that serve gRPC calls: few at once, more only for calls that would wait too long.

Python runs one thread at a time (the GIL). A call here is mostly Python with short waits for
Redis or PostgreSQL, so two calls running at once keep the process busy; with more, the threads
mostly wait for each other, and on a small machine the switches between them cost more than the
calls' own work (measured with `make bench-grpc` on two cores: eight threads for four calls in
flight took ~21 context switches and ~560 µs of server CPU per example/foo call; this pool, ~14
and ~410 µs, and served 1.4 times the calls per second). So the pool starts at most RUNNING calls
at once and the next call waits for one of them to end, taken by the thread that ended it without
a sleep in between. A call that has waited GRACE seconds is started on another thread all the
same, up to `max_workers`: a slow call (a long stream, a slow query, an upstream) holds the
others back by GRACE at most.

Idle threads are woken last-in first-out, so the same few threads, with their warm database
connections, serve the calls. Each thread runs `on_exit` when the pool shuts down (the server
closes that thread's database connections there).
"""

from __future__ import annotations

import collections
import functools
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

# Calls started at once; the GIL runs one, the other may be waiting for the database.
RUNNING = 2
# How long (seconds) a call waits for a running one to end before another thread takes it.
GRACE = 0.001

# What a thread is asked to do next.
_WORK = "work"  # run queued calls until there are none
_WATCH = "watch"  # take the oldest queued call once it has waited GRACE
_STOP = "stop"


class _Call:
    __slots__ = ("args", "fn", "future", "kwargs", "queued")

    def __init__(self, future: futures.Future, fn: Callable, args: tuple, kwargs: dict):
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.queued = time.monotonic()

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # handed to whoever waits on the future
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)


class _Thread:
    __slots__ = ("role", "wake")

    def __init__(self, role: str):
        self.role = role
        self.wake = threading.Lock()  # held while idle; released to hand it a role


class CallPool(futures.Executor):
    """An executor for `grpc.server`: at most `max_workers` threads, RUNNING calls at once
    unless one has waited GRACE (see the module's docstring)."""

    def __init__(
        self,
        max_workers: int,
        *,
        running: int = RUNNING,
        grace: float = GRACE,
        thread_name_prefix: str = "grpc",
        on_exit: Callable[[], Any] | None = None,
    ):
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self._running_limit = min(running, max_workers)
        self._grace = grace
        self._prefix = thread_name_prefix
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._queue: collections.deque[_Call] = collections.deque()
        self._idle: list[_Thread] = []  # a stack: the last thread to go idle is woken first
        self._threads: list[threading.Thread] = []
        self._running = 0  # threads running (or about to take) calls
        self._watcher: _Thread | None = None
        self._watching = threading.Condition(self._lock)  # the watcher waits on it
        self._shutdown = False

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> futures.Future:
        future: futures.Future = futures.Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot start new calls after shutdown")
            self._queue.append(_Call(future, fn, args, kwargs))
            if self._running < self._running_limit:
                self._hand(_WORK)
            elif self._watcher is None:
                self._hand(_WATCH)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Let the threads end once the queued calls are done (or cancelled)."""
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while self._queue:
                    self._queue.popleft().future.cancel()
            idle, self._idle = self._idle, []
            for thread in idle:
                thread.role = _STOP
                thread.wake.release()
            self._watching.notify()
        if wait:
            for thread in list(self._threads):
                thread.join()

    # --- With the lock held ----------------------------------------------------------------------

    def _hand(self, role: str) -> None:
        """Give `role` to the thread that went idle last, or to a new one while there may be
        more; with none to spare, the queued calls wait for a running thread to take them."""
        if self._idle:
            thread = self._idle.pop()
            thread.role = role
            wake = thread.wake.release
        elif len(self._threads) < self.max_workers:
            thread = _Thread(role)
            wake = functools.partial(self._start, thread)
        else:
            return
        if role is _WORK:
            self._running += 1
        else:
            self._watcher = thread
        wake()

    def _start(self, thread: _Thread) -> None:
        name = f"{self._prefix}_{len(self._threads)}"
        os_thread = threading.Thread(target=self._serve, args=(thread,), name=name, daemon=True)
        self._threads.append(os_thread)
        os_thread.start()

    def _go_idle(self, thread: _Thread) -> str | None:
        if self._shutdown:
            return _STOP
        thread.role = None
        thread.wake.acquire(blocking=False)  # taken again: the next role releases it
        self._idle.append(thread)
        return None

    # --- In the pool's threads -------------------------------------------------------------------

    def _serve(self, thread: _Thread) -> None:
        role: str | None = thread.role
        try:
            while role is not _STOP:
                if role is _WATCH:
                    role = self._watch(thread)
                if role is _WORK:
                    role = self._work(thread)
                if role is None:  # idle until handed a role
                    thread.wake.acquire()
                    role = thread.role
        finally:
            if self._on_exit is not None:
                self._on_exit()

    def _work(self, thread: _Thread) -> str | None:
        """Run queued calls until there are none left; then go idle."""
        while True:
            with self._lock:
                if not self._queue:
                    self._running -= 1
                    return self._go_idle(thread)
                call = self._queue.popleft()
            call.run()
            del call

    def _watch(self, thread: _Thread) -> str | None:
        """Wait until the oldest queued call has waited GRACE, then run calls as well."""
        with self._lock:
            while True:
                if not self._queue:  # running threads took them all
                    self._watcher = None
                    return self._go_idle(thread)
                waited = time.monotonic() - self._queue[0].queued
                if (
                    waited >= self._grace
                    or self._running < self._running_limit
                    or self._shutdown  # help finish what is queued
                ):
                    self._watcher = None
                    self._running += 1
                    if len(self._queue) > 1 and not self._shutdown:
                        self._hand(_WATCH)  # for the calls after this one
                    return _WORK
                self._watching.wait(self._grace - waited)
