"""`ActionsClient`: call dbapi's actions over gRPC from Python, over one persistent channel.

    client = ActionsClient("127.0.0.1:50051", key)
    client.call("example", "bar", name="ana")            # the result, as JSON values
    for row in client.stream("example", "numbers", count=100_000):
        ...

A refused or failed call raises ActionCallError with the status, the details and the problem
document the server sent (`errors` per field for INVALID_ARGUMENT). Needs no Django.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc

from protos.dbapi.v1 import actions_pb2, actions_pb2_grpc

from .metadata import PROBLEM_KEY, REQUEST_ID_KEY
from .values import from_value, to_struct

CHANNEL_OPTIONS = [
    # Results may be larger than gRPC's default 4 MiB, as they may be over HTTP.
    ("grpc.max_receive_message_length", -1),
    # Spread calls over every address the target names or resolves to (the pods behind a
    # headless Service, `ipv4:10.0.0.1:50051,10.0.0.2:50051`), a connection to each, instead of
    # gRPC's default of sending them all down the first connection that works.
    ("grpc.lb_policy_name", "round_robin"),
]


class ActionCallError(Exception):
    """A call the server refused or failed to answer."""

    def __init__(
        self,
        *,
        code: grpc.StatusCode,
        details: str,
        problem: dict[str, Any] | None = None,
        request_id: str | None = None,
    ):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.problem = problem or {}
        self.request_id = request_id

    @property
    def unreachable(self) -> bool:
        """No server answered: the call never reached one (nothing listens there, or no address
        could be connected to). A server that answers UNAVAILABLE itself sends a request id."""
        return self.code is grpc.StatusCode.UNAVAILABLE and self.request_id is None

    @property
    def errors(self) -> dict[str, list[str]]:
        """The messages per field of an INVALID_ARGUMENT, as the HTTP API's `errors`."""
        return self.problem.get("errors", {})

    @classmethod
    def from_rpc_error(cls, exc: grpc.RpcError) -> ActionCallError:
        code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
        details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        trailing = dict(exc.trailing_metadata() or ()) if isinstance(exc, grpc.Call) else {}
        problem = json.loads(trailing[PROBLEM_KEY]) if PROBLEM_KEY in trailing else None
        return cls(
            code=code, details=details, problem=problem, request_id=trailing.get(REQUEST_ID_KEY)
        )


class ActionsClient:
    """dbapi.v1.Actions over one channel, opened once and reused by every call and thread.

    `target` is host:port, or a channel of your own: `upstream_channel("dbapi")` adds the key,
    the request id and the upstream's timeout itself. `timeout` is each call's deadline in
    seconds; None sets none (a channel from upstream_channel() then sets the upstream's).
    """

    def __init__(
        self,
        target: str | grpc.Channel,
        key: str | None = None,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        secure: bool = False,
    ):
        if isinstance(target, str):
            credentials = grpc.ssl_channel_credentials() if secure else None
            self.channel = (
                grpc.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
                if credentials
                else grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
            )
            self._owns_channel = True
        else:
            self.channel = target
            self._owns_channel = False
        self.stub = actions_pb2_grpc.ActionsStub(self.channel)
        self.key = key
        self.timeout = timeout
        self.request_id = request_id

    def call(self, module: str, action: str, /, **params: Any) -> Any:
        """Run an action and return its result (JSON values: dict, list, str, number, ...)."""
        try:
            reply = self.stub.Call(
                self._request(module, action, params),
                timeout=self.timeout,
                metadata=self._metadata(),
            )
        except grpc.RpcError as exc:
            raise ActionCallError.from_rpc_error(exc) from exc
        return from_value(reply.result)

    def stream(self, module: str, action: str, /, **params: Any) -> Iterator[Any]:
        """Run an action and yield its result item by item as the server sends them.

        Stopping early (break, or closing the iterator) cancels the call on the server.
        """
        responses = self.stub.Stream(
            self._request(module, action, params), timeout=self.timeout, metadata=self._metadata()
        )
        try:
            for row in responses:
                yield from_value(row.value)
        except grpc.RpcError as exc:
            raise ActionCallError.from_rpc_error(exc) from exc
        finally:
            responses.cancel()  # nothing left to cancel once the stream has ended

    def with_request_id(self, request_id: str) -> ActionsClient:
        """The same client (same channel) sending `x-request-id: <request_id>` with its calls."""
        clone = ActionsClient(self.channel, self.key, timeout=self.timeout, request_id=request_id)
        return clone

    def close(self) -> None:
        if self._owns_channel:
            self.channel.close()

    def __enter__(self) -> ActionsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _request(self, module: str, action: str, params: dict[str, Any]):
        return actions_pb2.CallRequest(module=module, action=action, params=to_struct(params))

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        metadata = []
        if self.key:
            metadata.append(("authorization", f"Bearer {self.key}"))
        if self.request_id:
            metadata.append((REQUEST_ID_KEY, self.request_id))
        return tuple(metadata)
