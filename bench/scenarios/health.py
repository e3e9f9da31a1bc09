"""The floor: what the full Django stack costs on a path that does no work at all."""

from bench.harness import Scenario, Target

SCENARIO = Scenario(
    name="health",
    description="GET /health/live vs a WSGI app answering the same JSON",
    django=Target(app="config.wsgi", path="/health/live"),
    baseline=Target(app="bench.baselines.health:application", path="/"),
    target_ratio=0.0,  # informative only: there is no work to compare
)
