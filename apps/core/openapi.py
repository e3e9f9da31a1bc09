"""How the OpenAPI schema describes problem+json errors, for views to list what they can answer."""

from __future__ import annotations

from http import HTTPStatus

from drf_spectacular.utils import OpenApiResponse

from .problems import PROBLEM_CONTENT_TYPE
from .serializers import ProblemSerializer


def problem_responses(*statuses: int, **descriptions: str) -> dict:
    """`extend_schema(responses=…)` entries: each status answered with a problem+json body,
    described by the HTTP reason phrase or by `descriptions` (`s409="…"`)."""
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(
            response=ProblemSerializer,
            description=descriptions.get(f"s{status}") or HTTPStatus(status).phrase,
        )
        for status in statuses
    }
