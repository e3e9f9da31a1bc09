"""Streams whose client has stopped taking what they send are cancelled.

grpcio's synchronous server sends a stream's next message from the thread serving it, and that
thread waits as long as the client's flow-control window is full: a client that stops reading,
or never sends its next request, holds the thread, its database connection and any open
transaction for as long as it likes. So each stream records when it started waiting for its
client (a message handed over and not yet sent, a request asked for and not yet come), and one
watchdog thread cancels a stream that has waited longer than GRPC_STREAM_IDLE_TIMEOUT. The
cancelled call wakes its thread, which ends the stream: the transaction is rolled back there.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import grpc


class WatchedStream:
    """One stream: since when it has been waiting for its client, if it is."""

    __slots__ = ("context", "idle_for", "waiting_since")

    def __init__(self, context: grpc.ServicerContext):
        self.context = context
        # Set (time.monotonic()) while a message waits to be sent or a request to come.
        self.waiting_since: float | None = None
        # Set (seconds) when the watchdog cancelled it: how long its client had taken nothing.
        self.idle_for: float | None = None


class IdleStreams:
    """The watchdog: cancels every watched stream that has waited `timeout` seconds for its
    client. It looks a few times per timeout, so a stream is cancelled within 1.25 timeouts."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._streams: set[WatchedStream] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="grpc-idle-streams", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    @contextlib.contextmanager
    def watching(self, context: grpc.ServicerContext) -> Iterator[WatchedStream]:
        """Watch the stream served inside the block."""
        stream = WatchedStream(context)
        with self._lock:
            self._streams.add(stream)
        try:
            yield stream
        finally:
            with self._lock:
                self._streams.discard(stream)

    def _watch(self) -> None:
        period = self.timeout / 4
        while not self._stopping.wait(period):
            now = time.monotonic()
            with self._lock:
                streams = list(self._streams)
            for stream in streams:
                since = stream.waiting_since
                if since is not None and now - since >= self.timeout and stream.idle_for is None:
                    stream.idle_for = now - since
                    stream.context.cancel()  # wakes the thread waiting to send or receive
