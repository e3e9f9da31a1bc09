"""Bodies sent with `Transfer-Encoding: chunked` (no Content-Length) are read like any other, up
to their endpoint's limit, under gunicorn (#12.5)."""

from __future__ import annotations

import http.client
import json
import socket
import threading

import pytest
from django.contrib.auth import get_user_model

from apps.actions.clients import create_api_client
from tests.servers import gunicorn

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

MiB = 1024 * 1024


def chunked_post(
    base_url: str, path: str, *, headers: dict[str, str], body: bytes, chunk: int = 64 * 1024
) -> tuple[int, dict[str, str], bytes, int]:
    """POST `body` in chunks while reading the answer; returns status, headers, body, and how
    many bytes of the request body the server let through before answering."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n{head}\r\n".encode()
    )
    sent = [0]

    def send() -> None:
        try:
            for start in range(0, len(body), chunk):
                piece = body[start : start + chunk]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent[0] += len(piece)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed: it reads no more

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    with sock:
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = response.read()
    sender.join(timeout=10)
    return response.status, dict(response.getheaders()), answer, sent[0]


@pytest.fixture(scope="module")
def server(django_db_setup):
    """One gunicorn for the module: each test makes the rows it sends for, and reads nothing
    another left."""
    with gunicorn() as base_url:
        yield base_url


def test_a_chunked_action_call_is_read_whole(server):
    _, key = create_api_client(name="chunked")
    status, _, body, _ = chunked_post(
        server,
        "/actions/example/foo",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        body=json.dumps({"name": "ana", "email": "ana@example.com"}).encode(),
        chunk=5,
    )
    assert status == 200, body
    assert json.loads(body)["email"] == "ana@example.com"


@pytest.mark.parametrize("size", [2 * MiB, 20 * MiB], ids=["2MiB", "20MiB"])
def test_a_chunked_body_over_the_limit_is_413_and_not_read_on(server, size):
    _, key = create_api_client(name=f"chunked-{size}")
    status, headers, body, sent = chunked_post(
        server,
        "/actions/example/foo",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        body=b'{"name": "' + b"a" * size + b'"}',
    )
    assert status == 413
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["detail"] == "The body may be at most 1048576 bytes."
    if size > 10 * MiB:
        assert sent < size  # the server answered without taking the rest


def test_a_chunked_login_reads_its_fields(server):
    get_user_model().objects.create_user("chunky", password="a long pass phrase 7")
    status, _, body, _ = chunked_post(
        server,
        "/api/v1/auth/token",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"username": "chunky", "password": "a long pass phrase 7"}).encode(),
        chunk=7,
    )
    assert status == 201, body
    assert json.loads(body)["token"]


def test_a_chunked_api_body_over_django_s_limit_is_413_and_changes_nothing(server, settings):
    """Outside /actions/ the limit is DATA_UPLOAD_MAX_MEMORY_SIZE: a login over it is refused
    before any password is checked, and no token is issued."""
    from apps.accounts.models import UserToken

    get_user_model().objects.create_user("bulky", password="a long pass phrase 7")
    padding = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    status, headers, body, _ = chunked_post(
        server,
        "/api/v1/auth/token",
        headers={"Content-Type": "application/json"},
        body=json.dumps(
            {"username": "bulky", "password": "a long pass phrase 7", "pad": padding}
        ).encode(),
    )
    assert status == 413
    assert headers["Content-Type"] == "application/problem+json"
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert json.loads(body)["detail"] == f"The body may be at most {limit} bytes."
    assert not UserToken.objects.filter(user__username="bulky").exists()
