"""The threads serving calls: few at once, another only for a call that waited too long."""

from __future__ import annotations

import threading
import time

import pytest

from apps.rpc.pool import CallPool


class Calls:
    """Calls that wait until they are let go, recording the thread each ran on."""

    def __init__(self):
        self.go = threading.Event()
        self.started: dict[str, str] = {}

    def blocking(self, name: str) -> str:
        self.started[name] = threading.current_thread().name
        assert self.go.wait(timeout=10)
        return name

    def quick(self, name: str) -> str:
        self.started[name] = threading.current_thread().name
        return name


def wait_until(condition, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def calls() -> Calls:
    return Calls()


def test_every_call_answers_through_its_future(calls):
    with CallPool(4) as pool:
        answers = [pool.submit(calls.quick, f"call {i}") for i in range(100)]
        assert [answer.result(timeout=5) for answer in answers] == [f"call {i}" for i in range(100)]


def test_an_exception_goes_to_the_future():
    with CallPool(2) as pool:
        failed = pool.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            failed.result(timeout=5)
        assert pool.submit(lambda: "still serving").result(timeout=5) == "still serving"


def test_a_call_waits_for_a_running_one_rather_than_waking_another_thread(calls):
    with CallPool(4, running=1, grace=60) as pool:
        first = pool.submit(calls.blocking, "first")
        wait_until(lambda: "first" in calls.started)
        second = pool.submit(calls.quick, "second")
        time.sleep(0.1)
        assert "second" not in calls.started
        calls.go.set()
        assert second.result(timeout=5) == "second"
        assert first.result(timeout=5) == "first"
    assert calls.started["second"] == calls.started["first"]  # taken by the same thread


def test_a_slow_call_holds_the_others_back_by_the_grace_at_most(calls):
    with CallPool(2, running=1, grace=0.05) as pool:
        slow = pool.submit(calls.blocking, "slow")
        wait_until(lambda: "slow" in calls.started)
        assert pool.submit(calls.quick, "quick").result(timeout=5) == "quick"
        assert not slow.done()
        calls.go.set()
        assert slow.result(timeout=5) == "slow"


def test_never_more_threads_than_max_workers(calls):
    with CallPool(3, running=1, grace=0.01) as pool:
        answers = [pool.submit(calls.blocking, f"call {i}") for i in range(6)]
        wait_until(lambda: len(calls.started) == 3)
        time.sleep(0.1)
        assert len(calls.started) == 3  # the other three wait for a thread
        calls.go.set()
        assert [answer.result(timeout=5) for answer in answers] == [f"call {i}" for i in range(6)]
    assert len(set(calls.started.values())) == 3


def test_shutdown_finishes_the_queued_calls_then_each_thread_runs_on_exit(calls):
    exited = []
    pool = CallPool(
        2, running=1, grace=60, on_exit=lambda: exited.append(threading.current_thread().name)
    )
    running = pool.submit(calls.blocking, "running")
    wait_until(lambda: "running" in calls.started)
    queued = pool.submit(calls.quick, "queued")
    pool.shutdown(wait=False)
    with pytest.raises(RuntimeError):
        pool.submit(calls.quick, "too late")
    calls.go.set()
    stopping = threading.Thread(target=pool.shutdown)  # now waits for the threads to end
    stopping.start()
    stopping.join(timeout=5)
    assert not stopping.is_alive()
    assert running.result() == "running"
    assert queued.result() == "queued"
    assert len(exited) == len(set(exited))  # each thread once, those that ran calls among them
    assert set(calls.started.values()) <= set(exited)
    assert not [thread for thread in threading.enumerate() if thread.name in exited]
