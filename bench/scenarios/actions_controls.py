"""`POST /actions/example/bar` with a rate limit and an Idempotency-Key on every call, against the
same call without them: what the two controls cost (issue #14's target: >= 0.9). Both sides are
the project; the "baseline" is bar as a client with no rate sends it, without a key."""

from bench.harness import Scenario, Target

HEADERS = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
"""
REQUEST = """
local counter = 0
local run = tostring(os.time()) .. "-" .. tostring(math.random(1000000000))
request = function()
  counter = counter + 1
  local body = string.format('{"name": "user-%%d", "email": "u%%d@example.com"}',
                             counter %% 1000, counter)
  %(extra)s
  return wrk.format(nil, nil, nil, body)
end
"""
# A key per call, never repeated across rounds: every call runs, and keeps its answer.
WITH_KEY = 'wrk.headers["Idempotency-Key"] = run .. "-" .. counter'


def prepare(scenario: Scenario) -> None:
    from apps.actions.clients import create_api_client
    from apps.actions.models import ApiClient

    ApiClient.objects.filter(name__in=["bench-controls", "bench-plain"]).delete()
    # A rate far above what the machine serves: every call is counted, none refused.
    _, limited = create_api_client(name="bench-controls", rate="1000000/s")
    _, plain = create_api_client(name="bench-plain")
    scenario.django.lua = HEADERS % {"key": limited} + REQUEST % {"extra": WITH_KEY}
    scenario.baseline.lua = HEADERS % {"key": plain} + REQUEST % {"extra": ""}


SCENARIO = Scenario(
    name="controls",
    description="bar with a rate limit and an Idempotency-Key per call vs bar without them",
    django=Target(app="config.wsgi", path="/actions/example/bar"),
    baseline=Target(app="config.wsgi", path="/actions/example/bar"),
    target_ratio=0.9,
    prepare=prepare,
)
