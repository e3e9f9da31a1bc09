"""The mobile API: user tokens, enrolling an authenticator, verifying codes.

Views parse, call one service, answer; every error is an exception the project's handler turns
into problem+json. Only these views read user tokens (`authentication_classes`).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.credentials import BEARER_CHALLENGE
from apps.accounts.tokens import (
    SecondFactorVerified,
    UserTokenAuthentication,
    UserTokenScheme,
    issue_user_token,
    revoke_user_token,
)
from apps.core.openapi import problem_responses
from apps.core.problems import Problem

from . import selectors, services
from .authentication import TokenWithTOTPDevicesAuthentication
from .qr import qr_svg
from .serializers import (
    CodeSerializer,
    CredentialsSerializer,
    DeviceSerializer,
    IssuedTokenSerializer,
    NewDeviceRequestSerializer,
    NewDeviceSerializer,
    StatusSerializer,
)
from .verification import CodeThrottled, verify_code

THROTTLED_DETAIL = "Too many wrong attempts."
# The verify views' authentication is a subclass of UserTokenAuthentication: the same token,
# so the schema names the same security scheme rather than a second one.
USER_TOKEN_AUTH = [{UserTokenScheme.name: []}]


class WrongCredentials(Problem):
    """401 for a wrong password, the same whether the username exists or not."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = "That username and password do not match."
    default_code = "invalid_credentials"
    headers = {"WWW-Authenticate": BEARER_CHALLENGE}


class EnrolmentAllowed(SecondFactorVerified):
    """A token verified with a second factor, or any token of a person with no authenticator yet
    (their first enrolment): a stolen password alone cannot add an authenticator to an account
    that has one."""

    message = "This person has an authenticator: verify a code with this token first."

    def has_permission(self, request: Request, view) -> bool:
        return super().has_permission(request, view) or not selectors.has_second_factor(
            user=request.user
        )


def throttled(exc: CodeThrottled | services.LoginThrottled) -> exceptions.Throttled:
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
        "code verified it (POST otp/verify, or confirming a first authenticator). Repeated wrong "
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
                request=request._request, **serializer.validated_data
            )
        except services.InvalidCredentials:
            raise WrongCredentials from None
        except services.LoginThrottled as exc:
            raise throttled(exc) from None
        issued = issue_user_token(user=user)
        enrolled = selectors.has_second_factor(user=user)
        body = {
            "token": issued.key,
            "expires_at": issued.token.expires_at,
            "second_factor_required": services.second_factor_required(enrolled=enrolled),
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
        revoke_user_token(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DevicesView(APIView):
    """The person's authenticators: list them, or start enrolling a new one."""

    authentication_classes = [UserTokenAuthentication]
    permission_classes = [IsAuthenticated, EnrolmentAllowed]

    @extend_schema(
        operation_id="otp_devices_list",
        summary="The person's authenticators",
        description="Never their keys. Needs a verified token once the person has one.",
        responses={200: DeviceSerializer(many=True), **problem_responses(401, 403)},
    )
    def get(self, request: Request) -> Response:
        devices = selectors.totp_devices(user=request.user)
        return Response(DeviceSerializer(devices, many=True).data)

    @extend_schema(
        operation_id="otp_devices_create",
        summary="Start enrolling an authenticator",
        description="A new unconfirmed TOTP device: scan `qr_svg` or open `provisioning_uri` in "
        "an authenticator app, then confirm it with its first code. The only answer that carries "
        "the secret; an unfinished enrolment is replaced. Needs a verified token once the person "
        "has a confirmed authenticator.",
        request=NewDeviceRequestSerializer,
        responses={201: NewDeviceSerializer, **problem_responses(400, 401, 403, 415)},
    )
    def post(self, request: Request) -> Response:
        serializer = NewDeviceRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device = services.start_enrolment(user=request.user, **serializer.validated_data)
        uri = services.provisioning_uri(device=device)
        body = {"id": device.pk, "provisioning_uri": uri, "qr_svg": qr_svg(uri)}
        return Response(NewDeviceSerializer(body).data, status=status.HTTP_201_CREATED)


class ConfirmDeviceView(APIView):
    """Confirm a new authenticator with its first code; the token is then verified."""

    authentication_classes = [UserTokenAuthentication]
    permission_classes = [IsAuthenticated, EnrolmentAllowed]

    @extend_schema(
        operation_id="otp_devices_confirm",
        summary="Confirm a new authenticator with its first code",
        description="`status` says whether the code was accepted; if so the device can be used "
        "from now on and the token is verified. Wrong codes are throttled: 429 with Retry-After.",
        request=CodeSerializer,
        responses={200: StatusSerializer, **problem_responses(400, 401, 403, 404, 415, 429)},
    )
    def post(self, request: Request, device_id: int) -> Response:
        serializer = CodeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device = selectors.unconfirmed_totp_device(user=request.user, device_id=device_id)
        if device is None:
            raise exceptions.NotFound("No authenticator of yours is waiting for confirmation here.")
        try:
            confirmed = services.confirm_enrolment(
                device=device, code=serializer.validated_data["token"], token=request.auth
            )
        except CodeThrottled as exc:
            raise throttled(exc) from None
        return Response({"status": confirmed})


class VerifyView(APIView):
    """Check a code; an accepted one verifies the token it came with. The hot path: the token
    and the devices come in one query (the authentication), acceptance is one UPDATE."""

    authentication_classes = [TokenWithTOTPDevicesAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="otp_verify",
        summary="Check a code from an authenticator, or a backup code",
        description="`status` says whether it was accepted; an accepted code verifies the token. "
        "Each code is accepted once; codes one step (30 s) early or late are accepted. After "
        "wrong codes, checks are throttled: 429 with Retry-After, whatever the code.",
        request=CodeSerializer,
        auth=USER_TOKEN_AUTH,
        responses={200: StatusSerializer, **problem_responses(400, 401, 415, 429)},
    )
    def post(self, request: Request) -> Response:
        return self.verify(request, request.data)

    def verify(self, request: Request, data) -> Response:
        serializer = CodeSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        try:
            device = verify_code(
                user=request.user,
                code=serializer.validated_data["token"],
                token=request.auth,
                totp_devices=request.auth.totp_devices,
            )
        except CodeThrottled as exc:
            raise throttled(exc) from None
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
        responses={200: StatusSerializer, **problem_responses(400, 401, 429)},
    )
    def get(self, request: Request, token: str) -> Response:
        return self.verify(request, {"token": token})
