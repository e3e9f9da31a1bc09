"""`python manage.py prune_idempotency_keys`: drop the answers kept for Idempotency-Keys once
expired (ACTIONS_IDEMPOTENCY_SECONDS).

Run it now and then (the Kubernetes CronJob does, hourly): an expired answer is never replayed
anyway, this only keeps the table small.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from apps.actions.idempotency import prune


class Command(BaseCommand):
    help = "Delete the answers kept for Idempotency-Keys once they have expired, on every database."

    def handle(self, *args, **options):
        now = timezone.now()
        for alias in settings.DATABASES:
            removed = prune(using=alias, now=now)
            self.stdout.write(f"{alias}: {removed} expired answer(s) removed")
