"""Input and output of the mobile API (`/api/v1/auth/…`, `/api/v1/otp/…`)."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework import serializers


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=1024, trim_whitespace=False)


class IssuedTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Bearer <token>`; shown once.")
    expires_at = serializers.DateTimeField()
    second_factor_required = serializers.BooleanField(
        help_text="Endpoints that need two factors refuse the token until a code verified it."
    )
    enrolled = serializers.BooleanField(
        help_text="The person has a confirmed second factor: verify a code (POST otp/verify) or "
        "a passkey (POST passkeys/authenticate); otherwise enrol one (POST otp/devices, or "
        "passkeys/register)."
    )


# What a code can look like: letters and digits, in groups split by one space or dash (as apps
# and printed backup codes show them). Nothing around it: a token such as " 705866" or a tab
# is not a code, in the body of POST otp/verify as in the path of GET otp/check/<token>.
CODE_PATTERN = r"^[A-Za-z0-9]+(?:[ -][A-Za-z0-9]+)*$"


class CodeSerializer(serializers.Serializer):
    token = serializers.CharField(
        min_length=6,
        max_length=32,
        trim_whitespace=False,
        validators=[
            RegexValidator(CODE_PATTERN, message="This is not a code: letters and digits only.")
        ],
        help_text="A code from the authenticator app (6 digits), or a backup code.",
    )


class StatusSerializer(serializers.Serializer):
    status = serializers.BooleanField(help_text="Whether the code was accepted.")


class NewDeviceRequestSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64, required=False, help_text="e.g. 'Work phone'.")


class NewDeviceSerializer(serializers.Serializer):
    """The only answer that carries a device's secret: the enrolment, before confirmation."""

    id = serializers.IntegerField()
    provisioning_uri = serializers.CharField(
        help_text="otpauth://totp/<issuer>:<account>?secret=…&issuer=…"
    )
    qr_svg = serializers.CharField(help_text="The provisioning URI as an inline SVG QR code.")


class DeviceSerializer(serializers.ModelSerializer):
    """A device as listed: never its key."""

    class Meta:
        model = TOTPDevice
        fields = ["id", "name", "confirmed", "created_at", "last_used_at"]
        read_only_fields = fields
