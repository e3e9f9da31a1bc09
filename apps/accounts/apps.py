from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People (the custom User) and the services that call the API (API clients)."""

    name = "apps.accounts"
    label = "accounts"
