from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HitsConfig(AppConfig):
    """The cached hit counter: hits counted in Redis, persisted to the database by `flush_hits`."""

    name = "apps.hits"
    label = "hits"
    verbose_name = _("Hit counters")

    def ready(self) -> None:
        from apps.core import metrics

        from .metrics import pending_hits_gauge

        metrics.read_at_scrape(pending_hits_gauge)
