"""Profile one scenario's Django side under load with py-spy, and print where the time goes.

    python -m bench.profile actions [--seconds 10]

Starts the project under gunicorn with one worker, loads it with wrk as the benchmark does,
samples the worker with py-spy, and prints the functions that hold the most samples
(inclusive), with the project's own frames marked. The raw stacks are kept in bench/results/.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import threading
import time

from bench.harness import PROJECT_DIR, Server, bench_env, run_wrk
from bench.run import all_scenarios, setup_django


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    if not shutil.which("py-spy") and not (PROJECT_DIR / ".venv/bin/py-spy").exists():
        raise SystemExit("py-spy is not installed (pip install -r requirements/dev.txt)")
    py_spy = shutil.which("py-spy") or str(PROJECT_DIR / ".venv/bin/py-spy")

    scenario = all_scenarios()[args.name]
    setup_django()
    if scenario.prepare:
        scenario.prepare(scenario)
    server = Server(scenario.django.app, workers=1, env=bench_env(**scenario.env))
    out = PROJECT_DIR / "bench" / "results" / f"profile-{args.name}-{time.strftime('%H%M%S')}.txt"
    out.parent.mkdir(exist_ok=True)
    try:
        server.wait("/health/live")
        url = server.url + scenario.django.path
        run_wrk(url, scenario.django.wrk_script(), seconds=2, connections=2)  # warm up
        [worker] = server.worker_pids()
        load = threading.Thread(
            target=run_wrk,
            args=(url, scenario.django.wrk_script()),
            kwargs={"seconds": args.seconds + 2, "connections": 2},
        )
        load.start()
        time.sleep(0.5)
        subprocess.run(
            [
                py_spy,
                "record",
                "--pid",
                str(worker),
                "--duration",
                str(args.seconds),
                "--rate",
                "500",
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
            ],
            check=True,
            capture_output=True,
        )
        load.join()
    finally:
        server.stop()

    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += samples
        own[frames[-1]] += samples
    for title, counter in [("inclusive", inclusive), ("own (self)", own)]:
        print(f"\n{total} samples; {title} share of the busiest functions:")
        for frame, samples in counter.most_common(args.top):
            if samples * 100 < total * 0.5:
                break
            mark = "*" if frame.endswith(".py)") and "(apps/" in frame else " "
            print(f"{mark} {100 * samples / total:5.1f}%  {frame[:150]}")
    print(f"raw stacks: {out.relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
