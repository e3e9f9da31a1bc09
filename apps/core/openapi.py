"""How the OpenAPI schema describes problem+json errors, for views to list what they can answer."""

from __future__ import annotations

from http import HTTPStatus

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from .problems import PROBLEM_CONTENT_TYPE


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, as `problems.problem()` writes them."""

    type = serializers.CharField(default="about:blank")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(required=False)
    request_id = serializers.CharField(required=False)
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="For 400: the messages per input field.",
    )


def problem_responses(*statuses: int) -> dict:
    """`extend_schema(responses=…)` entries: each status answered with a problem+json body."""
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(
            response=ProblemSerializer, description=HTTPStatus(status).phrase
        )
        for status in statuses
    }
