"""What every API error looks like, asserted in one place."""

from __future__ import annotations

import json

from apps.core.problems import PROBLEM_CONTENT_TYPE as PROBLEM

__all__ = ["PROBLEM", "assert_problem"]


def assert_problem(response, status: int, type: str = "about:blank") -> dict:
    """An RFC 9457 problem with the project's shape and the response's request id; its body.

    `type` is "about:blank" or the slug a typed problem's `type` ends in.
    """
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = json.loads(response.content)
    if type == "about:blank":
        assert body["type"] == "about:blank"
    else:
        assert body["type"].endswith(f"/{type}"), body
    assert body["status"] == status
    assert body["title"]
    assert body["request_id"] == response["X-Request-ID"]
    return body
