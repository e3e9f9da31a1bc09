"""`dbapi.v1.Actions`: the registered actions over gRPC, through the same services as HTTP.

The same key check, module restrictions, serializer validation, transaction and JSON encoding
as `POST /actions/<module>/<action>`; only the framing differs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import grpc

from apps.actions.registry import Action
from apps.actions.services import (
    authenticate_bearer,
    find_action,
    run_action,
    stream_action,
    validate_input,
)
from apps.core.json import JSONEncoder
from protos.dbapi.v1 import actions_pb2, actions_pb2_grpc

from .calls import Metadata, streaming, unary
from .values import fill_value, from_struct

# What the HTTP API's JSON writes for the types JSON lacks (datetimes, Decimals, UUIDs, bytes…).
_json_default = JSONEncoder().default


class ActionsServicer(actions_pb2_grpc.ActionsServicer):
    @unary("/dbapi.v1.Actions/Call")
    def Call(
        self,
        request: actions_pb2.CallRequest,
        context: grpc.ServicerContext,
        *,
        metadata: Metadata,
    ) -> actions_pb2.CallReply:
        """Run the action and answer its whole result."""
        action, arguments = prepare(request, metadata)
        result = run_action(action, arguments)
        reply = actions_pb2.CallReply()
        fill_value(reply.result, result, default=_json_default)
        return reply

    @streaming("/dbapi.v1.Actions/Stream")
    def Stream(
        self,
        request: actions_pb2.CallRequest,
        context: grpc.ServicerContext,
        *,
        metadata: Metadata,
    ) -> Iterator[actions_pb2.Row]:
        """Run the action and send its result item by item, each as it is read.

        The transaction stays open while the rows are sent; a client that goes away ends it
        (rolled back) at once rather than when the rows run out.
        """
        action, arguments = prepare(request, metadata)
        with contextlib.closing(stream_action(action, arguments)) as items:
            for item in items:
                row = actions_pb2.Row()
                fill_value(row.value, item, default=_json_default)
                yield row


def prepare(
    request: actions_pb2.CallRequest, metadata: Mapping[str, str]
) -> tuple[Action, dict[str, Any]]:
    """Authenticate, find the action and validate its input, as the HTTP view does."""
    caller = authenticate_bearer(metadata.get("authorization"))
    action = find_action(caller=caller, module=request.module, action=request.action)
    return action, validate_input(action, from_struct(request.params))
