"""The client's address: the one place that says who sent a request.

Behind nginx or an ingress controller, REMOTE_ADDR is the proxy's address and the client's is in
`X-Forwarded-For`, which anyone can also write to. Only what a trusted proxy (FORWARDED_ALLOW_IPS,
the variable gunicorn reads for the same trust) appended can be believed: the right-most address
of the header that is not itself a trusted proxy. Whatever the client wrote stays to its left.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    """FORWARDED_ALLOW_IPS, parsed: addresses and networks, and `*` (any peer)."""

    any_peer: bool
    networks: tuple[Network, ...]

    def is_trusted_peer(self, address: str) -> bool:
        """Whether the peer that sent the request may speak for the client. An empty address is a
        Unix socket, which only a local proxy can reach (gunicorn trusts it too)."""
        return self.any_peer or not address or self.is_listed(address)

    def is_listed(self, address: str) -> bool:
        """Named in the list. `*` does not count here: it trusts the peer, not every hop the
        header names, or a client could name itself anything it likes."""
        ip = _ip(address)
        return ip is not None and any(ip in network for network in self.networks)


def client_address(meta: Mapping[str, str]) -> str:
    """The address of the client that sent the request (`request.META` or a WSGI environ).

    REMOTE_ADDR when the peer is not a trusted proxy; otherwise the right-most address of
    X-Forwarded-For that is not a listed proxy (the peer itself when there is no such header).
    """
    peer = meta.get("REMOTE_ADDR") or ""
    trusted = trusted_proxies()
    if not trusted.is_trusted_peer(peer):
        return peer
    hops = [_host(hop) for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    for hop in reversed(hops):
        if not trusted.is_listed(hop):
            return hop
    return hops[0] if hops else peer


@functools.cache
def trusted_proxies() -> TrustedProxies:
    networks = []
    for entry in settings.FORWARDED_ALLOW_IPS:
        entry = entry.strip()
        if entry and entry != "*":
            networks.append(ipaddress.ip_network(entry, strict=False))
    return TrustedProxies(any_peer="*" in settings.FORWARDED_ALLOW_IPS, networks=tuple(networks))


def _host(hop: str) -> str:
    """An X-Forwarded-For entry without a port or brackets: `[2001:db8::1]:443` → `2001:db8::1`,
    `192.0.2.1:8080` → `192.0.2.1`; an IPv4-mapped IPv6 address as IPv4."""
    hop = hop.strip()
    if hop.startswith("["):
        hop = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    ip = _ip(hop)
    return str(ip) if ip is not None else hop


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@receiver(setting_changed)
def _forget_trusted_proxies(*, setting: str, **kwargs) -> None:
    if setting == "FORWARDED_ALLOW_IPS":
        trusted_proxies.cache_clear()
