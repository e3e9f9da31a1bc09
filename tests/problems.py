"""What every API error looks like, asserted in one place."""

from __future__ import annotations

import json

from apps.core.problems import PROBLEM_CONTENT_TYPE as PROBLEM

__all__ = ["PROBLEM", "assert_problem"]


def assert_problem(response, status: int, *, type: str | None = None) -> dict:
    """An RFC 9457 problem with the project's shape and the response's request id; its body.
    `type` is the problem type's last segment, for problems that have one (`about:blank`
    otherwise)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = json.loads(response.content)
    assert body["type"] == (f"/problems/{type}" if type else "about:blank")
    assert body["status"] == status
    assert body["title"]
    assert body["request_id"] == response["X-Request-ID"]
    return body
