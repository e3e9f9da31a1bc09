"""config/settings.py chooses its backends from the environment, and is safe in production."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.servers import PROJECT_DIR

PRODUCTION_EXAMPLE = PROJECT_DIR / "env" / "production" / ".env.example"
OWN_FERNET_KEY = "b3duLWZlcm5ldC1rZXktZm9yLXRoZS10ZXN0cy0xMjM="  # not in any .env.example
LOCAL_EXAMPLE = PROJECT_DIR / "env" / "local" / ".env.example"

SHOW_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "debug": settings.DEBUG,
    "databases": {
        alias: {"engine": db["ENGINE"], "name": str(db["NAME"]), "conn_max_age": db["CONN_MAX_AGE"]}
        for alias, db in settings.DATABASES.items()
    },
    "cache": settings.CACHES["default"]["BACKEND"],
    "cache_location": settings.CACHES["default"]["LOCATION"],
    "log_level": settings.LOG_LEVEL,
}))
"""


def clean_env(**values: str) -> dict[str, str]:
    """A minimal environment: nothing of this shell's dbapi settings leaks in."""
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.update(values)
    return env


def run_python(code: str, env: dict[str, str], *, cwd=PROJECT_DIR) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )


def show_settings(*, cwd=PROJECT_DIR, **values: str) -> dict:
    result = run_python(SHOW_SETTINGS, clean_env(**values), cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def example_values(path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines())
    return {
        key: value
        for key, value in (p for p in pairs if len(p) == 2)
        if re.fullmatch(r"[A-Z_0-9]+", key)
    }


def test_nothing_set_gives_sqlite_and_local_memory():
    shown = show_settings(ENVIRONMENT="local", DATABASE_URL="", REDIS_URL="")
    assert shown["databases"]["default"]["engine"] == "django.db.backends.sqlite3"
    assert shown["databases"]["default"]["name"].endswith("db.sqlite3")
    assert shown["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert shown["debug"] is True


def test_urls_give_postgresql_with_persistent_connections_and_redis():
    shown = show_settings(
        ENVIRONMENT="local",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/dbapi",
        DATABASE_URL_REPORTING="postgres://postgres@127.0.0.1:5432/reports",
        REDIS_URL="redis://127.0.0.1:6379/3",
    )
    default = shown["databases"]["default"]
    assert default == {
        "engine": "django.db.backends.postgresql",
        "name": "dbapi",
        "conn_max_age": 600,
    }
    assert shown["databases"]["reporting"]["name"] == "reports"
    assert shown["cache"] == "django_redis.cache.RedisCache"
    assert shown["cache_location"] == "redis://127.0.0.1:6379/3"


def test_environment_file_is_loaded_and_real_variables_win(tmp_path):
    """Run in a copy of config/ whose project directory is temporary: the settings find
    env/<ENVIRONMENT>/.env beside their own directory, and the test writes nothing into the
    project's (the apps still come from it, on PYTHONPATH)."""
    shutil.copytree(
        PROJECT_DIR / "config", tmp_path / "config", ignore=shutil.ignore_patterns("__pycache__")
    )
    folder = tmp_path / "env" / "testing"
    folder.mkdir(parents=True)
    (folder / ".env").write_text(
        "SECRET_KEY=from-the-file-"
        + "x" * 40
        + f"\nOTP_ENCRYPTION_KEYS={OWN_FERNET_KEY}"
        + "\nLOG_LEVEL=WARNING\nREDIS_URL=redis://file:6379/0\n"
    )
    shown = show_settings(
        cwd=tmp_path,
        ENVIRONMENT="testing",
        REDIS_URL="redis://real:6379/0",
        PYTHONPATH=str(PROJECT_DIR),
    )
    assert shown["log_level"] == "WARNING"  # from the file
    assert shown["cache_location"] == "redis://real:6379/0"  # the real variable won
    assert shown["debug"] is False  # off outside local


def test_secret_key_is_required_outside_local():
    result = run_python(SHOW_SETTINGS, clean_env(ENVIRONMENT="production", SECRET_KEY=""))
    assert result.returncode != 0
    assert "SECRET_KEY must be set when ENVIRONMENT=production" in result.stderr


def test_debug_is_refused_outside_local():
    env = clean_env(ENVIRONMENT="production", SECRET_KEY="k" * 60, DEBUG="true")
    result = run_python(SHOW_SETTINGS, env)
    assert result.returncode != 0
    assert "DEBUG can only be on when ENVIRONMENT=local" in result.stderr


def test_check_deploy_is_clean_with_the_production_example():
    """With the changes the example demands of everyone: an own SECRET_KEY and an own
    OTP_ENCRYPTION_KEYS (their published ones are refused, tests/test_secret_key.py and
    tests/twofactor/test_sealing.py)."""
    own = {"SECRET_KEY": "own-" + "x1y2z3" * 9, "OTP_ENCRYPTION_KEYS": OWN_FERNET_KEY}
    env = clean_env(**{**example_values(PRODUCTION_EXAMPLE), **own})
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


SETTING_READS = re.compile(r"""env(?:\.\w+)?\(\s*"([A-Z_0-9]+)\"""")


@pytest.mark.parametrize(
    "example", [LOCAL_EXAMPLE, PRODUCTION_EXAMPLE], ids=["local", "production"]
)
def test_every_variable_the_settings_read_is_documented(example):
    read = set(SETTING_READS.findall((PROJECT_DIR / "config" / "settings.py").read_text()))
    read |= {"ENVIRONMENT", "DATABASE_URL"}
    documented = set(re.findall(r"^#? ?([A-Z_0-9]+)=", example.read_text(), flags=re.M))
    assert read - documented == set()
