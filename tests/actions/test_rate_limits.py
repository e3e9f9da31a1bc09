"""Per-client rate limits: counted atomically in Redis across processes, with the RateLimit
headers on every answer and 429 past the rate; per process while Redis is down."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import io
import json
import time
import urllib.error
import urllib.request

import pytest
from django.core.management import CommandError, call_command

from apps.actions.clients import create_api_client
from apps.actions.models import ApiClient
from tests.actions.conftest import ActionCaller
from tests.problems import assert_problem
from tests.servers import cache_at, gunicorn, redis_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def limited(client):
    """A caller whose client may make 3 calls a minute."""
    _, key = create_api_client(name="limited", rate="3/min")
    return ActionCaller(client, key)


def test_every_answer_carries_the_ratelimit_headers(limited):
    answers = [limited("example/foo", {"name": "ana"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert {a["RateLimit-Policy"] for a in answers} == {'"client";q=3;w=60'}
    remaining = [a["RateLimit"].split(";")[1] for a in answers]
    assert remaining == ["r=2", "r=1", "r=0"]


def test_past_the_rate_the_call_is_429_with_retry_after_and_changes_nothing(limited, example_rows):
    for _ in range(3):
        limited("example/foo", {"name": "ana"})
    response = limited("example/bar", {"name": "ana"})
    problem = assert_problem(response, 429, type="rate-limited")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response["RateLimit-Policy"] == '"client";q=3;w=60'
    assert response["RateLimit"].startswith('"client";r=0;t=')
    assert "slow down" in problem["detail"]
    assert example_rows() == []


def test_a_batch_counts_each_of_its_calls(limited):
    calls = [{"module": "example", "action": "foo", "input": {"name": "a"}}] * 3
    assert limited("batch", {"calls": calls})["RateLimit"].startswith('"client";r=0;')
    assert_problem(limited("example/foo", {"name": "ana"}), 429, type="rate-limited")


def test_clients_without_a_rate_are_unlimited_and_get_no_headers(call):
    response = call("example/foo", {"name": "ana"})
    assert "RateLimit" not in response
    assert "RateLimit-Policy" not in response


def test_the_default_rate_applies_to_clients_without_their_own(client, settings):
    settings.ACTIONS_DEFAULT_RATE = "1/h"
    _, key = create_api_client(name="defaulted")
    call = ActionCaller(client, key)
    assert call("example/foo", {"name": "ana"})["RateLimit-Policy"] == '"client";q=1;w=3600'
    assert_problem(call("example/foo", {"name": "ana"}), 429, type="rate-limited")


def test_the_command_sets_a_rate_and_refuses_one_it_cannot_read():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_client", "svc", "--rate", "100/s", stdout=out, stderr=err)
    assert ApiClient.objects.get(name="svc").rate == "100/s"
    assert "at most 100/s" in err.getvalue()
    with pytest.raises(CommandError, match="not a rate"):
        call_command("create_api_client", "bad", "--rate", "fast", stdout=out, stderr=err)
    assert not ApiClient.objects.filter(name="bad").exists()


def test_the_admin_sets_a_rate(staff_client):
    api_client, _ = create_api_client(name="svc")
    url = f"/admin/actions/apiclient/{api_client.pk}/change/"
    response = staff_client.post(url, {"name": "svc", "is_active": "on", "rate": "fast"})
    assert response.status_code == 200  # the form again, with the error
    assert "not a rate" in response.content.decode()
    staff_client.post(url, {"name": "svc", "is_active": "on", "rate": "6000/min"})
    assert ApiClient.objects.get(pk=api_client.pk).rate == "6000/min"


def test_with_redis_down_each_process_counts_its_share_and_no_call_fails(
    client, settings, log_lines
):
    _, key = create_api_client(name="degraded", rate="4/min")
    call = ActionCaller(client, key)
    with redis_server() as url:
        settings.CACHES = cache_at(url)
        assert call("example/foo", {"name": "ana"}).status_code == 200  # counted in Redis
    # That Redis is gone now: this process allows 4 / ACTIONS_RATE_PROCESSES (2) calls.
    answers = [call("example/foo", {"name": "ana"}).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    [warning] = log_lines(logger="apps.actions.rates")
    assert "counted per process" in warning["message"]


# --- Across processes -----------------------------------------------------------------------------


def call_clock(base_url: str, key: str) -> float | None:
    """The server's time of an accepted call (`foo` answers it); None for a refused one."""
    request = urllib.request.Request(
        f"{base_url}/actions/example/foo",
        data=b'{"name": "clock"}',
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return dt.datetime.fromisoformat(json.loads(response.read())["time"]).timestamp()
    except urllib.error.HTTPError as exc:
        if exc.code != 429:
            raise
        return None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_four_processes_against_a_10_per_second_client_accept_at_most_11_in_any_second():
    _, key = create_api_client(name="shared", rate="10/s")
    with gunicorn(workers=4) as base_url:
        deadline = time.monotonic() + 3
        with concurrent.futures.ThreadPoolExecutor(8) as pool:

            def hammer() -> list[float]:
                accepted = []
                while time.monotonic() < deadline:
                    at = call_clock(base_url, key)
                    if at is not None:
                        accepted.append(at)
                return accepted

            times = sorted(t for batch in pool.map(lambda _: hammer(), range(8)) for t in batch)
    assert len(times) >= 20  # the limiter lets calls through, about ten a second
    most = max(sum(1 for t in times if start <= t < start + 1) for start in times)
    assert most <= 11
