"""`dbapi.v1.Actions`: the actions over gRPC, an adapter of the one call pipeline.

The call is decoded into the same `ActionCall` as an HTTP request (`apps.actions.pipeline`), so
the key check, module restrictions, validation, transaction and every other control are the
HTTP API's; only the framing differs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc

from apps.actions import pipeline
from apps.core.json import JSONEncoder, NonFinite
from protos.dbapi.v1 import actions_pb2, actions_pb2_grpc

from .calls import invocation_metadata
from .values import fill_value, from_struct

# What the HTTP API's JSON writes for the types JSON lacks (datetimes, Decimals, UUIDs, bytes…).
_json_default = JSONEncoder().default


class ActionsServicer(actions_pb2_grpc.ActionsServicer):
    def Call(
        self, request: actions_pb2.CallRequest, context: grpc.ServicerContext
    ) -> actions_pb2.CallReply:
        """Run the action and answer its whole result."""
        outcome = pipeline.perform(action_call(request, context))
        reply = actions_pb2.CallReply()
        fill_value(reply.result, outcome.result, default=_json_default)
        return reply

    def Stream(
        self, request: actions_pb2.CallRequest, context: grpc.ServicerContext
    ) -> Iterator[actions_pb2.Row]:
        """Run the action and send its result item by item, each as it is read.

        The transaction stays open while the rows are sent; a client that goes away, or takes
        nothing for GRPC_STREAM_IDLE_TIMEOUT, ends it (rolled back) at once.
        """
        with contextlib.closing(pipeline.stream(action_call(request, context))) as items:
            for item in items:
                row = actions_pb2.Row()
                fill_value(row.value, item, default=_json_default)
                yield row


def action_call(
    request: actions_pb2.CallRequest, context: grpc.ServicerContext
) -> pipeline.ActionCall:
    return pipeline.ActionCall(
        authorization=invocation_metadata(context).get("authorization"),
        module=request.module,
        action=request.action,
        decode=lambda: from_struct(request.params, non_finite=NonFinite),
        transport="grpc",
    )
