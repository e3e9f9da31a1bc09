"""`dbapi.v1.Actions`: the actions over gRPC, an adapter of the one call pipeline.

The call is decoded into the same `ActionCall` as an HTTP request (`apps.actions.pipeline`), so
the key check, module restrictions, rate limit, validation, Idempotency-Key, dry run, timeout and
transaction are the HTTP API's; only the framing differs: headers are metadata (lower case), and
what HTTP sends as answer headers goes in the initial metadata.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import grpc

from apps.actions import pipeline
from apps.actions.http import preferences
from apps.core.json import JSONEncoder, NonFinite
from apps.core.request_id import get_request_id
from protos.dbapi.v1 import actions_pb2, actions_pb2_grpc

from .calls import Metadata, invocation_metadata
from .metadata import REQUEST_ID_KEY
from .values import fill_value, from_struct

# What the HTTP API's JSON writes for the types JSON lacks (datetimes, Decimals, UUIDs, bytes…).
_json_default = JSONEncoder().default


class ActionsServicer(actions_pb2_grpc.ActionsServicer):
    def Call(
        self, request: actions_pb2.CallRequest, context: grpc.ServicerContext
    ) -> actions_pb2.CallReply:
        """Run the action and answer its whole result."""
        outcome = pipeline.perform(action_call(request, invocation_metadata(context), context))
        send_headers(context, outcome.headers)
        reply = actions_pb2.CallReply()
        fill_value(reply.result, result_of(outcome), default=_json_default)
        return reply

    def Stream(
        self, request: actions_pb2.CallRequest, context: grpc.ServicerContext
    ) -> Iterator[actions_pb2.Row]:
        """Run the action and send its result item by item, each as it is read.

        The transaction stays open while the rows are sent; a client that goes away, or takes
        nothing for GRPC_STREAM_IDLE_TIMEOUT, ends it (rolled back) at once.
        """
        metadata = invocation_metadata(context)
        items, headers = pipeline.stream(action_call(request, metadata, context))
        if headers:  # the initial metadata went out with the request id, before the rows
            context.set_trailing_metadata(
                ((REQUEST_ID_KEY, get_request_id()), *metadata_items(headers))
            )
        with contextlib.closing(items):
            for item in items:
                row = actions_pb2.Row()
                fill_value(row.value, item, default=_json_default)
                yield row

    def Batch(
        self, request: actions_pb2.BatchRequest, context: grpc.ServicerContext
    ) -> actions_pb2.BatchReply:
        """Run the calls in order in one transaction; answer their results."""
        metadata = invocation_metadata(context)
        call = pipeline.BatchCall(
            authorization=metadata.get("authorization"),
            decode=lambda: {
                "calls": [
                    {
                        "module": item.module,
                        "action": item.action,
                        "input": from_struct(item.params, non_finite=NonFinite),
                    }
                    for item in request.calls
                ]
            },
            transport="grpc",
            options=call_options(metadata, context),
        )
        outcome = pipeline.perform_batch(call)
        send_headers(context, outcome.headers)
        reply = actions_pb2.BatchReply()
        for result in result_of(outcome)["results"]:
            fill_value(reply.results.add(), result, default=_json_default)
        return reply


def action_call(
    request: actions_pb2.CallRequest, metadata: Metadata, context: grpc.ServicerContext
) -> pipeline.ActionCall:
    return pipeline.ActionCall(
        authorization=metadata.get("authorization"),
        module=request.module,
        action=request.action,
        decode=lambda: from_struct(request.params, non_finite=NonFinite),
        transport="grpc",
        options=call_options(metadata, context),
    )


def call_options(metadata: Metadata, context: grpc.ServicerContext) -> pipeline.CallOptions:
    """The metadata's `idempotency-key` and `prefer`, and the call's deadline."""
    remaining = context.time_remaining()
    return pipeline.CallOptions(
        idempotency_key=metadata.get("idempotency-key"),
        dry_run="tx=rollback" in preferences(metadata.get("prefer", "")),
        deadline=None if remaining is None else time.monotonic() + remaining,
    )


def send_headers(context: grpc.ServicerContext, headers: dict[str, str]) -> None:
    """What HTTP sends as answer headers, as initial metadata."""
    if headers:
        context.send_initial_metadata(metadata_items(headers))


def metadata_items(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((name.lower(), value) for name, value in headers.items())


def result_of(outcome: pipeline.Outcome) -> Any:
    """The outcome's result; a kept answer (an idempotent replay) is its JSON."""
    return json.loads(outcome.body) if outcome.result is None and outcome.body else outcome.result
