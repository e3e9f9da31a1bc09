"""The OpenAPI document lists every action with its input, output and errors."""

import io

import pytest
import yaml
from django.core.management import call_command

ERRORS = {
    *("400", "401", "403", "404", "405", "409", "413", "415", "422", "429"),
    *("500", "502", "503", "504"),
}


@pytest.fixture(scope="module")
def schema():
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


def test_the_schema_validates_and_lists_foo_and_bar(schema):
    assert "/actions/example/foo" in schema["paths"]
    assert "/actions/example/bar" in schema["paths"]
    assert "/actions/example/" in schema["paths"]


def test_each_action_has_its_serializer_as_body_and_every_error(schema):
    bar = schema["paths"]["/actions/example/bar"]["post"]
    body = bar["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PersonRequest"}
    assert set(schema["components"]["schemas"]["PersonRequest"]["properties"]) == {"name", "email"}
    assert schema["components"]["schemas"]["PersonRequest"]["required"] == ["name"]
    assert set(bar["responses"]) == {"200", *ERRORS}
    assert bar["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/ExampleUser"},
    }
    problem = bar["responses"]["409"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem"}
    assert bar["security"] == [{"apiKey": []}]
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_the_schema_and_docs_are_served_without_a_cdn(client):
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs
    assert "cdn" not in docs.lower()
    assert "https://" not in docs


def test_the_batch_and_the_call_headers_are_documented(schema):
    batch = schema["paths"]["/actions/batch"]["post"]
    body = batch["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/BatchRequest"}
    assert set(batch["responses"]) == {"200", *ERRORS}
    bar = schema["paths"]["/actions/example/bar"]["post"]
    sent = {p["name"] for p in bar["parameters"] if p["in"] == "header"}
    assert {"Idempotency-Key", "Prefer"} <= sent
    answered = set(bar["responses"]["200"]["headers"])
    assert {
        "Idempotent-Replayed",
        "Preference-Applied",
        "RateLimit-Policy",
        "RateLimit",
    } == answered
    assert {"RateLimit-Policy", "RateLimit"} <= set(bar["responses"]["429"]["headers"])


def test_the_ratelimit_headers_are_documented_on_every_answer_after_the_count(schema):
    """A counted call's problems carry them too; 401, 403, 404 and 405 come before the count."""
    for path in ("/actions/example/bar", "/actions/batch"):
        responses = schema["paths"][path]["post"]["responses"]
        for status in ("200", "400", "409", "422", "429", "500", "503", "504"):
            assert {"RateLimit-Policy", "RateLimit"} <= set(responses[status]["headers"]), status
        for status in ("401", "403", "404", "405"):
            assert "RateLimit" not in responses[status].get("headers", {}), status
    described = schema["paths"]["/actions/example/bar"]["post"]["responses"]["400"]["headers"]
    assert "problems included" in described["RateLimit"]["description"]
