"""Concurrent calls: the upsert leaves one row per name, whoever wins the race."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.test import Client

from apps.actions.clients import create_api_client
from apps.example.models import ExampleUser


@pytest.mark.django_db(transaction=True)
def test_concurrent_bar_calls_on_one_name_leave_one_row():
    _, key = create_api_client(name="racers")
    threads, statuses, barrier = 8, [], threading.Barrier(8)

    def race(n: int) -> None:
        try:
            barrier.wait()
            for round_number in range(5):
                response = Client().post(
                    "/actions/example/bar",
                    {"name": "shared", "email": f"t{n}-{round_number}@example.com"},
                    content_type="application/json",
                    headers={"Authorization": f"Bearer {key}"},
                )
                statuses.append(response.status_code)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=race, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert statuses == [200] * threads * 5
    assert ExampleUser.objects.filter(name="shared").count() == 1
    connection.close()
