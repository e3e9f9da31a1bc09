"""GET / (one atomic Redis script per hit, through the WSGI fast path) against a WSGI app doing
one redis-py INCR per request."""

from bench.harness import Scenario, Target

SCENARIO = Scenario(
    name="hits",
    description="GET / under gunicorn with Redis vs a WSGI app doing one INCR per request",
    django=Target(app="config.wsgi", path="/"),
    baseline=Target(app="bench.baselines.hits:application", path="/"),
    target_ratio=0.85,
)
