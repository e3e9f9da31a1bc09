"""Input and output of the mobile API (`/api/v1/auth/…`, `/api/v1/otp/…`)."""

from __future__ import annotations

from django.core.validators import RegexValidator
from rest_framework import serializers

from apps.core.serializers import StringField

from .models import SealedTOTPDevice, SecurityEvent


class CredentialsSerializer(serializers.Serializer):
    username = StringField(max_length=150)
    password = StringField(max_length=1024)


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
    token = StringField(
        min_length=6,
        max_length=32,
        validators=[
            RegexValidator(CODE_PATTERN, message="This is not a code: letters and digits only.")
        ],
        help_text="A code from the authenticator app (6 digits), or a backup code.",
    )


class StatusSerializer(serializers.Serializer):
    status = serializers.BooleanField(help_text="Whether the code was accepted.")


class NewDeviceRequestSerializer(serializers.Serializer):
    name = StringField(max_length=64, required=False, help_text="e.g. 'Work phone'.")


class ReplacedDeviceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class NewDeviceSerializer(serializers.Serializer):
    """The only answer that carries a device's secret: the enrolment, before confirmation."""

    id = serializers.IntegerField()
    provisioning_uri = serializers.CharField(
        help_text="otpauth://totp/<issuer>:<account>?secret=…&issuer=…"
    )
    qr_svg = serializers.CharField(help_text="The provisioning URI as an inline SVG QR code.")
    replaced = ReplacedDeviceSerializer(
        allow_null=True,
        help_text="The unfinished enrolment this one replaced (only the latest can be "
        "confirmed), or null.",
    )


class ReauthenticateSerializer(serializers.Serializer):
    """The password, or a code (from an authenticator, or a backup code): exactly one."""

    password = StringField(max_length=1024, required=False)
    code = StringField(
        min_length=6,
        max_length=32,
        required=False,
        validators=[
            RegexValidator(CODE_PATTERN, message="This is not a code: letters and digits only.")
        ],
        help_text="A code from the authenticator app (6 digits), or a backup code.",
    )

    def validate(self, data: dict) -> dict:
        if ("password" in data) == ("code" in data):
            raise serializers.ValidationError("Send either `password` or `code`.")
        return data


class PasswordProofSerializer(serializers.Serializer):
    password = StringField(max_length=1024)


class CodeProofSerializer(serializers.Serializer):
    code = StringField(
        min_length=6,
        max_length=32,
        validators=[
            RegexValidator(CODE_PATTERN, message="This is not a code: letters and digits only.")
        ],
        help_text="A code from the authenticator app (6 digits), or a backup code.",
    )


class ReauthenticatedSerializer(serializers.Serializer):
    status = serializers.BooleanField(help_text="Whether the password or code was accepted.")
    reauthenticated_until = serializers.DateTimeField(
        allow_null=True,
        help_text="Until when factors and backup codes may be changed with this token.",
    )


class BackupCodesSerializer(serializers.Serializer):
    codes = serializers.ListField(
        child=serializers.CharField(),
        help_text="Ten new one-time codes, shown this once (only their hashes are kept); the "
        "previous set no longer works.",
    )


class DeviceSerializer(serializers.ModelSerializer):
    """A device as listed: never its key."""

    class Meta:
        model = SealedTOTPDevice
        fields = ["id", "name", "confirmed", "created_at", "last_used_at"]
        read_only_fields = fields


class SecurityEventSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=SecurityEvent.Kind.choices)
    at = serializers.DateTimeField()
    ip = serializers.IPAddressField(allow_null=True, help_text="The client's address, if known.")
    user_agent = serializers.CharField(help_text="The browser or app, as it named itself.")
    detail = serializers.DictField(
        source="details",
        help_text="How it happened (`via`, `second_factor`, `device_kind`, `by`, …); never a "
        "secret.",
    )
