"""Resetting a person's second factor, for staff helping someone who lost their phone."""

from __future__ import annotations

from django.db import transaction
from django_otp import device_classes

from .models import User
from .tokens import revoke_user_tokens


def reset_second_factor(*, user: User) -> int:
    """Remove every OTP device of `user` (authenticators, backup codes) and revoke their tokens.

    Tokens go too: one verified with a lost phone must not outlive the reset. Returns the number
    of devices removed (their backup codes not counted).
    """
    removed = 0
    with transaction.atomic():
        for model in device_classes():
            _, per_model = model.objects.filter(user=user).delete()
            removed += per_model.get(model._meta.label, 0)
        revoke_user_tokens(user=user)
    return removed
