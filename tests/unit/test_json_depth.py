"""Bodies nested too deep are refused with 422 before Python's parser recurses into them."""

from __future__ import annotations

import json

import pytest
from flask import jsonify, request

from common.web import MAX_JSON_DEPTH, create_base_app, json_depth_exceeds


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("text,exceeds", [
    (nested(MAX_JSON_DEPTH), False),
    (nested(MAX_JSON_DEPTH + 1), True),
    ('{"a":' * 40 + "1" + "}" * 40, True),
    (json.dumps({"text": "[" * 500}), False),           # brackets inside a string do not nest
    (json.dumps({"text": '\\"[[[' * 100}), False),      # nor after an escaped quote
    ("[" * 2000, True),                                  # unbalanced is still too deep
    ("[]" * 2000, False),                                # many, side by side, is flat
])
def test_depth_counts_only_brackets_that_open_inside_each_other(text, exceeds):
    assert json_depth_exceeds(text) is exceeds


@pytest.fixture()
def client():
    app = create_base_app("depth-test")

    @app.post("/echo")
    def echo():
        return jsonify(request.get_json())

    return app.test_client()


def test_a_thousand_levels_of_nesting_are_a_422_naming_the_body_not_a_500(client):
    resp = client.post("/echo", data=nested(1000), content_type="application/json")
    assert resp.status_code == 422
    assert resp.content_type == "application/problem+json"
    assert resp.get_json()["errors"] == [
        {"field": "body", "message": f"nests arrays and objects more than {MAX_JSON_DEPTH} deep"}]


def test_ordinary_bodies_still_parse(client):
    resp = client.post("/echo", json={"a": [[1, 2], {"b": "[[["}]})
    assert resp.status_code == 200
    assert resp.get_json() == {"a": [[1, 2], {"b": "[[["}]}
