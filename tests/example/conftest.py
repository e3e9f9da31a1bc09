"""The example module is called as a service calls it: over HTTP with a real API key."""

from tests.actions.conftest import api_key, call, example_rows  # noqa: F401  (fixtures)
