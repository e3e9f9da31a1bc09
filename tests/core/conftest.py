"""Fixtures shared by the core tests."""

from __future__ import annotations

import pytest

from apps.core.upstreams import close_upstreams
from tests.http_upstream import http_upstream, upstream_config


@pytest.fixture
def flask(settings):
    """The upstream "flask", a real HTTP server on a free port."""
    settings.UPSTREAM_BACKOFF = 0.01
    with http_upstream() as server:
        settings.UPSTREAMS = {"flask": upstream_config(server.url)}
        yield server
        close_upstreams()
