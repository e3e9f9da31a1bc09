"""`python manage.py create_api_client NAME [--modules a,b] [--rate 100/s]`: issue a key."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.actions.clients import create_api_client
from apps.actions.models import ApiClient
from apps.actions.registry import registry


class Command(BaseCommand):
    help = (
        "Create an API client and print its key. The key is shown this once and stored only as "
        "a hash: give it to the calling service now."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="a unique name for the calling service")
        parser.add_argument(
            "--modules",
            default="",
            help="comma-separated action modules the key may call (default: all of them)",
        )
        parser.add_argument(
            "--rate",
            default="",
            help="calls allowed per period, e.g. 100/s or 6000/min (default: ACTIONS_DEFAULT_RATE)",
        )

    def handle(self, *args, name: str, modules: str, rate: str, **options):
        allowed = [m.strip() for m in modules.split(",") if m.strip()]
        unknown = sorted(set(allowed) - set(registry.modules))
        if unknown:
            raise CommandError(
                f"Unknown action modules: {', '.join(unknown)}. "
                f"Known: {', '.join(sorted(registry.modules)) or 'none'}."
            )
        if ApiClient.objects.filter(name=name).exists():
            raise CommandError(f"An API client named {name!r} already exists.")
        try:
            client, key = create_api_client(name=name, allowed_modules=allowed, rate=rate)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        scope = ", ".join(client.allowed_modules) or "all modules"
        if client.rate:
            scope += f", at most {client.rate}"
        self.stderr.write(
            f"Created API client {client.name!r} (key prefix {client.key_prefix}) for {scope}.\n"
            "Its key follows; it is shown only this once:"
        )
        self.stdout.write(key)
