"""Upstream services by name: `upstream("flask").get("/hello/ana")`, `upstream_channel("dbapi")`.

Each name is declared in settings (`UPSTREAMS`, from `UPSTREAM_<NAME>_URL` and friends), so that
one service can be swapped for another in configuration. A name gets one pooled, keep-alive
client per process, created on first use: connections are reused across calls and threads
instead of being opened for each. Every call has a timeout, carries the current request id and,
when the upstream has a token, `Authorization: Bearer <token>`.

However an upstream fails — unreachable, too slow, answering 5xx — the caller gets one exception,
`UpstreamError` (502), or its subclass `UpstreamTimeout` (504). Both are problems, so the HTTP API
answers them as problem+json and the gRPC server as UNAVAILABLE / DEADLINE_EXCEEDED, never as a
500 with a traceback.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .errors import UpstreamError, UpstreamTimeout

if TYPE_CHECKING:
    import grpc

    from .clients import Upstream

__all__ = [
    "Upstream",
    "UpstreamError",
    "UpstreamTimeout",
    "close_upstreams",
    "upstream",
    "upstream_channel",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_lock = threading.Lock()
_http: dict[str, Upstream] = {}
_channels: dict[str, grpc.Channel] = {}
_pid = os.getpid()


def __getattr__(name: str) -> Any:
    # `Upstream` is loaded with httpx on first use: see _make_client.
    if name == "Upstream":
        from .clients import Upstream

        return Upstream
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def upstream(name: str) -> Upstream:
    """The HTTP client of the upstream service `name` (UPSTREAM_<NAME>_URL=http(s)://…)."""
    return _once(_http, name, _make_client)


def upstream_channel(name: str) -> grpc.Channel:
    """The gRPC channel of the upstream service `name` (UPSTREAM_<NAME>_URL=grpc(s)://host:port).

    `grpcs://` uses TLS with the system's roots. Use it with a generated stub, or with
    `apps.rpc.client.ActionsClient` to call another dbapi's actions.
    """
    return _once(_channels, name, _make_channel)


def close_upstreams() -> None:
    """Close every client and channel (their connections); the next call makes new ones."""
    with _lock:
        for client in _http.values():
            client.close()
        for channel in _channels.values():
            channel.close()
        _http.clear()
        _channels.clear()


def _config(name: str, *, schemes: tuple[str, ...]) -> dict[str, Any]:
    """The settings of an upstream, or UpstreamError (logged) when it is not configured."""
    config = settings.UPSTREAMS.get(name)
    variable = f"UPSTREAM_{name.upper()}_URL"
    if config is None:
        logger.error("No upstream service %r is configured: set %s.", name, variable)
        raise UpstreamError(f"The upstream service {name!r} is not configured.")
    if config["URL"].partition("://")[0] not in schemes:
        logger.error("%s must be a %s URL for this call.", variable, " or ".join(schemes))
        raise UpstreamError(f"The upstream service {name!r} is not configured for this call.")
    return config


def _once(made: dict[str, T], name: str, make: Callable[[str], T]) -> T:
    """The client already made for `name` in this process, or a new one (made once)."""
    _forget_after_fork()
    found = made.get(name)
    if found is None:
        with _lock:
            found = made.get(name)
            if found is None:
                found = made[name] = make(name)
    return found


def _make_client(name: str) -> Upstream:
    # httpx is imported here, not with the module: a process that never calls an HTTP upstream
    # does not pay for loading it (nor the command-line tools its package imports when present).
    from .clients import Upstream

    config = _config(name, schemes=("http", "https"))
    return Upstream(
        name,
        url=config["URL"],
        timeout=config["TIMEOUT"],
        retries=config["RETRIES"],
        token=config["TOKEN"],
        backoff=settings.UPSTREAM_BACKOFF,
    )


def _make_channel(name: str) -> grpc.Channel:
    # grpc is imported here, not with the module: web workers that never call a gRPC upstream
    # do not pay for loading it.
    import grpc

    from .channels import UpstreamInterceptor

    config = _config(name, schemes=("grpc", "grpcs"))
    scheme, _, target = config["URL"].partition("://")
    target = target.rstrip("/")
    # Calls go round the addresses the host resolves to (every pod behind a headless Service),
    # not all down the first connection that works.
    options = [("grpc.lb_policy_name", "round_robin")]
    if scheme == "grpcs":
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(), options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    interceptor = UpstreamInterceptor(name, timeout=config["TIMEOUT"], token=config["TOKEN"])
    return grpc.intercept_channel(channel, interceptor)


def _forget_after_fork() -> None:
    """A forked worker must not share its parent's connections: it makes its own."""
    global _pid
    if os.getpid() != _pid:
        with _lock:
            _http.clear()
            _channels.clear()
            _pid = os.getpid()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("UPSTREAM"):
        close_upstreams()
