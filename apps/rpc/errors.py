"""Errors as gRPC statuses: the project's problem document, given a status code.

The same exception gives the same problem document (`apps.core.problems`) over HTTP and gRPC: the
detail, the per-field `errors`, the logging of a bug's traceback. Here its HTTP status picks the
gRPC code, and the document travels in the trailing metadata as `problem-bin`.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from apps.core.problems import Problem, ProblemDocument, document_for_exception

Code = grpc.StatusCode

# The HTTP status of a problem -> the gRPC code of the same error.
GRPC_CODES = {
    400: Code.INVALID_ARGUMENT,  # input the serializer rejects: `errors` per field
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND,
    405: Code.UNIMPLEMENTED,
    409: Code.ABORTED,  # an integrity error (rolled back), or an Idempotency-Key in flight
    413: Code.RESOURCE_EXHAUSTED,
    415: Code.INVALID_ARGUMENT,
    422: Code.FAILED_PRECONDITION,  # an Idempotency-Key used before for another call
    429: Code.RESOURCE_EXHAUSTED,
    500: Code.INTERNAL,  # a bug: the request id, never a traceback
    501: Code.UNIMPLEMENTED,
    502: Code.UNAVAILABLE,  # an upstream service failed
    503: Code.UNAVAILABLE,
    504: Code.DEADLINE_EXCEEDED,  # an upstream service was too slow
}


class UndecodableMessage(Problem):
    """A request message that is not the method's protobuf message (garbage, or nested past
    protobuf's depth limit): bad input like any other, answered as such."""

    status_code = 400
    default_detail = "The request message could not be decoded."


class ServerBusy(Problem):
    """Every thread for this kind of call is taken. Refused at once, so that the client can
    try another server or come back, rather than wait behind calls that may take long."""

    status_code = 429
    type_slug = "server-busy"
    default_detail = "The server is serving as many calls of this kind as it can. Try again."
    headers = {"Retry-After": "1"}


@dataclass(frozen=True)
class RpcStatus:
    """How a call ends when it fails."""

    code: grpc.StatusCode
    details: str
    problem: bytes  # the problem+json document the HTTP API answers for the same error
    metadata: tuple[tuple[str, str], ...] = ()  # the problem's headers, as trailing metadata


def status_for_exception(exc: BaseException) -> RpcStatus:
    """The gRPC status for an exception raised while serving a call (a bug's is logged)."""
    return status_for_problem(document_for_exception(exc))


def status_for_problem(document: ProblemDocument) -> RpcStatus:
    body = document.body()
    code = GRPC_CODES.get(document.status, Code.UNKNOWN)
    details = document.detail or document.title
    if code is Code.INTERNAL and body.get("request_id"):
        details = f"{details} Request id: {body['request_id']}."
    metadata = tuple((name.lower(), value) for name, value in document.headers.items())
    return RpcStatus(code=code, details=details, problem=document.content(), metadata=metadata)
