from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    """Cross-cutting pieces every other app uses: errors, JSON, request ids, logging, health."""

    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from . import tracing

        tracing.configure()  # before Django's handlers load their middleware
        if any(
            db["ENGINE"] == "django.db.backends.postgresql" for db in settings.DATABASES.values()
        ):
            from . import database

            database.install()  # a database that stops answering is given up on (DB_TIMEOUT)
