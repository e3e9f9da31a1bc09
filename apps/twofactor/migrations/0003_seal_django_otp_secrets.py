"""Move every django-otp device into this app's sealed ones, and leave no secret behind.

Authenticators (otp_totp) keep their key, sealed with the first OTP_ENCRYPTION_KEYS key, and
everything else (name, confirmation, step, drift, the last accepted step, throttling, times), so
a phone enrolled before keeps producing codes that are accepted, and a code used before is still
refused. Backup codes (otp_static) are kept as keyed hashes of the code as typed, normalized as
the verify path normalizes input. The django-otp rows are then deleted: a database dump holds no
plain secret. (A session verified by a django-otp device asks for a code once more.)

Backwards, authenticators get their plain keys back; backup codes cannot be (only their hashes
exist), so people generate new ones.
"""

from django.db import migrations

from apps.twofactor import sealing

TOTP_FIELDS = (
    "user_id",
    "name",
    "confirmed",
    "throttling_failure_timestamp",
    "throttling_failure_count",
    "last_used_at",
    "step",
    "t0",
    "digits",
    "tolerance",
    "drift",
    "last_t",
)
STATIC_FIELDS = (
    "user_id",
    "name",
    "confirmed",
    "throttling_failure_timestamp",
    "throttling_failure_count",
    "last_used_at",
)


def normalized(code: str) -> str:
    # As apps.twofactor.verification.normalize_code, frozen here with this migration.
    return "".join(code.split()).replace("-", "").lower()


def seal_secrets(apps, schema_editor):
    PlainTOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    StaticDevice = apps.get_model("otp_static", "StaticDevice")
    StaticToken = apps.get_model("otp_static", "StaticToken")
    SealedTOTPDevice = apps.get_model("twofactor", "SealedTOTPDevice")
    BackupCodeDevice = apps.get_model("twofactor", "BackupCodeDevice")
    BackupCode = apps.get_model("twofactor", "BackupCode")

    for plain in PlainTOTPDevice.objects.order_by("pk").iterator():
        sealed = SealedTOTPDevice.objects.create(
            sealed_key=sealing.seal(bytes.fromhex(plain.key)),
            **{name: getattr(plain, name) for name in TOTP_FIELDS},
        )
        # auto_now_add set it to now; the device was made when django-otp's was.
        SealedTOTPDevice.objects.filter(pk=sealed.pk).update(created_at=plain.created_at)
    PlainTOTPDevice.objects.all().delete()

    for static in StaticDevice.objects.order_by("pk").iterator():
        device = BackupCodeDevice.objects.create(
            **{name: getattr(static, name) for name in STATIC_FIELDS}
        )
        BackupCodeDevice.objects.filter(pk=device.pk).update(created_at=static.created_at)
        digests = {
            sealing.backup_code_digest(user_id=static.user_id, code=normalized(token.token))
            for token in StaticToken.objects.filter(device=static)
        }
        BackupCode.objects.bulk_create(
            BackupCode(device=device, digest=digest) for digest in sorted(digests)
        )
    StaticToken.objects.all().delete()
    StaticDevice.objects.all().delete()


def unseal_secrets(apps, schema_editor):
    PlainTOTPDevice = apps.get_model("otp_totp", "TOTPDevice")
    SealedTOTPDevice = apps.get_model("twofactor", "SealedTOTPDevice")
    for sealed in SealedTOTPDevice.objects.order_by("pk").iterator():
        plain = PlainTOTPDevice.objects.create(
            key=sealing.unseal(sealed.sealed_key).hex(),
            **{name: getattr(sealed, name) for name in TOTP_FIELDS},
        )
        PlainTOTPDevice.objects.filter(pk=plain.pk).update(created_at=sealed.created_at)
    SealedTOTPDevice.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("twofactor", "0002_sealed_second_factor"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(seal_secrets, unseal_secrets)]
