"""`manage.py runserver`: the command it would otherwise be (whitenoise's, over staticfiles'), on a
server whose request lines carry the request id (apps/core/runserver.py).

apps.core comes before those apps in INSTALLED_APPS, so this command is the one Django runs.
"""

from __future__ import annotations

from importlib import import_module

from django.apps import apps
from django.core.management.base import BaseCommand

from apps.core.runserver import RequestIdWSGIServer


def next_runserver_command() -> type[BaseCommand]:
    """The runserver command of the first app after this one that has one, or Django's."""
    names = [config.name for config in apps.get_app_configs()]
    for name in [*names[names.index("apps.core") + 1 :], "django.core"]:
        try:
            return import_module(f"{name}.management.commands.runserver").Command
        except (ImportError, AttributeError):
            continue
    raise LookupError("no runserver command")  # django.core always has one


class Command(next_runserver_command()):
    server_cls = RequestIdWSGIServer
