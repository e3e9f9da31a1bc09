"""`Upstream`: one named HTTP service, reached through a pooled keep-alive httpx client."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from apps.core import metrics
from apps.core.request_id import HEADER, get_request_id

from .errors import UpstreamError, UpstreamTimeout

logger = logging.getLogger("apps.core.upstreams")

# Methods a server must treat as safe to repeat (RFC 9110 9.2.2): retried on any failure to
# get an answer. Other methods are retried only when the connection was never made.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
RETRY_STATUSES = frozenset({502, 503, 504})


class Upstream:
    """One named HTTP service: a pooled keep-alive httpx client and the retry policy for it."""

    def __init__(
        self, name: str, *, url: str, timeout: float, retries: int, token: str, backoff: float
    ):
        self.name = name
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.client = httpx.Client(
            base_url=url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"} if token else None,
        )

    def request(
        self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send a request and return the response (any status below 500).

        Idempotent methods are retried, after a pause that doubles each time, on connection
        errors and on 502/503/504; other methods only when the connection could not be made
        (nothing was sent). `timeout` (seconds) replaces the service's for this call; there is
        always one. Other keywords are httpx's (`params`, `json`, `headers`, ...).
        """
        method = method.upper()
        headers = httpx.Headers(kwargs.pop("headers", None))
        request_id = get_request_id()
        if request_id:
            headers[HEADER] = request_id
        timeout = timeout or self.timeout
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self.client.request(
                    method, path, headers=headers, timeout=timeout, **kwargs
                )
            except httpx.TimeoutException as exc:
                error = UpstreamTimeout(
                    f"The upstream service {self.name!r} did not answer in time."
                )
                reason = f"no answer within {timeout}s ({exc.__class__.__name__})"
                raise self._failed(error, method, path, reason, attempt) from exc
            except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                error = UpstreamError(f"The upstream service {self.name!r} could not be reached.")
                reason, cause = f"{exc.__class__.__name__}: {exc}", exc
                retry = method in IDEMPOTENT_METHODS or isinstance(exc, httpx.ConnectError)
            else:
                if response.status_code < 500:
                    return response
                error = UpstreamError(
                    f"The upstream service {self.name!r} answered {response.status_code}."
                )
                reason, cause = f"status {response.status_code}", None
                retry = method in IDEMPOTENT_METHODS and response.status_code in RETRY_STATUSES
            if not retry:
                break
        raise self._failed(error, method, path, reason, attempt) from cause

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def close(self) -> None:
        self.client.close()

    def _failed(
        self, error: UpstreamError, method: str, path: str, reason: str, attempt: int
    ) -> UpstreamError:
        metrics.record_dependency_error("upstream")
        logger.warning(
            "Upstream %s failed: %s %s: %s",
            self.name,
            method,
            path,
            reason,
            extra={"upstream": self.name, "status_code": error.status_code, "tries": attempt + 1},
        )
        return error
