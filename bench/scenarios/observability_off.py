"""`POST /actions/example/bar` with metrics and tracing off against the same call served by the
code before they existed (the commit `OBSERVABILITY_BASE`, default main's merge base before
issue #15's application half: `git archive` of it in a temporary directory): what the switched-off
controls cost (issue #15's target for tracing off: within 2%, a ratio >= 0.98)."""

import atexit
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from bench.harness import PROJECT_DIR, Scenario, Target
from bench.scenarios.actions import LUA

# The last commit of main before metrics and traces (merge it in from the lane: the base moves).
BASE = os.environ.get("OBSERVABILITY_BASE", "f0edf01")


def checkout(commit: str) -> Path:
    """The project's files at `commit`, in a temporary directory removed at exit."""
    directory = Path(tempfile.mkdtemp(prefix="dbapi-bench-base-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    archive = subprocess.run(
        ["git", "archive", commit], cwd=PROJECT_DIR, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    return directory


def prepare(scenario: Scenario) -> None:
    from apps.actions.clients import create_api_client
    from apps.actions.models import ApiClient

    ApiClient.objects.filter(name="bench-off").delete()
    _, key = create_api_client(name="bench-off")
    scenario.django.lua = scenario.baseline.lua = LUA % {"key": key}
    scenario.baseline.cwd = checkout(BASE)


SCENARIO = Scenario(
    name="obs-off",
    description=f"bar with metrics and tracing off vs bar before they existed ({BASE})",
    django=Target(app="config.wsgi", path="/actions/example/bar", env={"METRICS_ENABLED": "false"}),
    baseline=Target(app="config.wsgi", path="/actions/example/bar"),
    target_ratio=0.98,
    prepare=prepare,
)
