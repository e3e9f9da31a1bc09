"""`make bench`: run the load benchmarks and print each path's ratio to its same-work baseline.

    python -m bench.run                 # every scenario
    python -m bench.run hits actions    # some of them
    python -m bench.run --seconds 10 --rounds 5

Results are printed and written to bench/results/<time>.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import time
from pathlib import Path

from bench import scenarios
from bench.harness import PROJECT_DIR, Scenario, bench_env, compare


def all_scenarios() -> dict[str, Scenario]:
    found = {}
    for module in pkgutil.iter_modules(scenarios.__path__):
        scenario = importlib.import_module(f"bench.scenarios.{module.name}").SCENARIO
        found[scenario.name] = scenario
    return found


def setup_django() -> None:
    """Django on the benchmark database, migrated, for the scenarios' `prepare` hooks."""
    os.environ.update(bench_env())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(PROJECT_DIR))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="scenarios to run (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    available = all_scenarios()
    unknown = set(args.names) - set(available)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {sorted(available)}")
    chosen = [available[name] for name in (args.names or sorted(available))]

    setup_django()
    report = {}
    for scenario in chosen:
        print(f"{scenario.name}: {scenario.description}", flush=True)
        if scenario.prepare:
            scenario.prepare(scenario)
        report[scenario.name] = compare(
            scenario,
            workers=args.workers,
            connections=args.connections,
            seconds=args.seconds,
            rounds=args.rounds,
        )

    print(
        f"\n{'scenario':<12} {'django rps':>10} {'baseline':>10} {'ratio':>6} {'target':>6}"
        f" {'p50 ms':>15} {'p99 ms':>15} {'CPU us/req':>13}"
    )
    for name, result in report.items():
        django, baseline, ratio = result["django"], result["baseline"], result["ratio"]
        print(
            f"{name:<12} {django['requests_per_second']:10.0f} "
            f"{baseline['requests_per_second']:10.0f} {ratio['requests_per_second']:6.2f} "
            f"{result['target_ratio']:6.2f} "
            f"{django['p50_ms']:7.2f}/{baseline['p50_ms']:<7.2f} "
            f"{django['p99_ms']:7.2f}/{baseline['p99_ms']:<7.2f} "
            f"{django['cpu_us_per_request']:6.0f}/{baseline['cpu_us_per_request']:<6.0f}"
            + ("  ERRORS" if django["errors"] or baseline["errors"] else "")
        )
    results_dir = PROJECT_DIR / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    out = Path(results_dir, time.strftime("%Y%m%d-%H%M%S") + ".json")
    out.write_text(json.dumps({"args": vars(args), "results": report}, indent=2))
    print(f"\nwritten to {out.relative_to(PROJECT_DIR)}")
    failed = [n for n, r in report.items() if r["django"]["errors"] or r["baseline"]["errors"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
