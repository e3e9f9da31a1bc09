"""The OpenAPI document and the API agree: Schemathesis generates requests from the document for
every operation, valid and invalid, and runs every check it has on the answers (#12.7).

In-process (the WSGI application the servers run), bounded: a fixed number of examples per
operation, derandomised, so that a run is repeatable and quick.
"""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from apps.accounts.tokens import issue_user_token
from apps.actions.clients import create_api_client
from apps.actions.idempotency import KEY
from apps.core.upstreams import close_upstreams
from apps.twofactor.models import SealedTOTPDevice
from apps.twofactor.verification import mark_token_verified
from tests.core.test_upstreams import upstream_config
from tests.http_upstream import http_upstream
from tests.twofactor.conftest import make_person

# Ten examples for each of some forty operations: half a minute together, handed out early.
pytestmark = pytest.mark.slow

EXAMPLES = 10
# Action modules the test suite registers for itself: not part of the API.
TEST_MODULES = r"^/actions/(testing|rpc_testing|elsewhere|twice)/"
# Operations that refuse well-formed input by contract: a passkey's answer that does not verify
# (a wrong signature, a reused challenge…) is a 400 problem (#18), whatever its shape.
REFUSE_WELL_FORMED = {"/api/v1/passkeys/authenticate", "/api/v1/passkeys/register"}

schemathesis.checks.load_all_checks()
CHECKS = schemathesis.checks.CHECKS
_unique = itertools.count()


def _application():
    from config.wsgi import application

    return application


# 502, 503 and 504 are answers the document gives (an upstream failed, the database did not
# answer, a statement ran past its timeout: example/wait does on purpose); a 500 is a bug.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "502", "503", "504"]}
        }
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/", _application(), config=CONFIG).exclude(
    path_regex=TEST_MODULES
)


@pytest.fixture
def credentials(transactional_db) -> dict[str, str]:
    """A key for the actions, and a person's token verified by their authenticator."""
    _, key = create_api_client(name="contract")
    person = make_person("contract")
    SealedTOTPDevice.objects.create(user=person, name="phone", confirmed=True)
    issued = issue_user_token(user=person)
    mark_token_verified(token=issued.token, now=timezone.now())
    return {"actions": key, "people": issued.key}


@pytest.fixture
def flask(settings):
    """The upstream `example/hello` calls, answering."""
    with http_upstream() as server:
        settings.UPSTREAMS = {"flask": upstream_config(server.url)}
        yield
        close_upstreams()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_as_its_document_says(case, credentials, flask):
    headers = {}
    if case.operation.definition.raw.get("security") != []:  # [] : no credential needed
        key = credentials["actions"] if case.path.startswith("/actions/") else credentials["people"]
        headers["Authorization"] = f"Bearer {key}"
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and KEY.fullmatch(key):
        # Each example is a call of its own: one key used for two bodies is a 422, by design.
        case.headers["Idempotency-Key"] = f"{key[:240]}-{next(_unique)}"
    checks = CHECKS.get_all()
    if case.path in REFUSE_WELL_FORMED:
        checks = [c for c in checks if c.__name__ != "positive_data_acceptance"]
    case.call_and_validate(headers=headers, checks=checks)
