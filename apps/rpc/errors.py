"""Errors as gRPC statuses, mapped in this one place from the HTTP problem for the same error.

An exception is first turned into the problem+json response the HTTP API would answer (so the
detail, the per-field `errors` and the logging of a 500 are exactly the HTTP API's); its status
then picks the gRPC code, and the problem document travels in the trailing metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import grpc

from apps.core.problems import problem_for_exception, server_error

Code = grpc.StatusCode

# The HTTP status of a problem -> the gRPC code of the same error.
GRPC_CODES = {
    400: Code.INVALID_ARGUMENT,  # input the serializer rejects: `errors` per field
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND,
    405: Code.UNIMPLEMENTED,
    409: Code.ABORTED,  # an integrity error: the transaction was rolled back
    413: Code.RESOURCE_EXHAUSTED,
    415: Code.INVALID_ARGUMENT,
    429: Code.RESOURCE_EXHAUSTED,
    500: Code.INTERNAL,  # a bug: the request id, never a traceback
    501: Code.UNIMPLEMENTED,
    502: Code.UNAVAILABLE,  # an upstream service failed
    503: Code.UNAVAILABLE,
    504: Code.DEADLINE_EXCEEDED,  # an upstream service was too slow
}


@dataclass(frozen=True)
class RpcStatus:
    """How a call ends when it fails."""

    code: grpc.StatusCode
    details: str
    problem: bytes  # the problem+json document the HTTP API answers for the same error


def status_for_exception(exc: Exception) -> RpcStatus:
    """The gRPC status for an exception raised while serving a call (a bug's is logged)."""
    response = problem_for_exception(exc) or server_error(exc)
    problem = json.loads(response.content)
    code = GRPC_CODES.get(response.status_code, Code.UNKNOWN)
    details = problem.get("detail") or problem["title"]
    if code is Code.INTERNAL and problem.get("request_id"):
        details = f"{details} Request id: {problem['request_id']}."
    return RpcStatus(code=code, details=details, problem=response.content)
