"""Production settings refuse a SECRET_KEY anyone could know: one published in an .env.example,
Django's insecure kind, or one too short to resist guessing. Each case starts the project the way
an operator would (`manage.py check --deploy` with ENVIRONMENT=production) in a subprocess."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import uuid

import pytest

from tests.servers import PROJECT_DIR

PRODUCTION_EXAMPLE = PROJECT_DIR / "env" / "production" / ".env.example"


def example_values(path) -> dict[str, str]:
    """The variables an .env.example sets (commented lines are documentation)."""
    values = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isupper() and not key.startswith("#"):
            values[key] = value
    return values


def check_deploy(**overrides: str) -> subprocess.CompletedProcess:
    """`manage.py check --deploy` with the production example's values and nothing else."""
    # An own OTP_ENCRYPTION_KEYS: the example's is refused too, and is not what is tested here.
    own_otp_keys = {"OTP_ENCRYPTION_KEYS": "b3duLWZlcm5ldC1rZXktZm9yLXRoZS10ZXN0cy0xMjM="}
    env = {
        "PATH": os.environ["PATH"],
        **example_values(PRODUCTION_EXAMPLE),
        **own_otp_keys,
        **overrides,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )


def test_check_deploy_refuses_the_production_examples_secret_key():
    example_key = example_values(PRODUCTION_EXAMPLE)["SECRET_KEY"]
    assert len(example_key) >= 50  # refused for where it comes from, not for its length
    result = check_deploy(SECRET_KEY=example_key)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is the published example value" in result.stderr
    assert "env/production/.env.example" in result.stderr


def test_a_key_from_any_environments_example_is_refused():
    key = secrets.token_urlsafe(50)
    folder = PROJECT_DIR / "env" / f"pytest-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        (folder / ".env.example").write_text(f"# an example someone added\nSECRET_KEY={key}\n")
        refused = check_deploy(SECRET_KEY=key)
    finally:
        shutil.rmtree(folder)
    assert refused.returncode != 0
    assert "SECRET_KEY is the published example value" in refused.stderr
    assert f"env/{folder.name}/.env.example" in refused.stderr


def test_a_secret_key_shorter_than_50_characters_is_refused():
    result = check_deploy(SECRET_KEY=secrets.token_urlsafe(60)[:49])
    assert result.returncode != 0
    assert "SECRET_KEY is 49 characters long" in result.stderr


def test_djangos_insecure_kind_of_key_is_refused():
    result = check_deploy(SECRET_KEY="django-insecure-" + secrets.token_urlsafe(50))
    assert result.returncode != 0
    assert "SECRET_KEY is Django's insecure kind" in result.stderr


@pytest.mark.parametrize("length", [50, 80])
def test_an_own_random_key_of_50_characters_or_more_passes_check_deploy(length):
    result = check_deploy(SECRET_KEY=secrets.token_urlsafe(length)[:length])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
