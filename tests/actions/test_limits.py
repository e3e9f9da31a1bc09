"""An oversized body is refused from its Content-Length, before it is read into memory."""

from __future__ import annotations

import json
import socket

import pytest

from apps.actions.clients import create_api_client
from tests.servers import gunicorn


def raw_post(base_url: str, *, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
    """Send a request by hand: the body may be shorter than the Content-Length claims."""
    host, port = base_url.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"POST /actions/example/bar HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode())
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer:
                head_part, _, rest = answer.partition(b"\r\n\r\n")
                length = int(
                    next(
                        line.split(b":")[1]
                        for line in head_part.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    )
                )
                if len(rest) >= length:
                    break
    status_line, *header_lines = head_part.decode().split("\r\n")
    parsed = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), parsed, rest


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_declared_length_over_the_limit_is_413_without_waiting_for_the_body():
    _, key = create_api_client(name="big-sender")
    with gunicorn() as base_url:
        # Claims 100 MiB, sends 20 bytes: the answer comes at once, the body is never awaited.
        status, headers, body = raw_post(
            base_url,
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
                "Content-Length": str(100 * 1024 * 1024),
            },
            body=b'{"name": "ana", "em',
        )
    assert status == 413
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["detail"] == "The body may be at most 1048576 bytes."
