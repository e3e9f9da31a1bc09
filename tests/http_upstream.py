"""A real HTTP server standing in for an upstream service (the original Flask app), in a thread.

It answers the original's `GET /hello/<name>`, plus paths that misbehave on purpose, and records
what it saw: every request with its headers, and how many TCP connections were opened.

    /hello/<name>           200 "Hello <name>!"
    /flaky/<n>/<anything>   503 for the first n requests to that path, then as <anything>
    /slow/<seconds>/...     waits, then as what follows (200 "slow" when nothing does)
    /status/<code>          answers that status

The prefixes nest, so that an upstream URL of `…/slow/1` makes `/hello/ana` slow.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Upstream:
    """What a test needs of the running server."""

    url: str
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0
    failures_left: dict[str, int] = field(default_factory=dict)

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so that connection reuse can be counted
    upstream: Upstream

    def setup(self) -> None:
        super().setup()
        self.upstream.connections += 1

    def log_message(self, format: str, *args) -> None:
        pass  # quiet

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.upstream.requests.append(Seen(self.command, self.path, dict(self.headers.items())))
        self._route(self.path.strip("/").split("/"))

    def _route(self, parts: list[str]) -> None:
        if parts[0] == "hello" and len(parts) == 2:
            self._answer(200, f"Hello {unquote(parts[1])}!")
        elif parts[0] == "flaky" and len(parts) >= 3:
            left = self.upstream.failures_left.setdefault(self.path, int(parts[1]))
            if left:
                self.upstream.failures_left[self.path] = left - 1
                self._answer(503, "try again")
            else:
                self._route(parts[2:])
        elif parts[0] == "slow" and len(parts) >= 2:
            time.sleep(float(parts[1]))
            if len(parts) > 2:
                self._route(parts[2:])
            else:
                self._answer(200, "slow")
        elif parts[0] == "status" and len(parts) == 2:
            self._answer(int(parts[1]), "as asked")
        elif parts[0] == "badjson":
            self._answer(200, '{"not": json', content_type="application/json")
        else:
            self._answer(404, "no such path")

    def _answer(self, status: int, text: str, content_type: str = "text/plain") -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client that gave up (the timeout tests) leaves a broken pipe: expected, not news.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def http_upstream() -> Iterator[Upstream]:
    """Run the server on a free loopback port for the duration of the block."""
    upstream = Upstream(url="")
    handler = type("Handler", (_Handler,), {"upstream": upstream})
    server = _Server(("127.0.0.1", 0), handler)
    upstream.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def upstream_config(url: str, **overrides) -> dict:
    """An UPSTREAMS entry for a test server: short timeout, two retries, no token."""
    return {"URL": url, "TIMEOUT": 2.0, "RETRIES": 2, "TOKEN": "", **overrides}
