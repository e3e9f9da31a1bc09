from django.apps import AppConfig


class HitsConfig(AppConfig):
    """The cached hit counter: hits counted in Redis, persisted to the database by `flush_hits`."""

    name = "apps.hits"
    label = "hits"
    verbose_name = "Hit counters"

    def ready(self) -> None:
        from apps.core import metrics

        from .metrics import pending_hits_gauge

        metrics.read_at_scrape(pending_hits_gauge)
