"""scripts/totp_client.py: the terminal authenticator prints the codes a phone would show."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

import pyotp
import pytest

from tests.servers import PROJECT_DIR

SCRIPT = PROJECT_DIR / "scripts" / "totp_client.py"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
URI = f"otpauth://totp/dbapi%3Aalice?secret={SECRET}&algorithm=SHA1&digits=6&period=30&issuer=dbapi"


@pytest.fixture(scope="module")
def totp_client():
    spec = importlib.util.spec_from_file_location("totp_client", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize("given", [URI, SECRET, "jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp"])
def test_it_prints_the_current_code(given):
    before = pyotp.TOTP(SECRET).now()
    result = run("--once", given)
    after = pyotp.TOTP(SECRET).now()
    assert result.returncode == 0, result.stderr
    code = result.stdout.splitlines()[-1].split()[0]
    assert code in {before, after}


def test_it_names_the_account_of_a_uri():
    assert run("--once", URI).stdout.splitlines()[0] == "dbapi:alice"


def test_it_refuses_what_is_not_a_secret():
    result = run("--once", "not base32!")
    assert result.returncode == 2
    assert "not base32" in result.stderr


def test_codes_match_rfc_6238(totp_client):
    account = totp_client.Account(key=b"12345678901234567890", digits=8)
    assert totp_client.current_code(account, at=59) == ("94287082", 1)
    assert totp_client.current_code(account, at=1111111109)[0] == "07081804"


def test_codes_keep_their_leading_zeros(totp_client):
    account = totp_client.parse_account(SECRET)
    for moment in range(0, 30 * 400, 30):
        code, _ = totp_client.current_code(account, at=moment)
        assert code == pyotp.TOTP(SECRET).at(moment)


def test_without_once_it_keeps_running_for_the_next_code():
    before = pyotp.TOTP(SECRET).now()
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), SECRET], stdout=subprocess.PIPE, text=True
    )
    try:
        first = process.stdout.readline()
        assert first.split()[0] in {before, pyotp.TOTP(SECRET).now()}
        time.sleep(1)
        assert process.poll() is None  # still running, waiting for the next code
    finally:
        process.terminate()
        process.wait(timeout=10)
