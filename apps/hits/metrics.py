"""`dbapi_hits_pending`: the hits waiting in Redis for `flush_hits`, read when Prometheus scrapes.

Read from Redis at scrape time rather than kept by the workers: the number is Redis', shared by
every worker and pod, and a gauge that only grows means the flush is not running.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .selectors import all_pending_hits

if TYPE_CHECKING:
    from prometheus_client.core import GaugeMetricFamily


def pending_hits_gauge() -> Iterator[GaugeMetricFamily]:
    from prometheus_client.core import GaugeMetricFamily  # loaded by the scrape that reads it

    pending = all_pending_hits()
    if pending is not None:  # Redis down: no sample rather than a wrong one
        yield GaugeMetricFamily(
            "dbapi_hits_pending", "Hits counted in Redis, not yet flushed to the database.", pending
        )
