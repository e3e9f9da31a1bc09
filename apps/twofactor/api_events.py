"""The mobile API's view of a person's own security events, newest first, a page at a time."""

from __future__ import annotations

from django.conf import settings
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.tokens import UserTokenAuthentication
from apps.core.openapi import extend_schema, problem_responses

from . import selectors
from .permissions import EnrolmentAllowed
from .serializers import SecurityEventSerializer


class SecurityEventPages(CursorPagination):
    """Cursor pages: stable while new events arrive (an offset would repeat or skip some), and
    `next` is the URL of the following page, null on the last."""

    ordering = ("-at", "-id")

    def get_page_size(self, request):
        return settings.SECURITY_EVENTS_PAGE_SIZE

    def decode_cursor(self, request):
        """DRF's, refusing a position that is not a time (404, as a malformed cursor): the query
        would otherwise fail on it."""
        cursor = super().decode_cursor(request)
        position = cursor.position if cursor is not None else None
        if position is not None and parse_datetime(position) is None:
            raise NotFound(self.invalid_cursor_message)
        return cursor

    def get_paginated_response(self, data) -> Response:
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The next (older) page; null on the last.",
                },
            },
        }


class SecurityEventsView(ListAPIView):
    """`GET account/events`: the person's own events."""

    authentication_classes = [UserTokenAuthentication]
    # Open to the person before any enrolment, as the policy allows; a verified token once
    # they have a factor, so a password alone does not show where they log in from.
    permission_classes = [IsAuthenticated, EnrolmentAllowed]
    serializer_class = SecurityEventSerializer
    pagination_class = SecurityEventPages

    def get_queryset(self):
        return selectors.security_events(user=self.request.user)

    def initial(self, request: Request, *args, **kwargs) -> None:
        """After the credentials (401 and 403 first): a query parameter other than `cursor` is a
        400, rather than silently ignored (a client that filters by it would be misled)."""
        super().initial(request, *args, **kwargs)
        unknown = sorted(set(request.query_params) - {self.pagination_class.cursor_query_param})
        if unknown:
            raise ValidationError({name: [_("Unknown query parameter.")] for name in unknown})

    @extend_schema(
        operation_id="account_events_list",
        summary="The person's security events, newest first",
        description="Logins, failed passwords and codes, factors added and removed, backup codes, "
        "password changes, tokens issued and revoked, with when, the client address and the "
        "user agent. A page holds SECURITY_EVENTS_PAGE_SIZE events; follow `next` for older "
        "ones (its `cursor` is not to be built by hand). Needs a verified token once the "
        "person has a second factor.",
        responses={
            200: SecurityEventSerializer(many=True),
            **problem_responses(
                400,
                401,
                403,
                404,
                s400="A query parameter other than `cursor`.",
                s403="A token no code verified yet, once the person has a second factor.",
                s404="The cursor is not one `next` gave.",
            ),
        },
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)
