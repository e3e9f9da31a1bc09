"""gunicorn settings for dbapi: `gunicorn -c config/gunicorn.conf.py` (the image's command).

Read from the environment, like the Django settings, and from the same `env/<ENVIRONMENT>/.env`
file when there is one. Options given on the command line (`--bind`, `--workers`, an app name)
win over this file, so the tests and `bench/` can run it on a loopback port of their own.
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
_env_file = BASE_DIR / "env" / os.environ.get("ENVIRONMENT", "local") / ".env"
if _env_file.is_file():
    # The settings would load it too, but only in the workers; gunicorn needs it now.
    environ.Env.read_env(_env_file)

wsgi_app = "config.wsgi"

# Loopback unless told otherwise; the image sets GUNICORN_BIND=0.0.0.0:8000.
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
# Prometheus' scrapes on a listener of their own, on the same interfaces (the image sets
# METRICS_PORT=9100): the app answers /metrics only there, so the Ingress and nginx, which
# reach the first one, cannot serve it, and a NetworkPolicy can admit only the monitoring
# namespace to this one.
if os.environ.get("METRICS_PORT"):
    bind.append(f"{bind[0].rpartition(':')[0]}:{os.environ.get('METRICS_PORT')}")

# Sync workers: a request is CPU-bound Python, so threads in one process would wait for each
# other, and nginx or the ingress buffers slow clients, which is what sync workers cannot afford
# to wait for. Not derived from the CPU count: in a container that is the host's, not the
# container's limit.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"

# A worker silent for `timeout` seconds is killed and replaced: it must be longer than any wait
# for the database a request may make (apps/core/database.py: DB_TIMEOUT, 10 s; a statement's
# allowance, e.g. an action's 30 s, + DB_TIMEOUT + 2 s for the probe), so that a database that
# stops answering costs a 503 rather than a worker. nginx's proxy_read_timeout (75 s) is longer.
# On SIGTERM (docker stop, a rolling update) workers finish their requests for up to
# `graceful_timeout` seconds; compose's stop_grace_period and Kubernetes'
# terminationGracePeriodSeconds are longer than that.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "25"))
# Idle seconds a kept-alive connection from the proxy stays open (threaded/async workers; the
# sync worker closes after each response). Above nginx's upstream keepalive_timeout default.
keepalive = 75

# Who may tell gunicorn the request came over HTTPS (X-Forwarded-Proto). "*" in compose and
# Kubernetes, where only nginx or the ingress controller can reach gunicorn's port.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Every line on stdout as one JSON object (apps/core/gunicorn_logger.py); Django's own lines
# go there too, in the same shape.
logger_class = "apps.core.gunicorn_logger.JsonLogger"
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()

# The heartbeat file on tmpfs: a disk-backed /tmp can block workers, and the container's root
# filesystem may be read-only.
_TMPFS = "/dev/shm"  # noqa: S108 (a directory for gunicorn's heartbeat, as its docs advise)
if os.path.isdir(_TMPFS):
    worker_tmp_dir = _TMPFS

# gunicornc's control socket would live in $HOME, shared by every gunicorn of the user (tests,
# benchmarks) and absent in the image; nothing here uses it.
control_socket_disable = True

# Prometheus metrics across workers (prometheus-client's multiprocess mode): every worker writes
# its numbers to files in PROMETHEUS_MULTIPROC_DIR, and a scrape of any worker reads them all.
# The directory must start empty with each server, or the counts of an earlier one would be
# added in: a new one is made when the variable is unset (tmpfs when there is one), an operator's
# is emptied of its .db files. A worker's live gauges go with it when it exits.
_metrics_dir_made = None


def on_starting(server):
    global _metrics_dir_made
    import tempfile

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".db"):  # only prometheus-client's files
                os.remove(os.path.join(directory, name))
    else:
        parent = _TMPFS if os.path.isdir(_TMPFS) else None
        directory = _metrics_dir_made = tempfile.mkdtemp(prefix="dbapi-metrics-", dir=parent)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _metrics_dir_made:
        import shutil

        shutil.rmtree(_metrics_dir_made, ignore_errors=True)
