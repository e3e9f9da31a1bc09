from django.apps import AppConfig


class RpcConfig(AppConfig):
    """The gRPC server and client over the same action registry as the HTTP API."""

    name = "apps.rpc"
    label = "rpc"
