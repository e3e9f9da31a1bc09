"""The mobile API for a person's factors: list, add (enrol and confirm) and remove
authenticators, and generate backup codes; everything the two-factor pages do.

Changing factors needs a recent password or code with the token (403 reauthentication-required);
the person's first enrolment needs no verified token, later changes do.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.tokens import UserTokenAuthentication
from apps.core.openapi import extend_schema, problem_responses

from . import selectors, services
from .permissions import (
    EnrolledIfRequired,
    EnrolmentAllowed,
    RecentlyReauthenticated,
    SecondFactorVerified,
)
from .problems import EnrolmentRequired, code_refused
from .qr import qr_svg
from .serializers import (
    BackupCodesSerializer,
    CodeSerializer,
    DeviceSerializer,
    NewDeviceRequestSerializer,
    NewDeviceSerializer,
    StatusSerializer,
)
from .verification import CodeRefused

REAUTH_403 = (
    "Not allowed: a token no code verified yet (once the person has a factor), `type` "
    "…/reauthentication-required (POST auth/reauthenticate first)"
)
CHANGE_403 = REAUTH_403 + ", or `type` …/enrolment-required (no second factor yet)."


class DevicesView(APIView):
    """The person's authenticators: list them, or start enrolling a new one."""

    authentication_classes = [UserTokenAuthentication]

    def get_permissions(self):
        allowed = [IsAuthenticated(), EnrolmentAllowed()]
        if self.request.method == "POST":
            allowed.append(RecentlyReauthenticated())
        return allowed

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
        "the secret. Only the latest enrolment can be confirmed: an unfinished one is replaced, "
        "and `replaced` says which. Needs a recent password or code with this token, and a "
        "verified token once the person has a confirmed authenticator.",
        request=NewDeviceRequestSerializer,
        responses={
            201: NewDeviceSerializer,
            **problem_responses(400, 401, 403, 415, s403=REAUTH_403 + "."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = NewDeviceRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        enrolment = services.start_enrolment(user=request.user, **serializer.validated_data)
        device, replaced = enrolment.device, enrolment.replaced
        uri = services.provisioning_uri(device=device)
        body = {
            "id": device.pk,
            "provisioning_uri": uri,
            "qr_svg": qr_svg(uri),
            "replaced": {"id": replaced.pk, "name": replaced.name} if replaced else None,
        }
        response = Response(NewDeviceSerializer(body).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"  # it carries the secret
        return response


class ConfirmDeviceView(APIView):
    """Confirm a new authenticator with its first code; the token is then verified."""

    authentication_classes = [UserTokenAuthentication]
    permission_classes = [IsAuthenticated, EnrolmentAllowed, RecentlyReauthenticated]

    @extend_schema(
        operation_id="otp_devices_confirm",
        summary="Confirm a new authenticator with its first code",
        description="`status` says whether the code was accepted; if so the device can be used "
        "from now on and the token is verified. Wrong codes are throttled: 429 with Retry-After.",
        request=CodeSerializer,
        responses={
            200: StatusSerializer,
            **problem_responses(400, 401, 403, 404, 415, 429, s403=REAUTH_403 + "."),
        },
    )
    def post(self, request: Request, device_id: int) -> Response:
        serializer = CodeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device = selectors.unconfirmed_totp_device(user=request.user, device_id=device_id)
        if device is None:
            raise exceptions.NotFound("No authenticator of yours is waiting for confirmation here.")
        try:
            confirmed = services.confirm_enrolment(
                device=device,
                code=serializer.validated_data["token"],
                token=request.auth,
                request=request._request,
            )
        except CodeRefused as exc:
            raise code_refused(exc) from None
        return Response({"status": confirmed})


class DeviceView(APIView):
    """`DELETE otp/devices/<id>`: remove one of the person's authenticators."""

    authentication_classes = [UserTokenAuthentication]
    permission_classes = [
        IsAuthenticated,
        EnrolledIfRequired,
        SecondFactorVerified,
        RecentlyReauthenticated,
    ]
    http_method_names = ["delete", "options"]

    @extend_schema(
        operation_id="otp_devices_remove",
        summary="Remove an authenticator",
        description="It stops working at once. Needs a verified token and a recent password or "
        "code with it.",
        request=None,
        responses={
            204: OpenApiResponse(description="Removed."),
            **problem_responses(401, 403, 404, s403=CHANGE_403),
        },
    )
    def delete(self, request: Request, device_id: int) -> Response:
        device = selectors.totp_device(user=request.user, device_id=device_id)
        if device is None:
            raise exceptions.NotFound("You have no such authenticator.")
        services.remove_totp_device(device=device, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BackupCodesView(APIView):
    """`POST otp/backup-codes`: a new set of backup codes, shown once; the old set is void."""

    authentication_classes = [UserTokenAuthentication]
    permission_classes = [
        IsAuthenticated,
        EnrolledIfRequired,
        SecondFactorVerified,
        RecentlyReauthenticated,
    ]

    @extend_schema(
        operation_id="otp_backup_codes_create",
        summary="Generate new backup codes",
        description="Ten one-time codes for when the phone is lost, in this answer only: they "
        "are stored as keyed hashes, so nothing can show them again. The previous set stops "
        "working. Needs an authenticator, a verified token and a recent password or code.",
        request=None,
        responses={
            201: BackupCodesSerializer,
            **problem_responses(401, 403, s403=CHANGE_403),
        },
    )
    def post(self, request: Request) -> Response:
        if not selectors.has_second_factor(user=request.user, besides_backup_codes=True):
            raise EnrolmentRequired("Backup codes back up an authenticator: add one first.")
        codes = services.generate_backup_codes(user=request.user, request=request._request)
        response = Response({"codes": codes}, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response
