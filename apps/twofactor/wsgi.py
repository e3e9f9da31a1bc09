"""The WSGI fast path of `POST /api/v1/otp/verify` (`apps.core.wsgi.FastPaths`).

A mobile app checks a code on every login, so this is the mobile API's busiest call, and its
work is one query (the token with the person's devices) and one conditional write. Django's
handler and DRF's view would add URL resolving, the request signals, content negotiation and
the view's machinery around it. The route answers the common request itself, with the same
authentication, policy, validation and verification as `api.VerifyView`; anything else (no or
an unknown token, a body that is not a valid code, another media type, a person the policy
stops) is passed on, before anything was written, to the view, which answers it as always.
"""

from __future__ import annotations

import io

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.credentials import bearer_credential, secret_digest
from apps.core.json import dumps, loads
from apps.core.wsgi import Answer, Environ, FastRoute, PassOn

from . import selectors
from .permissions import meets_policy
from .problems import code_refused
from .serializers import CodeSerializer
from .verification import CodeRefused, verify_code_with_token

JSON = "application/json"
# What DRF's view adds to each of its answers (APIView.default_response_headers).
VIEW_HEADERS = [("Allow", "POST, OPTIONS")]


class VerifyRoute(FastRoute):
    name = "otp_verify"
    middleware_setting = "API_MIDDLEWARE"  # /api/v1/ is an API path (API_PATH_PREFIXES)

    def __init__(self) -> None:
        self.path = reverse("twofactor-api:verify")

    def match(self, environ: Environ) -> int | None:
        """The body's length, for a POST of JSON with a bearer credential that asks for JSON (or
        anything) back; other requests go to the view."""
        if environ["REQUEST_METHOD"] != "POST" or environ.get("PATH_INFO") != self.path:
            return None
        if environ.get("CONTENT_TYPE") != JSON or environ.get("HTTP_ACCEPT", "*/*") not in (
            "*/*",
            JSON,
        ):
            return None
        length = environ.get("CONTENT_LENGTH", "")
        if not length.isdigit() or not 0 < int(length) <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return None
        if bearer_credential(environ.get("HTTP_AUTHORIZATION")) is None:
            return None
        return int(length)

    def view_name(self, match: int) -> str:
        return "twofactor-api:verify"

    def answer(self, environ: Environ, match: int) -> Answer:
        body = environ["wsgi.input"].read(match)
        environ["wsgi.input"] = io.BytesIO(body)  # for the view, should the request go on to it
        try:
            data = loads(body)
        except ValueError:
            raise PassOn from None
        serializer = CodeSerializer(data=data)
        key = bearer_credential(environ.get("HTTP_AUTHORIZATION"))
        token = selectors.token_with_totp_devices(digest=secret_digest(key), now=timezone.now())
        if (
            token is None
            or not serializer.is_valid()
            or not meets_policy(user=token.user, token=token)
        ):
            raise PassOn
        try:
            device = verify_code_with_token(
                token=token, code=serializer.validated_data["token"], request=WSGIRequest(environ)
            )
        except CodeRefused as exc:
            refused = Answer.for_exception(code_refused(exc))
            refused.headers.extend(VIEW_HEADERS)
            return refused
        return Answer.json(dumps({"status": device is not None}), headers=VIEW_HEADERS)
