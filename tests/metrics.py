"""Reading Prometheus' text as Prometheus does (prometheus-client's own parser)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

TOKEN = "metrics-token-for-tests-only"


def samples(text: str | bytes) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape: (name, labels) -> value."""
    if isinstance(text, bytes):
        text = text.decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    """One sample's value; 0 for a series not exported yet (a counter never incremented)."""
    return found.get((name, frozenset(labels.items())), 0.0)


def scrape(client) -> dict:
    """GET /metrics with the token, through a Django test client."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    return samples(response.content)
