"""The proof that a stolen database gives no second factor away: after enrolling authenticators
(over the API and on the pages) and generating backup codes, a `pg_dump` of the real PostgreSQL
database holds neither the base32 secret, nor its hex form, nor any backup code, in any case."""

from __future__ import annotations

import base64
import re
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings

from apps.twofactor.models import SealedTOTPDevice

from .conftest import PASSWORD, bearer, code_for, make_person, secret_from_page

pytestmark = pytest.mark.django_db(transaction=True)


def pg_dump() -> str:
    """Everything in the test database, as `pg_dump` writes it (schema and data)."""
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
    return result.stdout


def post(client, path, body, token):
    return client.post(path, body, content_type="application/json", headers=bearer(token))


def enrol_over_the_api(client) -> tuple[str, list[str]]:
    """The base32 secret the app got, and the backup codes it was shown."""
    make_person("alice")
    token = post(client, "/api/v1/auth/token", {"username": "alice", "password": PASSWORD}, "")
    token = token.json()["token"]
    body = post(client, "/api/v1/otp/devices", {"name": "Phone"}, token).json()
    device = SealedTOTPDevice.objects.get(pk=body["id"])
    confirm = f"/api/v1/otp/devices/{body['id']}/confirm"
    assert post(client, confirm, {"token": code_for(device)}, token).json() == {"status": True}
    codes = post(client, "/api/v1/otp/backup-codes", {}, token).json()["codes"]
    assert len(codes) == 10
    return parse_qs(urlsplit(body["provisioning_uri"]).query)["secret"][0], codes


def enrol_on_the_pages(client) -> tuple[str, list[str]]:
    make_person("bob")
    client.post("/account/login/", {"username": "bob", "password": PASSWORD})
    page = client.get("/account/two-factor/add/", follow=True)
    secret = secret_from_page(page.content.decode())
    device = SealedTOTPDevice.objects.get(user__username="bob")
    response = client.post(page.redirect_chain[-1][0], {"code": code_for(device)})
    assert response.status_code == 302, response.content
    page = client.post("/account/two-factor/backup-codes/", {"code": code_for(device, steps=1)})
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", page.content.decode())
    assert len(codes) == 10
    return secret, codes


@pytest.mark.parametrize("enrol", [enrol_over_the_api, enrol_on_the_pages], ids=["api", "pages"])
def test_a_database_dump_holds_no_secret_and_no_backup_code(client, settings, enrol):
    settings.TWO_FACTOR_REQUIRED = "none"
    secret, codes = enrol(client)
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    dump = pg_dump().lower()
    assert "twofactor_sealedtotpdevice" in dump  # the dump is of the right database
    for form in (secret, key.hex(), *codes):
        assert form.lower() not in dump
