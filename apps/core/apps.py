from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting pieces every other app uses: errors, JSON, request ids, logging, health."""

    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from . import tracing

        tracing.configure()  # before Django's handlers load their middleware
