"""The metadata keys the server and its clients agree on. Needs no Django."""

from apps.core.request_id import METADATA_KEY as REQUEST_ID_KEY

# A failed call's problem+json document, as the HTTP API answers it, in UTF-8 JSON (the keys of
# binary metadata end in -bin).
PROBLEM_KEY = "problem-bin"

__all__ = ["PROBLEM_KEY", "REQUEST_ID_KEY"]
