"""`Accept: application/x-ndjson`: a result streamed one row a line, read as it is sent."""

from __future__ import annotations

import http.client
import json

import pytest
from django.db import connection

from apps.actions.clients import create_api_client
from tests.problems import assert_problem
from tests.servers import gunicorn, peak_rss_kib, wait_until, worker_pid

NDJSON = {"Accept": "application/x-ndjson"}


def lines(response) -> list:
    body = b"".join(response.streaming_content)
    return [json.loads(line) for line in body.splitlines()]


@pytest.mark.django_db
def test_rows_are_streamed_one_a_line(call):
    response = call("example/numbers", {"count": 2500}, headers=NDJSON)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    rows = lines(response)
    assert len(rows) == 2500
    assert rows[0] == {"n": 1, "label": "row 1"}
    assert rows[-1] == {"n": 2500, "label": "row 2500"}


@pytest.mark.django_db
def test_without_the_accept_header_the_answer_stays_a_json_array(call):
    response = call("example/numbers", {"count": 3})
    assert response["Content-Type"] == "application/json"
    assert [row["n"] for row in response.json()] == [1, 2, 3]


@pytest.mark.django_db
def test_an_error_after_the_first_row_ends_the_stream_with_an_error_line(call):
    response = call("testing/rows_then_fail", {}, headers=NDJSON)
    assert response.status_code == 200  # sent before the failure
    *rows, last = lines(response)
    assert rows == [{"n": 1}, {"n": 2}]
    assert last["error"]["status"] == 500
    assert last["error"]["request_id"] == response["X-Request-ID"]
    assert "cursor broke" not in json.dumps(last)  # the detail stays in the log


@pytest.mark.django_db
def test_problems_before_the_first_row_are_answered_as_usual(call):
    assert_problem(call("example/numbers", {"count": 0}, headers=NDJSON), 400)
    assert_problem(call("example/numbers", {"count": 1}, headers=NDJSON, key=None), 401)


@pytest.mark.django_db
def test_a_stream_is_not_kept_for_an_idempotency_key(call):
    headers = {**NDJSON, "Idempotency-Key": "k"}
    assert_problem(
        call("example/numbers", {"count": 1}, headers=headers), 400, type="stream-not-kept"
    )


def fetching_a_cursor() -> bool:
    """A session of this test database sits inside a transaction reading a server-side cursor."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%%' AND query LIKE 'FETCH FORWARD%%'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_million_rows_stream_in_flat_memory_the_first_line_before_the_last_row():
    _, key = create_api_client(name="streamer")
    with gunicorn(workers=1) as base_url:
        host, port = base_url.removeprefix("http://").split(":")
        connection_ = http.client.HTTPConnection(host, int(port), timeout=60)

        def numbers(count: int) -> http.client.HTTPResponse:
            connection_.request(
                "POST",
                "/actions/example/numbers",
                body=json.dumps({"count": count}),
                headers={
                    "Authorization": f"Bearer {key}",
                    "Content-Type": "application/json",
                    **NDJSON,
                },
            )
            return connection_.getresponse()

        warm = numbers(10_000)  # imports, connections, a first cursor: then measure
        assert len(warm.read().splitlines()) == 10_000
        pid = worker_pid(base_url)
        before = peak_rss_kib(pid)

        response = numbers(1_000_000)
        first = json.loads(response.readline())
        assert first == {"n": 1, "label": "row 1"}
        # The first line is here while the cursor is still being read, inside the transaction.
        wait_until(fetching_a_cursor)
        # The rest read in large pieces, its lines counted without parsing each.
        count, tail = 1, b""
        while piece := response.read(1 << 16):
            count += piece.count(b"\n")
            tail = (tail + piece)[-1000:]
        assert count == 1_000_000
        assert json.loads(tail.splitlines()[-1]) == {"n": 1_000_000, "label": "row 1000000"}
        growth_mib = (peak_rss_kib(pid) - before) / 1024
        connection_.close()
    assert growth_mib <= 30
