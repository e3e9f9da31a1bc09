"""Baseline for the health scenario: the same answer, no framework."""

BODY = b'{"status": "ok"}'


def application(environ, start_response):
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]
    )
    return [BODY]
