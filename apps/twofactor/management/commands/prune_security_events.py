"""`python manage.py prune_security_events --days N`: delete security events older than N days.

Run it now and then (the Kubernetes CronJob does, daily): events are what people and staff read to
understand what happened, so keep as many days as they may need to look back.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from apps.twofactor import events


class Command(BaseCommand):
    help = "Delete security events (and their emails' records) older than --days days."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days", type=int, required=True, help="Keep the events of the last DAYS days (1+)."
        )

    def handle(self, *args, days: int, **options) -> None:
        if days < 1:
            raise CommandError("--days must be a whole number of days, at least 1.")
        try:
            deleted = events.prune(older_than=timedelta(days=days))
        except OverflowError:  # further back than the calendar goes
            raise CommandError("--days is too large.") from None
        self.stdout.write(f"Deleted {deleted} security event(s) older than {days} day(s).")
