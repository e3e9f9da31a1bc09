"""The mobile API's user tokens and codes: log in, re-authenticate, verify a code.

Views parse, call one service, answer; every error is an exception the project's handler turns
into problem+json. Only these views and `api_devices.py`'s read user tokens
(`authentication_classes`). Enrolment and the rest of a person's factors: `api_devices.py`.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer
from rest_framework import exceptions, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.tokens import (
    USER_TOKEN_SCHEME,
    UserTokenAuthentication,
    issue_user_token,
    revoke_user_token,
)
from apps.core.openapi import extend_schema, problem_responses

from . import reauth, selectors, services
from .authentication import TokenWithTOTPDevicesAuthentication
from .permissions import EnrolledIfRequired
from .problems import THROTTLED_DETAIL, WrongCredentials, code_refused
from .serializers import (
    CODE_PATTERN,
    CodeProofSerializer,
    CodeSerializer,
    CredentialsSerializer,
    IssuedTokenSerializer,
    PasswordProofSerializer,
    ReauthenticatedSerializer,
    ReauthenticateSerializer,
    StatusSerializer,
)
from .verification import CodeRefused, verify_code_with_token

# The verify views' authentication is a subclass of UserTokenAuthentication: the same token,
# so the schema names the same security scheme rather than a second one.
USER_TOKEN_AUTH = [{USER_TOKEN_SCHEME: []}]
FORBIDDEN_CODES = (
    "`type` …/enrolment-required: the policy asks this person for a second factor and they "
    "have none; …/second-factor-locked: too many wrong codes in a row."
)


def login_throttled(exc: services.LoginThrottled) -> exceptions.Throttled:
    """429 with Retry-After; the same answer whatever was sent, so it tells nothing about it."""
    return exceptions.Throttled(wait=exc.retry_after, detail=THROTTLED_DETAIL)


class TokenView(APIView):
    """`POST auth/token` logs in with a password; `DELETE auth/token` revokes the token sent."""

    def get_authenticators(self):
        # Logging in must work whatever stale token the app still sends; only revoking reads it.
        return [UserTokenAuthentication()] if self._revoking() else []

    def get_permissions(self):
        return [IsAuthenticated()] if self._revoking() else []

    def _revoking(self) -> bool:
        return getattr(self.request, "method", None) == "DELETE"

    @extend_schema(
        operation_id="auth_token_create",
        summary="Log in with a password: a user token",
        description="The token is shown once. Endpoints that need two factors refuse it until a "
        "code verified it (POST otp/verify, or confirming a first authenticator). Its "
        "re-authentication window (TWO_FACTOR_REAUTH_SECONDS) starts now. Repeated wrong "
        "passwords (for a username, or from a client address) and a process's limit on "
        "password hashes answer 429 with Retry-After, before any password is checked.",
        request=CredentialsSerializer,
        responses={201: IssuedTokenSerializer, **problem_responses(400, 401, 415, 429)},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        serializer = CredentialsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user = services.authenticate_password(
                request=request._request, login_via="api", **serializer.validated_data
            )
        except services.InvalidCredentials:
            raise WrongCredentials from None
        except services.LoginThrottled as exc:
            raise login_throttled(exc) from None
        issued = issue_user_token(user=user, request=request._request)
        enrolled = selectors.has_second_factor(user=user)
        body = {
            "token": issued.key,
            "expires_at": issued.token.expires_at,
            "second_factor_required": services.second_factor_required(user=user, enrolled=enrolled),
            "enrolled": enrolled,
        }
        return Response(IssuedTokenSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="auth_token_revoke",
        summary="Revoke the token sent (log out)",
        description="The token stops working at once.",
        request=None,
        responses={204: OpenApiResponse(description="Revoked."), **problem_responses(401)},
    )
    def delete(self, request: Request) -> Response:
        revoke_user_token(token=request.auth, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReauthenticateView(APIView):
    """`POST auth/reauthenticate`: the password or a code again, before changing factors."""

    authentication_classes = [UserTokenAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_reauthenticate",
        summary="Confirm it is you: the password or a code, before changing factors",
        description="Adding or removing an authenticator and generating backup codes answer 403 "
        "with `type` …/reauthentication-required unless the password or a code was entered with "
        "this token within TWO_FACTOR_REAUTH_SECONDS (a token's first window starts when it is "
        "issued). Send `password` or `code`; `status` says whether it was accepted, and an "
        "accepted one opens a new window. An accepted code also verifies the token. Wrong "
        "passwords and codes are throttled (429 with Retry-After) as at login.",
        # One or the other, as the document says (oneOf); the view checks it with one serializer.
        request=PolymorphicProxySerializer(
            component_name="Reauthentication",
            serializers=[PasswordProofSerializer, CodeProofSerializer],
            resource_type_field_name=None,
        ),
        responses={
            200: ReauthenticatedSerializer,
            **problem_responses(
                400, 401, 403, 415, 429, s403="`type` …/second-factor-locked: too many wrong codes."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = ReauthenticateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            accepted = reauth.reauthenticate(
                user=request.user,
                token=request.auth,
                request=request._request,
                **serializer.validated_data,
            )
        except services.LoginThrottled as exc:
            raise login_throttled(exc) from None
        except CodeRefused as exc:
            raise code_refused(exc) from None
        until = (
            request.auth.reauthenticated_at + timedelta(seconds=settings.TWO_FACTOR_REAUTH_SECONDS)
            if accepted
            else None
        )
        return Response(
            ReauthenticatedSerializer({"status": accepted, "reauthenticated_until": until}).data
        )


class VerifyView(APIView):
    """Check a code; an accepted one verifies the token it came with. The hot path: the token
    and the devices come in one query (the authentication), acceptance is one UPDATE."""

    authentication_classes = [TokenWithTOTPDevicesAuthentication]
    permission_classes = [IsAuthenticated, EnrolledIfRequired]

    @extend_schema(
        operation_id="otp_verify",
        summary="Check a code from an authenticator, or a backup code",
        description="`status` says whether it was accepted; an accepted code verifies the token "
        "and renews its re-authentication window. Each code is accepted once; codes one step "
        "(30 s) early or late are accepted. After wrong codes, checks are throttled: 429 with "
        "Retry-After, whatever the code; after OTP_MAX_FAILURES in a row the account is locked "
        "(403) until staff unlock it (or a backup code is used).",
        request=CodeSerializer,
        auth=USER_TOKEN_AUTH,
        responses={
            200: StatusSerializer,
            **problem_responses(400, 401, 403, 415, 429, s403=FORBIDDEN_CODES),
        },
    )
    def post(self, request: Request) -> Response:
        return self.verify(request, request.data)

    def verify(self, request: Request, data) -> Response:
        serializer = CodeSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        try:
            device = verify_code_with_token(
                token=request.auth,
                code=serializer.validated_data["token"],
                request=request._request,
            )
        except CodeRefused as exc:
            raise code_refused(exc) from None
        return Response({"status": device is not None})


class CheckView(VerifyView):
    """`GET check/<token>`: the original mobile client's call, answered as `POST verify`."""

    http_method_names = ["get", "options"]  # POST stays on verify

    @extend_schema(
        operation_id="otp_check",
        summary="Check a code (the original mobile client's call)",
        description="The same as POST otp/verify, with the code in the path.",
        request=None,
        auth=USER_TOKEN_AUTH,
        parameters=[
            OpenApiParameter(
                "token",
                {"type": "string", "minLength": 6, "maxLength": 32, "pattern": CODE_PATTERN},
                OpenApiParameter.PATH,
                description="A code from the authenticator app (6 digits), or a backup code.",
            )
        ],
        responses={
            200: StatusSerializer,
            **problem_responses(400, 401, 403, 429, s403=FORBIDDEN_CODES),
        },
    )
    def get(self, request: Request, token: str) -> Response:
        return self.verify(request, {"token": token})
