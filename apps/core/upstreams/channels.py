"""gRPC upstreams: what `Upstream` does for HTTP, done by an interceptor on the channel."""

from __future__ import annotations

import collections
import logging
from typing import Any

import grpc

from apps.core import metrics
from apps.core.request_id import METADATA_KEY, get_request_id

from .errors import UpstreamError, UpstreamTimeout

logger = logging.getLogger("apps.core.upstreams")


class _CallDetails(
    collections.namedtuple(
        "_CallDetails",
        ["method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"],
    ),
    grpc.ClientCallDetails,
):
    pass


class _UpstreamCall:
    """The call a gRPC upstream hands back, with its failures turned into UpstreamError.

    Everything but `result()` and iteration is passed to the call it wraps, so it behaves as
    that call (a grpc.Call and grpc.Future, or a response iterator) to its caller.
    """

    def __init__(self, call: Any, upstream: UpstreamInterceptor):
        self._call = call
        self._upstream = upstream

    def result(self, timeout: float | None = None) -> Any:
        try:
            return self._call.result(timeout)
        except grpc.RpcError as exc:
            self._upstream.raise_for(exc)
            raise

    def __iter__(self) -> _UpstreamCall:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._call)
        except grpc.RpcError as exc:
            self._upstream.raise_for(exc)
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


class UpstreamInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """What `upstream()` does for HTTP, for a gRPC channel: a deadline on every call, the
    request id (`x-request-id`) and the token (`authorization: Bearer`) in its metadata, and
    UNAVAILABLE / DEADLINE_EXCEEDED raised as UpstreamError / UpstreamTimeout.

    Other status codes are the upstream's answer and stay `grpc.RpcError` for the caller.
    """

    def __init__(self, name: str, *, timeout: float, token: str):
        self.name = name
        self.timeout = timeout
        self.authorization = ("authorization", f"Bearer {token}") if token else None

    def raise_for(self, exc: grpc.RpcError) -> None:
        """Raise UpstreamError or UpstreamTimeout for a failure of the upstream; return for
        its other answers, which the caller re-raises as they are."""
        code = exc.code() if isinstance(exc, grpc.Call) else None
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            error: UpstreamError = UpstreamTimeout(
                f"The upstream service {self.name!r} did not answer in time."
            )
        elif code == grpc.StatusCode.UNAVAILABLE:
            error = UpstreamError(f"The upstream service {self.name!r} could not be reached.")
        else:
            return
        metrics.record_dependency_error("upstream")
        logger.warning(
            "Upstream %s failed: %s: %s",
            self.name,
            code.name,
            exc.details(),
            extra={"upstream": self.name, "status_code": error.status_code},
        )
        raise error from exc

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        metadata = [
            (key, value)
            for key, value in (details.metadata or ())
            if key not in (METADATA_KEY, "authorization")
        ]
        request_id = get_request_id()
        if request_id:
            metadata.append((METADATA_KEY, request_id))
        if self.authorization:
            metadata.append(self.authorization)
        return _CallDetails(
            details.method,
            details.timeout if details.timeout is not None else self.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return _UpstreamCall(continuation(self._details(client_call_details), request), self)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return _UpstreamCall(continuation(self._details(client_call_details), request), self)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        details = self._details(client_call_details)
        return _UpstreamCall(continuation(details, request_iterator), self)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        details = self._details(client_call_details)
        return _UpstreamCall(continuation(details, request_iterator), self)
