"""The two-factor API works on the embedded default too (`make run`: SQLite, local memory):
there the verify path's PostgreSQL-only statements give way to portable ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.servers import PROJECT_DIR

SCRIPT = """
import json, time
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
import pyotp
from django.test import Client
from apps.accounts.models import User

PASSWORD = "correct horse battery staple"
User.objects.create_user("alice", password=PASSWORD)
client = Client(HTTP_HOST="localhost")

def post(path, body, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.post(path, body, content_type="application/json", headers=headers)
    return response.status_code, response.json()

_, issued = post("/api/v1/auth/token", {"username": "alice", "password": PASSWORD})
token = issued["token"]
_, device = post("/api/v1/otp/devices", {}, token)
phone = pyotp.parse_uri(device["provisioning_uri"])
later = phone.at(time.time() + 30)
print(json.dumps({
    "confirm": post(f"/api/v1/otp/devices/{device['id']}/confirm", {"token": phone.now()}, token),
    "added": post("/api/v1/otp/devices", {}, token)[0],
    "verify": post("/api/v1/otp/verify", {"token": later}, token),
    "replay": post("/api/v1/otp/verify", {"token": later}, token),
    "throttled": post("/api/v1/otp/verify", {"token": phone.now()}, token)[0],
}))
"""


def test_enrol_and_verify_on_sqlite(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ENVIRONMENT": "local",
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "SQLITE_PATH": str(tmp_path / "db.sqlite3"),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["confirm"] == [200, {"status": True}]  # and the token is verified:
    assert outcome["added"] == 201  # adding another authenticator is allowed now
    assert outcome["verify"] == [200, {"status": True}]
    assert outcome["replay"] == [200, {"status": False}]
    assert outcome["throttled"] == 429
