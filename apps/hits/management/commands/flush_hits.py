"""`python manage.py flush_hits`: move the hits pending in Redis into the database.

Run it every minute or so (cron, a Kubernetes CronJob, or a loop): the interval bounds the hits a
Redis that loses its memory can take with it. Safe to interrupt and to run twice at once.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from redis import RedisError

from apps.hits.services import flush_hits


class Command(BaseCommand):
    help = "Move the hits pending in Redis into the database (safe to interrupt or overlap)."

    def handle(self, *args, **options) -> None:
        try:
            added = flush_hits()
        except RedisError as exc:
            # Non-zero exit, so the scheduler shows it; the hits wait in Redis for the next run.
            raise CommandError(f"Redis did not answer ({exc}); nothing was flushed.") from exc
        except DatabaseError as exc:
            raise CommandError(
                f"The database did not answer ({exc}); the hits wait in Redis for the next run."
            ) from exc
        total = sum(added.values())
        self.stdout.write(f"Flushed {total} hit{'s' if total != 1 else ''}.")
        if options["verbosity"] > 1:
            for name, hits in added.items():
                self.stdout.write(f"  {name}: +{hits}")
