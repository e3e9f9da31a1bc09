"""`api.Api`: the original demo service, served unchanged so that its clients work here.

It needs no key and touches no data: `sayHello` answers "Hello <name>!", `getAll` and
`getStream` give the items 1..length named "name <i>".
"""

from __future__ import annotations

from collections.abc import Iterator

from rest_framework.exceptions import ValidationError

from protos.api import api_pb2, api_pb2_grpc

from .calls import streaming, unary

# getAll builds its whole answer in memory; getStream sends one item at a time and has no limit.
MAX_ITEMS = 100_000


class ApiServicer(api_pb2_grpc.ApiServicer):
    @unary("/api.Api/sayHello")
    def sayHello(self, request: api_pb2.HelloRequest, context, *, metadata) -> api_pb2.Hello:
        return api_pb2.Hello(message=f"Hello {request.name}!")

    @unary("/api.Api/getAll")
    def getAll(self, request: api_pb2.ApiRequest, context, *, metadata) -> api_pb2.Items:
        if request.length > MAX_ITEMS:
            raise ValidationError(
                {"length": [f"Ensure this value is less than or equal to {MAX_ITEMS}."]}
            )
        return api_pb2.Items(items=[item(i) for i in range(1, request.length + 1)])

    @streaming("/api.Api/getStream")
    def getStream(
        self, request: api_pb2.ApiRequest, context, *, metadata
    ) -> Iterator[api_pb2.Item]:
        for i in range(1, request.length + 1):
            yield item(i)


def item(i: int) -> api_pb2.Item:
    return api_pb2.Item(id=i, name=f"name {i}")
