"""What the API views say of themselves in the OpenAPI schema (their annotations, the
problem+json errors they can answer), and the views that serve it.

drf-spectacular's `extend_schema` builds its schema class as it decorates, which loads its whole
generator (and Django's and DRF's test clients with it) into every process that imports a view.
The `extend_schema` here takes the same arguments and only records them; `apply_annotations`
hands them to drf-spectacular's when a schema is generated (apps.core.schema, a preprocessing
hook), so the schema is the same and only the processes that serve it pay for it. For the same
reason the views serving the schema and its documentation are made on their first request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse

from .problems import PROBLEM_CONTENT_TYPE
from .serializers import ProblemSerializer

F = TypeVar("F", bound=Callable[..., Any])

_lock = threading.Lock()
_annotations: list[tuple[Callable[..., Any], dict[str, Any]]] = []


def extend_schema(**annotation: Any) -> Callable[[F], F]:
    """drf-spectacular's `extend_schema`, the same keywords, applied when a schema is generated."""

    def record(view: F) -> F:
        with _lock:
            _annotations.append((view, annotation))
        return view

    return record


def apply_annotations() -> None:
    """Apply the annotations recorded so far, in the order they were made (as decorators would
    have been), each once."""
    from drf_spectacular.utils import extend_schema as spectacular_extend_schema

    with _lock:
        while _annotations:
            view, annotation = _annotations.pop(0)
            spectacular_extend_schema(**annotation)(view)


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


def served_on_first_request(view_class: str, **initkwargs: Any) -> Callable[..., HttpResponse]:
    """A view for the URLconf: `view_class` (a dotted path to a DRF view, drf-spectacular's)
    `.as_view(**initkwargs)`, imported and made when a request first reaches it."""
    made: Callable[..., HttpResponse] | None = None

    @csrf_exempt  # as DRF's views are
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        nonlocal made
        if made is None:
            made = import_string(view_class).as_view(**initkwargs)
        return made(request, *args, **kwargs)

    return view
