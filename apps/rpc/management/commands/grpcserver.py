"""`python manage.py grpcserver [--bind HOST:PORT] [--workers N]`: serve the actions over gRPC."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.core import metrics
from apps.rpc.server import serve


class Command(BaseCommand):
    help = (
        "Serve the database actions (dbapi.v1.Actions) and the original api.Api over gRPC, "
        "with health checking and reflection, until SIGTERM."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--bind",
            default=settings.GRPC_BIND,
            help="host:port to listen on (default: GRPC_BIND, %(default)s)",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=settings.GRPC_WORKERS,
            help="threads serving calls at once (default: GRPC_WORKERS, %(default)s)",
        )

    def handle(self, *args, bind: str, workers: int, **options) -> None:
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        try:
            if settings.GRPC_METRICS_BIND:  # Prometheus' scrapes, beside the calls
                metrics.serve(settings.GRPC_METRICS_BIND)
            serve(bind=bind, workers=workers, grace=settings.GRPC_GRACE_SECONDS)
        except OSError as exc:
            raise CommandError(str(exc)) from exc
