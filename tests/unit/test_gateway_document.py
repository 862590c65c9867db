"""The OpenAPI document says what the API answers: the edge's statuses on every operation,
the headers that come with a problem, links between operations that hold, parameters
that are never null."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common.client import Rejected
from gateway.adapters.tokens import TokenVerifier
from gateway.config import DownstreamConfig, GatewayConfig
from gateway.entrypoints.app import create_app
from unit._gateway_tokens import PUBLIC

REPO = Path(__file__).resolve().parents[2]
METHODS = ("get", "post", "put", "patch", "delete")
# The edge's own answers that no operation meets: a path outside the API (404), a method
# no route of the API has, such as TRACE (405).
NOT_OF_AN_OPERATION = {404, 405}


class RefusingUsers:
    """A users peer that refuses every sign-in, as users does a wrong password."""

    def open_session(self, credentials, client):
        raise Rejected("users", 401, {"type": "about:blank", "title": "Unauthorized",
                                      "status": 401, "detail": "Wrong username or password."}, {})


def app():
    down = DownstreamConfig("x", "http://127.0.0.1:9", 0.1, 0.1, 1)
    config = GatewayConfig(users=down, users_sign_in=down, timeline=down, jwt_public_keys=PUBLIC,
                           jwt_public_keys_file=Path("/nonexistent"), jwt_leeway=0,
                           retry_after=1)
    return create_app(config, users=RefusingUsers(), tokens=TokenVerifier(PUBLIC))


@pytest.fixture(scope="module")
def doc() -> dict:
    return app().test_client().get("/api/v1/openapi.json").get_json()


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def edge_statuses() -> set[int]:
    """The statuses nginx answers itself (`return <status> '<problem>'` in api.conf)."""
    conf = (REPO / "nginx/api.conf").read_text()
    return {int(s) for s in re.findall(r"^\s*return (\d{3}) '", conf, re.MULTILINE)}


def test_every_operation_declares_what_the_edge_answers_before_a_gateway_sees_it(doc):
    statuses = edge_statuses() - NOT_OF_AN_OPERATION
    assert {400, 408, 413, 414, 429, 503} <= statuses  # the file is read as it is meant
    for label, op in operations(doc):
        # Only a body can have the wrong media type.
        expected = statuses - ({415} if "requestBody" not in op else set())
        assert expected <= {int(s) for s in op["responses"]}, label


@pytest.mark.parametrize("status, header", [(401, "WWW-Authenticate"), (405, "Allow"),
                                            (429, "Retry-After"), (503, "Retry-After")])
def test_every_declared_problem_of_a_status_declares_the_header_it_comes_with(doc, status,
                                                                             header):
    declared = [op["responses"][str(status)] for _, op in operations(doc)
                if str(status) in op["responses"]]
    assert declared
    for response in declared:
        assert response["headers"][header]["required"] is True
        assert "application/problem+json" in response["content"]


def test_a_refused_sign_in_says_how_this_api_authenticates_as_every_401_does():
    resp = app().test_client().post("/api/v1/sessions",
                                    json={"username": "ada", "password": "wrong"})
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="murmur"'


def test_a_repeated_idempotency_key_can_be_a_409_and_the_document_says_so(doc):
    assert "409" in doc["paths"]["/api/v1/tweets"]["post"]["responses"]
    assert "409" in doc["paths"]["/api/v1/users"]["post"]["responses"]


def test_if_match_is_a_required_entity_tag_list_on_an_edit(doc):
    edit = doc["paths"]["/api/v1/users/me"]["patch"]
    (if_match,) = [p for p in edit["parameters"] if p["name"] == "If-Match"]
    assert if_match["required"] is True
    pattern = re.compile(if_match["schema"]["pattern"])
    assert all(pattern.search(v) for v in ('*', '"3"', 'W/"a", "b"'))
    assert not any(pattern.search(v) for v in ("3", "", '"a" "b"'))
    assert "428" in edit["responses"]


def test_no_parameter_is_declared_nullable(doc):
    for label, op in operations(doc):
        for parameter in op.get("parameters", []):
            schema = parameter["schema"]
            assert "anyOf" not in schema and schema.get("type") != "null", (label, parameter)


def test_every_link_names_an_operation_and_parameters_it_has(doc):
    by_id = {op["operationId"]: op for _, op in operations(doc)}
    links = [(label, status, link) for label, op in operations(doc)
             for status, response in op["responses"].items()
             for link in response.get("links", {}).values()]
    assert len(links) >= 20
    for label, status, link in links:
        target = by_id[link["operationId"]]
        names = {f"{p['in']}.{p['name']}" for p in target.get("parameters", [])}
        assert set(link["parameters"]) <= names, (label, status, link)
        required = {n for n in names if n.startswith("path.")}
        assert required <= set(link["parameters"]), (label, status, link)
