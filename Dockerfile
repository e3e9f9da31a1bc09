# syntax=docker/dockerfile:1
# dbapi's image: one image for every process (web, migrate, flush_hits, grpc); compose.yaml and
# deploy/k8s/ choose the command. Build: docker build -t dbapi:local .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: the dependencies in a virtualenv, so the runtime stage copies one directory ------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
COPY requirements/ /tmp/requirements/
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements/production.txt

# --- messages: the translation catalogues compiled (locale/*/LC_MESSAGES/*.mo) ------------------
# GNU gettext's msgfmt, which compilemessages runs, is needed only here: the runtime image takes
# the compiled files and not the package. Default (local) settings: no key is read to compile.
FROM builder AS messages

RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext=0.21-12 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN /opt/venv/bin/python manage.py compilemessages --verbosity 0

# --- runtime -----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# ENVIRONMENT=production: without it the settings would fall back to `local` (DEBUG on, a
# published SECRET_KEY). GUNICORN_BIND: listen on the container's interfaces, not loopback;
# METRICS_PORT: gunicorn's second listener, the only one answering /metrics (README).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    GUNICORN_BIND=0.0.0.0:8000 \
    METRICS_PORT=9100

# A named user for the numeric id, so tools that look the id up find it; no home, no shell.
RUN groupadd --gid 10001 dbapi \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin dbapi

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY . .
COPY --from=messages /src/locale/ /app/locale/

# Static files are collected (and compressed, with a manifest) into the image: whitenoise serves
# them. collectstatic only loads the settings, which refuse to start without a SECRET_KEY and
# OTP_ENCRYPTION_KEYS outside `local`; these throwaway values exist only for this command and are
# not kept in any layer's environment. The code and static files stay owned by root: the app cannot rewrite them.
RUN SECRET_KEY=collectstatic-at-build-time-only-not-a-secret-0123456789abcdef \
    OTP_ENCRYPTION_KEYS=collectstatic0at0build0time0only0not0a0key0= \
    python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q apps config protos

USER 10001:10001
EXPOSE 8000 9100 50051

# Process up and answering (not the database: a slow database must not get web restarted).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "deploy/healthcheck.py", "http"]

CMD ["gunicorn", "--config", "config/gunicorn.conf.py"]
