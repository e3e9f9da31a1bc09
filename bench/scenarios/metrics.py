"""`POST /actions/example/bar` with metrics on (METRICS_ENABLED, a METRICS_TOKEN, gunicorn's
multiprocess files) against the same call with them off: what counting costs (issue #15's
target: >= 0.97). Both sides are the project."""

from bench.harness import Scenario, Target
from bench.scenarios.actions import LUA


def prepare(scenario: Scenario) -> None:
    from apps.actions.clients import create_api_client
    from apps.actions.models import ApiClient

    ApiClient.objects.filter(name="bench-metrics").delete()
    _, key = create_api_client(name="bench-metrics")
    scenario.django.lua = scenario.baseline.lua = LUA % {"key": key}


SCENARIO = Scenario(
    name="metrics",
    description="bar with metrics on vs bar with metrics off",
    django=Target(
        app="config.wsgi",
        path="/actions/example/bar",
        env={"METRICS_ENABLED": "true", "METRICS_TOKEN": "bench-metrics-token"},
    ),
    baseline=Target(
        app="config.wsgi", path="/actions/example/bar", env={"METRICS_ENABLED": "false"}
    ),
    target_ratio=0.97,
    prepare=prepare,
)
