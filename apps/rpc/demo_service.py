"""`api.Api`: the original demo service, served unchanged so that its clients work here.

It needs no key and touches no data: `sayHello` answers "Hello <name>!", `getAll` and
`getStream` give the items 1..length named "name <i>", at most GRPC_DEMO_MAX_LENGTH of them:
anyone may call it, so what one call may cost is bounded.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from rest_framework.exceptions import ValidationError

from protos.api import api_pb2, api_pb2_grpc


class ApiServicer(api_pb2_grpc.ApiServicer):
    def sayHello(self, request: api_pb2.HelloRequest, context) -> api_pb2.Hello:
        return api_pb2.Hello(message=f"Hello {request.name}!")

    def getAll(self, request: api_pb2.ApiRequest, context) -> api_pb2.Items:
        return api_pb2.Items(items=[item(i) for i in range(1, checked_length(request) + 1)])

    def getStream(self, request: api_pb2.ApiRequest, context) -> Iterator[api_pb2.Item]:
        for i in range(1, checked_length(request) + 1):
            yield item(i)


def checked_length(request: api_pb2.ApiRequest) -> int:
    """The number of items asked for; INVALID_ARGUMENT above GRPC_DEMO_MAX_LENGTH."""
    limit = settings.GRPC_DEMO_MAX_LENGTH
    if request.length > limit:
        raise ValidationError({"length": [f"Ensure this value is less than or equal to {limit}."]})
    return request.length


def item(i: int) -> api_pb2.Item:
    return api_pb2.Item(id=i, name=f"name {i}")
