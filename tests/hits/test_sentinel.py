"""With Redis Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_MASTER) the application follows a
failover: the master is killed, the sentinels promote the replica, and hits (the Lua scripts),
verified API keys and rate limits go on in the new master, with no 5xx once it is promoted and
no hit counted after it lost."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from apps.actions.clients import create_api_client
from apps.hits.models import HitCounter
from tests.sentinel import MASTER_NAME, redis_sentinels
from tests.servers import PROJECT_DIR, gunicorn, project_env, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def request(url: str, *, key: str | None = None) -> tuple[int, bytes]:
    if key is None:
        sent = urllib.request.Request(url)
    else:
        sent = urllib.request.Request(
            url,
            data=json.dumps({"name": "ana"}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
    try:
        with urllib.request.urlopen(sent, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def hit(url: str) -> int:
    status, body = request(f"{url}/")
    assert status == 200
    return int(body.decode().removeprefix("Hits: "))


def test_hits_keys_and_rate_limits_follow_a_failover(tmp_path):
    _, key = create_api_client(name="sentinel", rate="1000/min")
    with redis_sentinels(tmp_path) as setup:
        env = project_env(
            REDIS_URL="redis://127.0.0.1:1/0",  # its host unused: the sentinels name the master
            REDIS_SENTINELS=setup.sentinels,
            REDIS_SENTINEL_MASTER=MASTER_NAME,
            CACHE_RETRY_AFTER="0.2",
        )
        with gunicorn(env=env) as url:
            before = [hit(url) for _ in range(5)]
            assert before == [1, 2, 3, 4, 5]
            assert request(f"{url}/actions/example/bar", key=key)[0] == 200
            master = setup.client(setup.master_port)
            assert master.keys("*hits:root:pending")
            assert master.keys("*apiclient:*")
            assert master.keys("*ratelimit:*")

            setup.kill_master()
            wait_until(lambda: setup.current_master() == setup.replica_port, timeout=30)

            # Once the replica is promoted and the process has tried Redis again, hits are
            # counted in the new master (while it was away, in the database).
            promoted = setup.client(setup.replica_port)

            def pending() -> int:
                found = promoted.keys("*hits:root:pending")
                return int(promoted.get(found[0]) or 0) if found else 0

            def counting_in_the_new_master() -> bool:
                before = pending()
                hit(url)
                return pending() == before + 1

            wait_until(counting_in_the_new_master, timeout=20, interval=0.1)
            statuses = []
            shown = []
            for _ in range(20):
                shown.append(hit(url))
                statuses.append(request(f"{url}/actions/example/bar", key=key)[0])
            assert statuses == [200] * 20
            assert shown == list(range(shown[0], shown[0] + 20))  # one Redis, every hit counted
            assert promoted.keys("*apiclient:*")  # keys verified again, cached in the new master
            assert promoted.keys("*ratelimit:*")  # calls counted against the rate there

            flushed = subprocess.run(
                [sys.executable, "manage.py", "flush_hits"],
                cwd=PROJECT_DIR,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert flushed.returncode == 0, flushed.stdout + flushed.stderr
            # Every hit counted since the failover is in the database now.
            assert HitCounter.objects.get(name="root").total >= shown[-1]
            assert hit(url) == HitCounter.objects.get(name="root").total + 1
