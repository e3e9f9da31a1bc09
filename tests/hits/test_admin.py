"""Staff see the counters in the admin, read-only, with their persisted and pending totals."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from apps.hits.models import HitCounter
from tests.servers import cache_at

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/hits/hitcounter/"


@pytest.fixture
def counted(client) -> HitCounter:
    """The root counter with 3 hits persisted and 2 pending in Redis."""
    for _ in range(3):
        client.get("/")
    call_command("flush_hits", stdout=io.StringIO())
    for _ in range(2):
        client.get("/")
    return HitCounter.objects.get(name="root")


def cells(html: str, field: str) -> list[str]:
    """The text of a column's cells in the changelist (`<td class="field-NAME">TEXT</td>`)."""
    marker = f'class="field-{field}">'
    return [part.split("<", 1)[0] for part in html.split(marker)[1:]]


def test_staff_see_each_counter_with_its_persisted_and_pending_hits(staff_client, counted):
    response = staff_client.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    assert cells(html, "total") == ["3"]
    assert cells(html, "pending") == ["2"]
    assert ">root</" in html


def test_pending_hits_show_as_unavailable_when_redis_is_down(
    staff_client, counted, settings, dead_redis_url
):
    settings.CACHES = cache_at(dead_redis_url)
    assert cells(staff_client.get(CHANGELIST).content.decode(), "pending") == ["unavailable"]


def test_a_counter_page_is_read_only(staff_client, counted):
    url = f"{CHANGELIST}{counted.pk}/change/"
    page = staff_client.get(url)
    assert page.status_code == 200
    assert b'name="total"' not in page.content
    assert staff_client.post(url, {"total": "1000"}).status_code == 403
    counted.refresh_from_db()
    assert counted.total == 3


def test_counters_cannot_be_added_or_deleted(staff_client, counted):
    assert staff_client.get(f"{CHANGELIST}add/").status_code == 403
    delete = f"{CHANGELIST}{counted.pk}/delete/"
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    assert HitCounter.objects.filter(pk=counted.pk).exists()


def test_the_counters_are_for_staff_only(client, counted):
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
