"""gunicorn's logger for dbapi: its access and error lines as the same JSON as the project's logs.

Named in `config/gunicorn.conf.py` as `logger_class`. gunicorn imports it in the master before
Django is set up, so it uses only `apps.core.logging` (no models; settings are read only when a
worker writes an access line, by then set up).
"""

from __future__ import annotations

import sys
from datetime import timedelta

from gunicorn.glogging import Logger

from .logging import JsonFormatter, RequestIdFilter, SecretPathFilter, mask_secret_paths
from .request_id import HEADER


class JsonLogger(Logger):
    """Write every gunicorn line to stdout as one JSON object.

    An access line carries `method`, `path`, `status`, `duration` (seconds) and the `request_id`
    the response went out with, so it joins the application's lines for the same request. The
    query string is left out: it is the one part of a URL that routinely carries secrets; a
    secret in the path (LOG_MASKED_PATH_PREFIXES) is masked.
    `access_log_format` is not used.
    """

    def _set_handler(self, log, output, fmt, stream=None):
        # gunicorn sends the error log to stderr; one stream, stdout, is what filebeat reads.
        super()._set_handler(log, output, JsonFormatter(), stream=sys.stdout)
        handler = self._get_gunicorn_handler(log)
        if handler is not None:
            handler.addFilter(RequestIdFilter())
            handler.addFilter(SecretPathFilter())  # "Error handling request <uri>" quotes a path

    def access(self, resp, req, environ: dict, request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        method = environ.get("REQUEST_METHOD")
        path = mask_secret_paths(environ.get("PATH_INFO") or "")
        status = _status_code(resp.status)
        fields = {
            "method": method,
            "path": path,
            "status": status,
            "duration": round(request_time.total_seconds(), 6),
            "request_id": _response_header(resp, HEADER.lower())
            or environ.get("HTTP_X_REQUEST_ID"),
            "bytes": getattr(resp, "sent", None),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "protocol": environ.get("SERVER_PROTOCOL"),
        }
        try:
            self.access_log.info("%s %s %s", method, path, status, extra=fields)
        except Exception:
            self.exception("Could not write an access log line")


def _status_code(status) -> int | None:
    """gunicorn keeps the status line ("200 OK"); the log wants the number."""
    try:
        return int(str(status).split(None, 1)[0])
    except (ValueError, IndexError):
        return None


def _response_header(resp, name: str) -> str | None:
    """The id the response carries: set by RequestIdMiddleware from the client's or a new one."""
    for key, value in getattr(resp, "headers", ()) or ():
        if key.lower() == name:
            return value
    return None
