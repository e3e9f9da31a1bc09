from django.apps import AppConfig


class ExampleConfig(AppConfig):
    """The reference action module (`foo`, `bar`): copy it to start a new one."""

    name = "apps.example"
    label = "example"
