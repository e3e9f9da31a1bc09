"""Content negotiation for the API: credentials are judged before the Accept header.

DRF negotiates the answer's media type before it authenticates, so a request without valid
credentials that asks for a type the API cannot give (a browser's `Accept: text/html`) got 406
and never learned that it must authenticate. Here a request refused for its Accept header is
first authenticated and authorised by its view: it gets the 401 or 403 it would have got anyway.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation


class CredentialsFirstNegotiation(DefaultContentNegotiation):
    """DRF's negotiation; before answering 406, the view's authentication and permissions."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except exceptions.NotAcceptable:
            view = (getattr(request, "parser_context", None) or {}).get("view")
            if view is not None:
                view.perform_authentication(request)
                view.check_permissions(request)
            raise
