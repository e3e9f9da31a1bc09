"""GET / counts one hit and shows the total, as text or as JSON, through Django's whole stack."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from apps.hits.models import HitCounter
from apps.hits.store import get_store
from tests.hits.conftest import in_threads

pytestmark = pytest.mark.django_db

TEXT = "text/plain; charset=utf-8"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_root_counts_a_hit_and_answers_text(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"] == TEXT
    assert response.content == b"Hits: 1"


def test_each_get_counts_one_more(client):
    answers = [client.get("/").content for _ in range(3)]
    assert answers == [b"Hits: 1", b"Hits: 2", b"Hits: 3"]


def test_a_redis_that_forgot_the_scripts_is_given_them_again(client):
    client.get("/")
    get_store().client.script_flush()  # as a restarted Redis has none
    assert client.get("/").content == b"Hits: 2"


def test_json_when_the_client_asks_for_it(client):
    client.get("/")
    response = client.get("/", headers={"Accept": "application/json"})
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"hits": 2}


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("*/*", TEXT),
        (BROWSER, TEXT),
        ("text/plain;q=0.5, application/json", "application/json"),
        ("application/json;q=0.5, text/plain", TEXT),
        ("image/png", TEXT),
    ],
)
def test_the_answer_follows_the_clients_preference(client, accept, expected):
    assert client.get("/", headers={"Accept": accept})["Content-Type"] == expected


def test_the_answer_is_never_cached_and_varies_with_accept(client):
    response = client.get("/")
    assert response["Cache-Control"] == "no-store"
    assert "Accept" in response["Vary"]


def test_root_keeps_a_sane_client_request_id(client):
    response = client.get("/", headers={"X-Request-ID": "mobile-42"})
    assert response["X-Request-ID"] == "mobile-42"


def test_root_generates_a_request_id_otherwise(client):
    assert re.fullmatch(r"[0-9a-f]{32}", client.get("/")["X-Request-ID"])


@pytest.mark.parametrize("method", ["post", "put", "delete", "head"])
def test_only_get_counts_and_other_methods_are_a_405_problem(client, method):
    response = getattr(client, method)("/", headers={"X-Request-ID": "no-count"})
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    assert response["X-Request-ID"] == "no-count"
    if method != "head":
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["request_id"] == "no-count"
    assert client.get("/").content == b"Hits: 1"


def test_the_first_hit_creates_the_counter_in_the_database(client):
    client.get("/")
    counter = HitCounter.objects.get(name="root")
    assert counter.total == 0  # the hit is pending in Redis until a flush


@pytest.mark.django_db(transaction=True)
def test_exactly_n_hits_from_many_threads_each_see_their_own_total():
    per_thread, threads = 25, 8

    def hit_many() -> list[int]:
        client = Client(headers={"Accept": "application/json"})
        return [client.get("/").json()["hits"] for _ in range(per_thread)]

    shown = [total for totals in in_threads(hit_many, count=threads) for total in totals]
    assert sorted(shown) == list(range(1, per_thread * threads + 1))
