from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.utils.module_loading import autodiscover_modules


class ActionsConfig(AppConfig):
    """The action framework. At start-up it imports every installed app's `actions.py`, the
    way the admin imports `admin.py`, so that a module declared twice fails here and not on a
    request."""

    name = "apps.actions"
    label = "actions"

    def ready(self) -> None:
        from .registry import registry

        autodiscover_modules("actions")
        registry.check_databases(set(settings.DATABASES))
        _check_default_rate()


def _check_default_rate() -> None:
    """ACTIONS_DEFAULT_RATE must be a rate the limiter reads: found at start-up, not per call."""
    from .rates import Rate

    if settings.ACTIONS_DEFAULT_RATE:
        try:
            Rate.parse(settings.ACTIONS_DEFAULT_RATE)
        except ValidationError as exc:
            raise ImproperlyConfigured(f"ACTIONS_DEFAULT_RATE: {exc.messages[0]}") from None
