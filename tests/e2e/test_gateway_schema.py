"""Property-based conformance of the public API to its own OpenAPI document.

Schemathesis reads the document the gateway serves through nginx, generates requests
(valid and invalid, strings with NUL and control characters among them) for every
operation, and checks every answer: no 5xx, a declared status, a declared content type,
the declared headers, a body matching the declared schema, and invalid data refused.
`make api-fuzz` runs every check, the stateful phase too, from the command line.
"""

from __future__ import annotations

import uuid

import schemathesis
from hypothesis import HealthCheck, settings

from common import config
from e2e._addresses import fresh_address, session_from
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks

API = config.env("MURMUR_E2E_URL", f"http://127.0.0.1:{config.profile().http_port}/api/v1")
ROOT = API.rsplit("/api/v1", 1)[0]
MAX_EXAMPLES = config.env_int("MURMUR_E2E_SCHEMA_EXAMPLES", 50)

schema = schemathesis.openapi.from_url(f"{API}/openapi.json", wait_for_schema=60.0)
# NUL and other control characters are what hostile input is made of: keep them in.
schema.config.generation.update(max_examples=MAX_EXAMPLES, allow_x00=True, codec="utf-8")

# Every check but "schema-valid data must be accepted": validity of some inputs is not a
# schema matter (an opaque cursor the server never issued, an entity tag the profile no
# longer has, an Idempotency-Key used for another body), and those are rightly refused.
CHECKS = [not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_headers_conformance,
          checks.response_schema_conformance, checks.negative_data_rejection]

# Its own loopback address: the run's failed sign-ins count against the edge's and users'
# per-address limits apart from the other tests', and apart from the sign-in of its
# account, which they would otherwise throttle.
_http = session_from(fresh_address())
_token: dict[str, str] = {}


def bearer() -> dict[str, str]:
    """An Authorization header of a real account, made once per run."""
    if not _token:
        name = f"st_{uuid.uuid4().hex[:12]}"
        password = "schemathesis-password"
        with session_from(fresh_address()) as http:
            created = http.post(f"{API}/users", json={"username": name, "password": password},
                                timeout=10)
            assert created.status_code == 201, created.text
            session = http.post(f"{API}/sessions",
                                json={"username": name, "password": password}, timeout=10)
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
    case.call_and_validate(base_url=ROOT, session=_http, headers=headers, checks=CHECKS)
