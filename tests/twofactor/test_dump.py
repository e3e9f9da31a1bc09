"""The proof that a stolen database gives no second factor away: after enrolling authenticators
(over the API and on the pages) and generating backup codes, a `pg_dump` of the real PostgreSQL
database holds neither the base32 secret, nor its hex form, nor any backup code, in any case."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session

from apps.twofactor.models import SealedTOTPDevice

from .conftest import PASSWORD, bearer, code_for, make_person, secret_from_page

pytestmark = pytest.mark.django_db(transaction=True)


def pg_dump() -> str:
    """Everything in the test database, as `pg_dump` writes it (schema and data), and the
    sessions decoded: Django stores them signed and compressed, not encrypted, so a secret kept
    in one in clear would not show in the dump's text yet be one decode away."""
    db = settings.DATABASES["default"]
    env = {"PGPASSWORD": db.get("PASSWORD") or ""}
    command = [
        "pg_dump",
        "--host",
        db.get("HOST") or "127.0.0.1",
        "--port",
        str(db.get("PORT") or 5432),
        "--username",
        db.get("USER") or "postgres",
        "--no-password",
        db["NAME"],
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    sessions = [SessionStore().decode(s.session_data) for s in Session.objects.all()]
    return result.stdout + json.dumps(sessions)


def post(client, path, body, token):
    return client.post(path, body, content_type="application/json", headers=bearer(token))


def enrol_over_the_api(client) -> tuple[str, list[str], list[str]]:
    """The base32 secret the app got, and the backup codes it was shown (no dump on the way:
    the API keeps nothing between calls)."""
    make_person("alice")
    token = post(client, "/api/v1/auth/token", {"username": "alice", "password": PASSWORD}, "")
    token = token.json()["token"]
    body = post(client, "/api/v1/otp/devices", {"name": "Phone"}, token).json()
    device = SealedTOTPDevice.objects.get(pk=body["id"])
    confirm = f"/api/v1/otp/devices/{body['id']}/confirm"
    assert post(client, confirm, {"token": code_for(device)}, token).json() == {"status": True}
    codes = post(client, "/api/v1/otp/backup-codes", {}, token).json()["codes"]
    assert len(codes) == 10
    return parse_qs(urlsplit(body["provisioning_uri"]).query)["secret"][0], codes, []


def enrol_on_the_pages(client) -> tuple[str, list[str], list[str]]:
    """The secret the page showed and the backup codes it showed, with dumps taken while each
    waited in the session (the key before its first code, the codes before the page shows them)."""
    make_person("bob")
    client.post("/account/login/", {"username": "bob", "password": PASSWORD})
    client.post("/account/two-factor/add/")
    secret = secret_from_page(client.get("/account/two-factor/add/").content.decode())
    dumps = [pg_dump()]
    response = client.post("/account/two-factor/add/", {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302, response.content
    response = client.post("/account/two-factor/backup-codes/")
    assert response.status_code == 302
    dumps.append(pg_dump())
    page = client.get("/account/two-factor/backup-codes/")
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", page.content.decode())
    assert len(codes) == 10
    return secret, codes, dumps


@pytest.mark.parametrize("enrol", [enrol_over_the_api, enrol_on_the_pages], ids=["api", "pages"])
def test_a_database_dump_holds_no_secret_and_no_backup_code(client, settings, enrol):
    settings.TWO_FACTOR_REQUIRED = "none"
    secret, codes, dumps_on_the_way = enrol(client)
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    for dump in (*dumps_on_the_way, pg_dump()):
        dump = dump.lower()
        assert "twofactor_sealedtotpdevice" in dump  # the dump is of the right database
        for form in (secret, key.hex(), *codes):
            assert form.lower() not in dump
