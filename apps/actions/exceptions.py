"""What can go wrong with an action call, each error with its HTTP status.

The HTTP view turns them into problem+json (apps.core.problems); the gRPC server maps the same
statuses to gRPC codes. Action code may raise any of them, or DRF's ValidationError for a
business rule, and the call is answered accordingly with the transaction rolled back.
"""

from __future__ import annotations

from apps.accounts.credentials import BEARER_CHALLENGE, INVALID_TOKEN_CHALLENGE
from apps.core.problems import Problem


class MissingApiKey(Problem):
    status_code = 401
    default_detail = "Send an API key: Authorization: Bearer <key>."
    headers = {"WWW-Authenticate": BEARER_CHALLENGE}


class InvalidApiKey(Problem):
    status_code = 401
    default_detail = "The API key is unknown or has been revoked."
    headers = {"WWW-Authenticate": INVALID_TOKEN_CHALLENGE}


class ModuleForbidden(Problem):
    status_code = 403
    default_detail = "This API key may not call this module."


class ActionNotFound(Problem):
    status_code = 404
    default_detail = "There is no such action."


class MethodNotAllowed(Problem):
    status_code = 405
    default_detail = "Actions are called with POST."
    headers = {"Allow": "POST"}


class UnsupportedMediaType(Problem):
    status_code = 415
    default_detail = "Send the input as JSON: Content-Type: application/json."


class MalformedInput(Problem):
    status_code = 400
    default_detail = "The body is not valid JSON."


class ActionConflict(Problem):
    status_code = 409
    default_detail = "The change conflicts with existing data; nothing was changed."


class StatementTimeout(Problem):
    """PostgreSQL cancelled a statement that ran past the action's timeout (or the caller's
    deadline): the transaction was rolled back."""

    status_code = 504
    default_detail = "The action ran past its time limit; nothing was changed."
    type_slug = "statement-timeout"


class BatchSpansDatabases(Problem):
    status_code = 400
    default_detail = "A batch is atomic on one database only."
    type_slug = "batch-spans-databases"
