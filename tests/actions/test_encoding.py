"""Action results are JSON whatever a row holds."""

import pytest

pytestmark = pytest.mark.django_db


def test_every_postgresql_type_a_row_holds_is_encoded(call):
    response = call("testing/types")
    assert response.status_code == 200
    assert response.json() == {
        "ts": "2026-11-26T10:30:00.123Z",
        "day": "2026-11-26",
        "clock": "12:30:15",
        "big": "12345678901234567890.000000001",
        "id": "a8098c1a-f86e-11da-bd1a-00112444be1e",
        "raw": "AP8Q",
        "span": "P1DT02H00M00S",
        "range": {"lower": 1, "upper": 5, "bounds": "[)"},
        "numbers": [1, 2, 3],
        "doc": {"a": [1, 2]},
        "nothing": None,
        "yes": True,
        "ratio": 1.5,
    }
