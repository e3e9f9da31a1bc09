"""The passkey API's bodies, named as the WebAuthn specification names their JSON forms, so a
native app can hand them to its platform's passkey API as they are."""

from __future__ import annotations

from rest_framework import serializers

from ..models import Passkey

B64URL = "base64url, no padding"


class _RelyingPartySerializer(serializers.Serializer):
    id = serializers.CharField(help_text="WEBAUTHN_RP_ID: the domain the passkey is bound to.")
    name = serializers.CharField()


class _UserEntitySerializer(serializers.Serializer):
    id = serializers.CharField(help_text=f"The user handle ({B64URL}).")
    name = serializers.CharField()
    displayName = serializers.CharField()


class _CredentialDescriptorSerializer(serializers.Serializer):
    id = serializers.CharField(help_text=f"A credential id ({B64URL}).")
    type = serializers.CharField()
    transports = serializers.ListField(child=serializers.CharField(), required=False)


class PublicKeyCredentialCreationOptionsJSON(serializers.Serializer):
    """What `navigator.credentials.create()` (or a platform's passkey API) takes."""

    rp = _RelyingPartySerializer()
    user = _UserEntitySerializer()
    challenge = serializers.CharField(help_text=f"Random, used once ({B64URL}).")
    pubKeyCredParams = serializers.ListField(child=serializers.DictField())
    timeout = serializers.IntegerField(help_text="Milliseconds: WEBAUTHN_CHALLENGE_SECONDS.")
    excludeCredentials = _CredentialDescriptorSerializer(many=True)
    authenticatorSelection = serializers.DictField()
    attestation = serializers.CharField(help_text='Always "none".')


class PublicKeyCredentialRequestOptionsJSON(serializers.Serializer):
    """What `navigator.credentials.get()` (or a platform's passkey API) takes."""

    challenge = serializers.CharField(help_text=f"Random, used once ({B64URL}).")
    timeout = serializers.IntegerField(help_text="Milliseconds: WEBAUTHN_CHALLENGE_SECONDS.")
    rpId = serializers.CharField()
    allowCredentials = _CredentialDescriptorSerializer(
        many=True, help_text="The person's passkeys; empty for a passwordless sign-in."
    )
    userVerification = serializers.CharField(
        help_text='"required" for a passwordless sign-in, else "preferred".'
    )


class _AttestationResponseSerializer(serializers.Serializer):
    clientDataJSON = serializers.CharField()
    attestationObject = serializers.CharField()
    transports = serializers.ListField(child=serializers.CharField(), required=False)


class _AssertionResponseSerializer(serializers.Serializer):
    clientDataJSON = serializers.CharField()
    authenticatorData = serializers.CharField()
    signature = serializers.CharField()
    userHandle = serializers.CharField(required=False, allow_null=True)


class _CredentialSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=1400)
    rawId = serializers.CharField(max_length=1400)
    type = serializers.CharField()
    authenticatorAttachment = serializers.CharField(required=False, allow_null=True)
    clientExtensionResults = serializers.DictField(required=False)


class RegistrationResponseJSON(_CredentialSerializer):
    """What `navigator.credentials.create()` gives back (`credential.toJSON()`), plus a name."""

    response = _AttestationResponseSerializer()
    name = serializers.CharField(
        max_length=64, required=False, help_text="What to call the passkey, e.g. 'Work laptop'."
    )


class AuthenticationResponseJSON(_CredentialSerializer):
    """What `navigator.credentials.get()` gives back (`credential.toJSON()`)."""

    response = _AssertionResponseSerializer()


class PasskeySerializer(serializers.ModelSerializer):
    """A passkey as listed: never its credential id or public key."""

    class Meta:
        model = Passkey
        fields = ["id", "name", "passwordless", "created_at", "last_used_at"]
        read_only_fields = fields
