"""Property-based conformance of the public API to its own OpenAPI document.

Schemathesis reads the document the gateway serves through nginx, generates requests
(valid and invalid) for every operation, and checks every answer: no 5xx, a declared
status, a declared content type, a body matching the declared schema.
"""

from __future__ import annotations

import uuid

import requests
import schemathesis
from hypothesis import HealthCheck, settings

from common import config
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks

API = config.env("MURMUR_E2E_URL", f"http://127.0.0.1:{config.profile().http_port}/api/v1")
ROOT = API.rsplit("/api/v1", 1)[0]
MAX_EXAMPLES = config.env_int("MURMUR_E2E_SCHEMA_EXAMPLES", 50)

schema = schemathesis.openapi.from_url(f"{API}/openapi.json", wait_for_schema=60.0)
schema.config.generation.update(max_examples=MAX_EXAMPLES)

_token: dict[str, str] = {}


def bearer() -> dict[str, str]:
    """An Authorization header of a real account, made once per run."""
    if not _token:
        name = f"st_{uuid.uuid4().hex[:12]}"
        password = "schemathesis-password"
        created = requests.post(f"{API}/users", json={"username": name, "password": password},
                                timeout=10)
        assert created.status_code == 201, created.text
        session = requests.post(f"{API}/sessions", json={"username": name, "password": password},
                                timeout=10)
        assert session.status_code == 200, session.text
        _token["Authorization"] = f"Bearer {session.json()['access_token']}"
    return dict(_token)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_the_document(case) -> None:
    # A real token for protected operations, unless this case deliberately breaks the
    # headers (then the API must refuse it, and a token added here would hide that).
    header_mode = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
    negative_headers = header_mode is not None and header_mode.mode == GenerationMode.NEGATIVE
    secured = case.operation.definition.raw.get("security")
    headers = bearer() if secured and not negative_headers else None
    # Every check except "schema-valid data must be accepted": validity of some inputs is
    # not a schema matter (an opaque cursor the server never issued, a missing If-Match
    # answered 428), and those are rightly refused.
    case.call_and_validate(base_url=ROOT, headers=headers,
                           excluded_checks=[checks.positive_data_acceptance])
