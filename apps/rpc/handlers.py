"""How each gRPC method is served: `ServedCalls`, the server's one interceptor.

It wraps each method's handler once, so that every call

- runs on the threads of its kind: unary calls on the server's workers, streams on threads of
  their own (however slowly their clients read, they never hold a unary call back), health
  checks on a few more (a busy server still answers its probes); when every thread of its kind
  is taken, the call is refused at once with RESOURCE_EXHAUSTED rather than left to wait;
- has its request message decoded inside the call: bytes that do not decode are an
  INVALID_ARGUMENT problem like any other bad input, not an error inside grpcio;
- is served inside `apps.rpc.calls.serving`: request id, database connections, errors as
  statuses with `problem-bin`, one log line;
- if it streams, is cancelled once its client has taken nothing for GRPC_STREAM_IDLE_TIMEOUT
  (apps.rpc.idle).

So servicers are plain grpcio servicers, `(self, request, context)`, given the decoded request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from typing import Any, NamedTuple

import grpc

from .calls import serving, worker_context
from .errors import ServerBusy, UndecodableMessage
from .idle import IdleStreams, WatchedStream
from .workers import Workers

Parse = Callable[[Any], Any]


class _Method(NamedTuple):
    handler: grpc.RpcMethodHandler  # what serves a call admitted
    workers: Workers | None  # whose threads it takes, when the method has a limit
    refusal: grpc.RpcMethodHandler | None  # what answers a call past that limit


class ServedCalls(grpc.ServerInterceptor):
    """See the module's docstring.

    grpcio asks it for each call's handler on its one polling thread, before the call is given
    to a thread, which is where a call can still be refused without waiting.
    """

    def __init__(
        self,
        *,
        calls: Workers,
        streams: Workers,
        probes: Workers,
        probe_services: Collection[str],
        idle: IdleStreams,
    ):
        self._calls = calls
        self._streams = streams
        self._probes = probes
        self._probe_services = frozenset(probe_services)
        self._idle = idle
        self._methods: dict[str, _Method] = {}  # by full name; unknown names are never kept

    def intercept_service(self, continuation, handler_call_details):
        name = handler_call_details.method
        method = self._methods.get(name)
        if method is None:
            handler = continuation(handler_call_details)
            if handler is None:
                return None  # no such method: grpcio answers UNIMPLEMENTED
            method = self._methods[name] = self._method(name, handler)
        if method.workers is not None and method.workers.full:
            return method.refusal
        return method.handler

    def _method(self, name: str, handler: grpc.RpcMethodHandler) -> _Method:
        behavior = next(
            behavior
            for behavior in (
                handler.unary_unary,
                handler.unary_stream,
                handler.stream_unary,
                handler.stream_stream,
            )
            if behavior is not None
        )
        if getattr(behavior, "experimental_non_blocking", False):
            # Health's Watch: answered from callbacks; a thread only starts it, and holds nothing.
            return _Method(_non_blocking(handler, behavior, self._probes), None, None)
        if name.split("/")[1] in self._probe_services:  # "/package.Service/Method"
            workers, limited = self._probes, None
        elif handler.request_streaming or handler.response_streaming:
            workers = limited = self._streams
        else:
            workers = limited = self._calls
        served = self._served(name, behavior, handler)
        return _Method(
            handler=_handler_like(handler, served, workers),
            workers=limited,
            refusal=_handler_like(handler, _refusal(name), self._probes),
        )

    def _served(self, name: str, behavior: Callable, handler: grpc.RpcMethodHandler) -> Callable:
        parse = _parser(handler.request_deserializer)
        idle = self._idle

        if not handler.response_streaming:
            if not handler.request_streaming:

                def served(request: bytes, context: grpc.ServicerContext) -> Any:
                    return worker_context().run(_answer, name, behavior, parse, request, context)

            else:

                def served(requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:
                    with idle.watching(context) as stream:
                        return worker_context().run(
                            _answer,
                            name,
                            behavior,
                            _stream_parser(parse, stream),
                            requests,
                            context,
                        )

            return served

        def served_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with idle.watching(context) as stream:
                run = worker_context().run
                decode = _stream_parser(parse, stream) if handler.request_streaming else parse
                replies = run(_replies, name, behavior, decode, request, context, stream)
                try:
                    while True:
                        try:
                            reply = run(next, replies)
                        except StopIteration:
                            return
                        stream.waiting_since = time.monotonic()
                        yield reply  # grpcio asks for the next one once this one is sent
                        stream.waiting_since = None
                finally:  # also when the client went away or the stream was cancelled as idle
                    run(replies.close)  # ends the transaction now, on this thread

        return served_stream


def _answer(method: str, behavior: Callable, decode: Parse, request: Any, context) -> Any:
    with serving(context, method=method):
        return behavior(decode(request), context)


def _replies(
    method: str, behavior: Callable, decode: Parse, request: Any, context, stream: WatchedStream
) -> Iterator[Any]:
    with serving(context, method=method, stream=stream):
        yield from behavior(decode(request), context)


def _refusal(method: str) -> Callable:
    def refuse(request: Any, context: grpc.ServicerContext) -> None:
        return worker_context().run(_answer, method, _busy, _as_is, request, context)

    return refuse


def _busy(request: Any, context: grpc.ServicerContext) -> None:
    raise ServerBusy()


def _as_is(request: Any) -> Any:
    return request


def _handler_like(
    handler: grpc.RpcMethodHandler, behavior: Callable, workers: Workers
) -> grpc.RpcMethodHandler:
    """A handler of the same kind as `handler`, running `behavior` on `workers`' threads and
    giving it the request's bytes as they came."""
    behavior.experimental_thread_pool = workers  # how grpcio picks a method's threads
    return _same_kind(handler)(
        behavior, request_deserializer=None, response_serializer=handler.response_serializer
    )


def _non_blocking(
    handler: grpc.RpcMethodHandler, behavior: Callable, workers: Workers
) -> grpc.RpcMethodHandler:
    """The same handler, started on `workers`' threads."""

    def started(request: Any, context: grpc.ServicerContext, send_response_callback) -> Any:
        return behavior(request, context, send_response_callback)

    started.experimental_non_blocking = True
    started.experimental_thread_pool = workers
    return _same_kind(handler)(
        started,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _same_kind(handler: grpc.RpcMethodHandler) -> Callable[..., grpc.RpcMethodHandler]:
    """grpcio's factory for handlers of `handler`'s kind (streaming requests, replies, both)."""
    if handler.request_streaming:
        if handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler
        return grpc.stream_unary_rpc_method_handler
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler
    return grpc.unary_unary_rpc_method_handler


def _parser(deserializer: Callable[[bytes], Any] | None) -> Parse:
    """The method's deserializer, turned into one that fails as bad input."""
    if deserializer is None:
        return _as_is
    message = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    expected = f"a valid {message.full_name}" if message is not None else "valid"

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # protobuf's DecodeError: garbage, or nested too deep
            raise UndecodableMessage(f"The request message is not {expected}: {exc}") from None

    return parse


def _stream_parser(parse: Parse, stream: WatchedStream) -> Parse:
    """For a stream of requests: decodes each, and counts the wait for the next as the client's."""

    def decoded(requests: Iterator[bytes]) -> Iterator[Any]:
        while True:
            stream.waiting_since = time.monotonic()
            try:
                data = next(requests)
            except StopIteration:
                return
            finally:
                stream.waiting_since = None
            yield parse(data)

    return decoded
