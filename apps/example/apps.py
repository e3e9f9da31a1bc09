import time

from django.apps import AppConfig
from django.db.backends.signals import connection_created


class ExampleConfig(AppConfig):
    """The reference action module: copy it to start a new one."""

    name = "apps.example"
    label = "example"

    def ready(self) -> None:
        connection_created.connect(_sqlite_sleep, dispatch_uid="example-sqlite-sleep")


def _sqlite_sleep(sender, connection, **kwargs) -> None:
    """SQLite has no `pg_sleep`: give the embedded default one, so `wait` runs there too
    (without a statement timeout, which is PostgreSQL's)."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("pg_sleep", 1, time.sleep)
