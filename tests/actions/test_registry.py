"""Action modules are found at start-up, and mistakes in them stop the start-up."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework import serializers

from apps.actions.registry import Registry, registry
from tests.servers import PROJECT_DIR

START = (
    "import django; from django.conf import settings; "
    "settings.INSTALLED_APPS += {apps!r}; django.setup(); print('started')"
)


def start_with_apps(*apps: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", START.format(apps=list(apps))],
        cwd=PROJECT_DIR,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings", **(env or {})},
        capture_output=True,
        text=True,
    )


class Empty(serializers.Serializer):
    pass


def test_installed_apps_actions_modules_are_discovered():
    assert {"foo", "bar"} <= set(registry.get_module("example").actions)


@pytest.mark.without_database_url  # a start-up whose environment has no DATABASE_URL
def test_the_same_action_twice_stops_the_start_up():
    result = start_with_apps("tests.actions.twice_app")
    assert result.returncode != 0
    assert "ImproperlyConfigured: Action twice.same is registered twice" in result.stderr
    assert "started" not in result.stdout


@pytest.mark.without_database_url  # a start-up whose environment has no DATABASE_URL
def test_an_action_on_an_unconfigured_database_stops_the_start_up():
    result = start_with_apps("tests.actions.elsewhere_app")
    assert result.returncode != 0
    assert "runs on database 'reporting', which is not configured" in result.stderr
    assert "DATABASE_URL_REPORTING" in result.stderr


@pytest.mark.without_database_url  # a start-up whose environment has no DATABASE_URL
def test_an_action_on_a_named_database_starts_when_it_is_configured(tmp_path):
    env = {"DATABASE_URL_REPORTING": f"sqlite:///{tmp_path}/reporting.sqlite3"}
    result = start_with_apps("tests.actions.elsewhere_app", env=env)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_the_same_module_declared_twice_is_refused():
    fresh = Registry()
    fresh.module("sales")
    with pytest.raises(ImproperlyConfigured, match="'sales' is declared twice"):
        fresh.module("sales")


@pytest.mark.parametrize("name", ["Sales", "sales-report", "1st", "", "a" * 64, "sales/x"])
def test_names_must_be_plain_lower_case_words(name):
    fresh = Registry()
    with pytest.raises(ImproperlyConfigured, match="must be lower case"):
        fresh.module(name)
    module = fresh.module("sales")
    with pytest.raises(ImproperlyConfigured, match="must be lower case"):
        module.action(name, input=Empty)


def test_output_must_be_a_serializer_class_or_many():
    module = Registry().module("sales")
    with pytest.raises(ImproperlyConfigured, match="serializer class"):
        module.action("x", input=Empty, output=Empty())
