from django.apps import AppConfig
from django.conf import settings
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
