"""`dbapi_otp_verifications_total{result}`: each code `POST /api/v1/otp/verify` checks is counted
once with its result (accepted, rejected, throttled, replayed), whether Django's API handler or
the WSGI fast route in front of it (apps/twofactor/wsgi.py) answers; a request refused before
any code is checked counts nothing."""

from __future__ import annotations

import pytest

from apps.core.metrics import OTP_RESULTS
from apps.core.wsgi import ApiHandler, FastPaths
from apps.twofactor.wsgi import VerifyRoute
from tests.metrics import TOKEN, scrape, value
from tests.servers import call_wsgi
from tests.twofactor.test_verify_fast_path import request

# The fast route and Django share the database connection, which the fast route closes when a
# request ends as Django does: these tests commit.
pytestmark = pytest.mark.django_db(transaction=True)

HANDLERS = {
    "django": ApiHandler,
    "fast route": lambda: FastPaths(ApiHandler(), [VerifyRoute()]),
}


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = TOKEN


def results(client) -> dict[str, float]:
    found = scrape(client)
    return {
        result: value(found, "dbapi_otp_verifications_total", result=result)
        for result in OTP_RESULTS
    }


def counted(client, case: str, handler: str) -> dict[str, float]:
    """What one request of the case added to each result."""
    environ, _ = request(case, 1)
    before = results(client)
    call_wsgi(HANDLERS[handler](), environ)
    after = results(client)
    return {result: after[result] - before[result] for result in OTP_RESULTS if after != before}


@pytest.mark.parametrize("handler", HANDLERS)
@pytest.mark.parametrize(
    ("case", "result"),
    [
        ("accepted", "accepted"),
        ("backup code", "accepted"),
        ("wrong code", "rejected"),
        ("replayed code", "replayed"),
        ("throttled", "throttled"),
    ],
)
def test_each_code_checked_is_counted_once_with_its_result(
    client, metrics_on, case, result, handler
):
    added = counted(client, case, handler)
    assert added == {name: 1.0 if name == result else 0.0 for name in OTP_RESULTS}


@pytest.mark.parametrize("handler", HANDLERS)
@pytest.mark.parametrize("case", ["locked", "malformed code", "no token", "not JSON"])
def test_a_request_refused_before_any_check_counts_nothing(client, metrics_on, case, handler):
    assert counted(client, case, handler) == {}


@pytest.mark.parametrize("handler", HANDLERS)
def test_nothing_is_counted_when_metrics_are_off(client, settings, handler):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ENABLED = False
    assert counted(client, "wrong code", handler) == {}
