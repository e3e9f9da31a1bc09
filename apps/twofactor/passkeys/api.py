"""The mobile API's passkeys: register, authenticate (a second factor, or a passwordless sign-in),
list, remove. Challenges are bound to the user token that asked for them; a passwordless sign-in
has no token, and its challenge (inside the options) is its only id.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.tokens import USER_TOKEN_SCHEME, UserTokenAuthentication, issue_user_token
from apps.core.openapi import extend_schema, problem_responses
from apps.core.problems import Problem

from .. import selectors as twofactor_selectors
from ..api_devices import REAUTH_403 as DEVICE_REAUTH_403
from ..permissions import (
    EnrolledIfRequired,
    EnrolledIfRequiredWithToken,
    EnrolmentAllowed,
    RecentlyReauthenticated,
    SecondFactorVerified,
)
from ..problems import THROTTLED_DETAIL, code_refused
from ..serializers import IssuedTokenSerializer, StatusSerializer
from ..verification import SecondFactorLocked, mark_token_verified
from . import selectors, services
from .challenges import token_binding
from .errors import PasskeyRefused, PasskeyThrottled
from .serializers import (
    AuthenticationResponseJSON,
    PasskeySerializer,
    PublicKeyCredentialCreationOptionsJSON,
    PublicKeyCredentialRequestOptionsJSON,
    RegistrationResponseJSON,
)

# `authentication` and `registration` are imported by the views that run a ceremony: they load
# py_webauthn (with pyasn1 and pyOpenSSL), which no other request needs.

USER_TOKEN_OR_NONE = [{USER_TOKEN_SCHEME: []}, {}]
REFUSED = (
    "Refused, with a `type` ending in the kind: `passkey-challenge-used` (a replayed answer, a "
    "reused challenge), `passkey-challenge-expired`, `passkey-challenge-unknown`, "
    "`passkey-wrong-origin`, `passkey-wrong-rp-id`, `passkey-sign-count` (the counter did not "
    "increase: a possible clone), `passkey-user-verification-required`, `passkey-unknown`, "
    "`passkey-already-registered`, `passkey-invalid`; or the body is not valid (`errors`)."
)


class PasskeyProblem(Problem):
    status_code = status.HTTP_400_BAD_REQUEST


def refused(exc: PasskeyRefused) -> PasskeyProblem:
    problem = PasskeyProblem(exc.message)
    problem.type_slug = exc.reason
    return problem


def throttled(exc: PasskeyThrottled) -> exceptions.Throttled:
    return exceptions.Throttled(wait=exc.retry_after, detail=THROTTLED_DETAIL)


def _valid(serializer_class, data) -> dict:
    """The body, once it has the shape of the WebAuthn JSON (the library checks the rest)."""
    serializer_class(data=data).is_valid(raise_exception=True)
    return dict(data)


# What a 403 on a passkey's second-factor step can be (with a token; never without).
AUTHENTICATE_403 = (
    "With a token only: `type` …/enrolment-required (the policy asks this person for a second "
    "factor and they have none), or …/second-factor-locked (too many wrong codes in a row: a "
    "passkey is refused as a code is, until staff unlock the account)."
)

# What a 403 on adding or removing a passkey can be: as for an authenticator.
REAUTH_403 = DEVICE_REAUTH_403 + "."


class RegisterOptionsView(APIView):
    authentication_classes = [UserTokenAuthentication]
    permission_classes = [IsAuthenticated, EnrolmentAllowed, RecentlyReauthenticated]

    @extend_schema(
        operation_id="passkeys_register_options",
        summary="Start registering a passkey",
        description="Options for `navigator.credentials.create()` (or the platform's passkey "
        "API), with a challenge bound to this token, answerable once within "
        "WEBAUTHN_CHALLENGE_SECONDS. Needs a verified token once the person has a second factor, "
        "and a recent password or code with it.",
        request=None,
        responses={
            200: PublicKeyCredentialCreationOptionsJSON,
            **problem_responses(401, 403, s403=REAUTH_403),
        },
    )
    def post(self, request: Request) -> Response:
        from . import registration

        binding = token_binding(request.auth)
        return Response(registration.registration_options(user=request.user, binding=binding))


class RegisterView(APIView):
    authentication_classes = [UserTokenAuthentication]
    permission_classes = [IsAuthenticated, EnrolmentAllowed, RecentlyReauthenticated]

    @extend_schema(
        operation_id="passkeys_register",
        summary="Register a passkey",
        description="The authenticator's answer to the registration options, with an optional "
        "`name`. The new passkey is a second factor from now on, and signs in without a "
        "password when the authenticator verified the person (`passwordless`). It verifies the "
        "token, as confirming a first authenticator does.",
        request=RegistrationResponseJSON,
        responses={
            201: PasskeySerializer,
            **problem_responses(400, 401, 403, 415, s400=REFUSED, s403=REAUTH_403),
        },
    )
    def post(self, request: Request) -> Response:
        from . import registration

        data = _valid(RegistrationResponseJSON, request.data)
        name = data.pop("name", "")
        try:
            passkey = registration.register_passkey(
                user=request.user,
                binding=token_binding(request.auth),
                credential=data,
                name=name,
                token=request.auth,
                request=request._request,
            )
        except PasskeyRefused as exc:
            raise refused(exc) from None
        return Response(PasskeySerializer(passkey).data, status=status.HTTP_201_CREATED)


class AuthenticateOptionsView(APIView):
    authentication_classes = [UserTokenAuthentication]
    permission_classes = [EnrolledIfRequiredWithToken]

    @extend_schema(
        operation_id="passkeys_authenticate_options",
        summary="Start signing in with a passkey",
        description="With a user token: a second factor among the person's passkeys, the "
        "challenge bound to the token. Without: a passwordless sign-in with any discoverable "
        "passkey that verifies the person (`userVerification: required`).",
        request=None,
        auth=USER_TOKEN_OR_NONE,
        responses={
            200: PublicKeyCredentialRequestOptionsJSON,
            **problem_responses(401, 403, s403=AUTHENTICATE_403),
        },
    )
    def post(self, request: Request) -> Response:
        from . import authentication

        user = request.user if request.auth is not None else None
        if user is not None and twofactor_selectors.second_factor_is_locked(user=user):
            # Refused now rather than after the person has touched their authenticator.
            raise code_refused(SecondFactorLocked())
        binding = token_binding(request.auth)
        return Response(authentication.authentication_options(binding=binding, user=user))


class AuthenticateView(APIView):
    authentication_classes = [UserTokenAuthentication]
    permission_classes = [EnrolledIfRequiredWithToken]

    @extend_schema(
        operation_id="passkeys_authenticate",
        summary="Sign in with a passkey",
        description="The authenticator's answer to the options. With the user token the options "
        "were asked with: the token is verified, as a TOTP code verifies it (200). Without a "
        "token: a passwordless sign-in, answered with a new token that is already verified "
        "(201). Failed assertions are throttled like wrong codes: 429 with Retry-After.",
        request=AuthenticationResponseJSON,
        auth=USER_TOKEN_OR_NONE,
        responses={
            200: StatusSerializer,
            201: IssuedTokenSerializer,
            **problem_responses(400, 401, 403, 415, 429, s400=REFUSED, s403=AUTHENTICATE_403),
        },
    )
    def post(self, request: Request) -> Response:
        from . import authentication

        data = _valid(AuthenticationResponseJSON, request.data)
        token = request.auth
        try:
            passkey = authentication.authenticate_passkey(
                credential=data,
                binding=token_binding(token),
                user=request.user if token is not None else None,
                token=token,
                request=request._request,
            )
        except PasskeyThrottled as exc:
            raise throttled(exc) from None
        except PasskeyRefused as exc:
            raise refused(exc) from None
        except SecondFactorLocked as exc:
            raise code_refused(exc) from None
        if token is not None:
            return Response({"status": True})
        issued = issue_user_token(user=passkey.user, request=request._request, method="passkey")
        mark_token_verified(token=issued.token, now=issued.token.created_at)
        body = {
            "token": issued.key,
            "expires_at": issued.token.expires_at,
            "second_factor_required": False,
            "enrolled": True,
        }
        return Response(IssuedTokenSerializer(body).data, status=status.HTTP_201_CREATED)


class PasskeysView(APIView):
    authentication_classes = [UserTokenAuthentication]
    permission_classes = [IsAuthenticated, EnrolmentAllowed]

    @extend_schema(
        operation_id="passkeys_list",
        summary="The person's passkeys",
        description="Never their credential ids or keys. Needs a verified token once the person "
        "has a second factor.",
        responses={200: PasskeySerializer(many=True), **problem_responses(401, 403)},
    )
    def get(self, request: Request) -> Response:
        passkeys = selectors.passkeys(user=request.user)
        return Response(PasskeySerializer(passkeys, many=True).data)


class PasskeyView(APIView):
    authentication_classes = [UserTokenAuthentication]
    permission_classes = [
        IsAuthenticated,
        EnrolledIfRequired,
        SecondFactorVerified,
        RecentlyReauthenticated,
    ]

    @extend_schema(
        operation_id="passkeys_destroy",
        summary="Remove a passkey",
        description="Its assertions are refused from now on. Needs a verified token and a recent "
        "password or code with it.",
        request=None,
        responses={
            204: OpenApiResponse(description="Removed."),
            **problem_responses(
                401, 403, 404, s403=REAUTH_403 + " Or `type` …/enrolment-required."
            ),
        },
    )
    def delete(self, request: Request, passkey_id: int) -> Response:
        passkey = selectors.passkey(user=request.user, passkey_id=passkey_id)
        if passkey is None:
            raise exceptions.NotFound("You have no such passkey.")
        services.remove_passkey(passkey=passkey, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)
