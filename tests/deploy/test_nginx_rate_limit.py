"""deploy/nginx/nginx.conf limits the login paths per client address: a real nginx in front of a
small upstream that counts what reaches it, on free loopback ports. Each client address is a
loopback address of its own (127.0.0.x), as nginx sees distinct clients."""

from __future__ import annotations

import http.client
import http.server
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .conftest import Answer, running_nginx

LOGIN_PATHS = ("/api/v1/auth/token", "/account/login/", "/admin/login/")
BURST = 20  # nginx.conf: burst=20 over 20 requests a minute


class Upstream(http.server.ThreadingHTTPServer):
    """Answers 200 to anything and counts the requests that reached it, by path."""

    daemon_threads = True

    def __init__(self):
        self.reached: Counter[str] = Counter()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _CountingHandler)


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        with self.server.lock:
            self.server.reached[self.path] += 1
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format, *args):  # quiet: the test reads the counts, not a log
        pass


@dataclass
class Proxy:
    port: int
    upstream: Upstream

    def request(self, path: str, *, client: str, method: str = "POST") -> Answer:
        """One request from the loopback address `client`, on a connection of its own."""
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=15, source_address=(client, 0)
        )
        try:
            body = b'{"username":"nobody","password":"wrong"}' if method == "POST" else None
            headers = {"Host": "localhost", "Content-Type": "application/json"}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            connection.close()


@pytest.fixture(scope="module")
def proxy() -> Iterator[Proxy]:
    upstream = Upstream()
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    try:
        with running_nginx(upstream=f"127.0.0.1:{upstream.server_address[1]}") as nginx:
            yield Proxy(nginx.port, upstream)
    finally:
        upstream.shutdown()
        upstream.server_close()


@pytest.mark.parametrize(
    ("path", "client"),
    [(path, f"127.0.0.{10 + i}") for i, path in enumerate(LOGIN_PATHS)],
    ids=LOGIN_PATHS,
)
def test_a_flood_on_a_login_path_from_one_address_gets_429s(proxy, path, client):
    answers = [proxy.request(path, client=client) for _ in range(BURST * 3)]
    statuses = Counter(answer.status for answer in answers)
    assert set(statuses) == {200, 429}, statuses
    assert statuses[200] > BURST  # the first request and the burst go through
    assert statuses[429] >= BURST  # then at most one every 3 s
    assert proxy.upstream.reached[path] >= statuses[200]  # 429s never reached the upstream


def test_the_429_is_a_problem_with_retry_after_and_the_request_id(proxy):
    client = "127.0.0.20"
    answers = [proxy.request("/account/login/", client=client) for _ in range(BURST * 3)]
    refused = next(answer for answer in answers if answer.status == 429)
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.headers["Retry-After"] == "3"
    [request_id] = refused.headers.get_all("X-Request-ID")
    problem = refused.json()
    assert (problem["status"], problem["title"]) == (429, "Too Many Requests")
    assert problem["request_id"] == request_id


def test_the_limit_is_per_client_address(proxy):
    flooder, bystander = "127.0.0.30", "127.0.0.31"
    flood = [proxy.request("/admin/login/", client=flooder) for _ in range(BURST * 3)]
    assert flood[-1].status == 429
    assert proxy.request("/admin/login/", client=bystander).status == 200


def test_the_login_paths_share_one_limit_per_address(proxy):
    client = "127.0.0.40"
    for _ in range(BURST * 2):
        proxy.request("/api/v1/auth/token", client=client)
    assert proxy.request("/account/login/", client=client).status == 429


@pytest.mark.parametrize("path", ["/actions/example/bar", "/api/v1/otp/verify", "/account/"])
def test_other_paths_are_not_limited(proxy, path):
    client = "127.0.0.50"
    statuses = {proxy.request(path, client=client).status for _ in range(BURST * 3)}
    assert statuses == {200}


def test_an_encoded_or_doubled_slash_login_path_is_limited_too(proxy):
    client = "127.0.0.60"
    for _ in range(BURST * 2):
        proxy.request("/account/%6Cogin/", client=client)
    assert proxy.request("//account/login/", client=client).status == 429
