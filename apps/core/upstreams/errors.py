"""The one exception an upstream failure raises, whichever way the upstream is reached."""

from __future__ import annotations

from apps.core.problems import Problem


class UpstreamError(Problem):
    """An upstream service could not be reached or failed to answer (502).

    A problem, so the HTTP API answers it as problem+json and the gRPC server as UNAVAILABLE.
    """

    status_code = 502
    default_detail = "An upstream service failed to answer."


class UpstreamTimeout(UpstreamError):
    """An upstream service did not answer in time (504; DEADLINE_EXCEEDED over gRPC)."""

    status_code = 504
    default_detail = "An upstream service did not answer in time."
