"""`POST /actions/example/bar` (key, serializer, atomic upsert + select) vs raw psycopg2."""

from bench.harness import Scenario, Target

# Each request upserts one of 1,000 names, so the two workers rarely wait on the same row.
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"name": "user-%%d", "email": "u%%d@example.com"}',
                             counter %% 1000, counter)
  return wrk.format(nil, nil, nil, body)
end
"""


def prepare(scenario: Scenario) -> None:
    from apps.actions.clients import create_api_client
    from apps.actions.models import ApiClient

    ApiClient.objects.filter(name="bench").delete()
    _, key = create_api_client(name="bench")
    scenario.django.lua = scenario.baseline.lua = LUA % {"key": key}


SCENARIO = Scenario(
    name="actions",
    description="POST /actions/example/bar vs raw psycopg2 doing the same upsert + select",
    django=Target(app="config.wsgi", path="/actions/example/bar"),
    baseline=Target(app="bench.baselines.actions:application", path="/"),
    target_ratio=0.75,
    prepare=prepare,
)
