"""The committed API reference is the one the gateway's OpenAPI document generates, and the
document's limits are the shared rules' (common.rules), not copies of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import rules
from gateway.entrypoints.schemas import (
    Credentials, IdempotencyHeader, NewTweet, NewUser, ProfileChanges, TweetPath, UserPath,
)

REPO = Path(__file__).resolve().parents[2]


def test_the_committed_api_reference_matches_the_served_document():
    generated = subprocess.run([sys.executable, "-m", "gateway.entrypoints.apidoc"], cwd=REPO,
                               env={"PYTHONPATH": str(REPO / "services"), "PATH": "/usr/bin:/bin"},
                               capture_output=True, text=True, check=True).stdout
    committed = (REPO / "docs/api-reference.md").read_text()
    assert generated == committed, "run `make api-docs` and commit docs/api-reference.md"


def properties(model) -> dict:
    schema = model.model_json_schema(by_alias=True)
    return {name: {**prop, **next((s for s in prop.get("anyOf", []) if "type" in s
                                   and s["type"] != "null"), {})}
            for name, prop in schema["properties"].items()}


def test_the_request_models_take_their_limits_from_the_shared_rules():
    user = properties(NewUser)
    assert user["username"]["pattern"] == rules.USERNAME_PATTERN
    assert (user["password"]["minLength"], user["password"]["maxLength"]) == (
        rules.PASSWORD_MIN, rules.PASSWORD_MAX)
    assert user["display_name"]["maxLength"] == rules.DISPLAY_NAME_MAX
    assert properties(UserPath)["username"]["pattern"] == rules.USERNAME_PATTERN
    credentials = properties(Credentials)
    assert credentials["username"]["maxLength"] == rules.USERNAME_MAX
    assert credentials["password"]["maxLength"] == rules.PASSWORD_MAX
    changes = properties(ProfileChanges)
    assert changes["display_name"]["maxLength"] == rules.DISPLAY_NAME_MAX
    assert changes["bio"]["maxLength"] == rules.BIO_MAX
    assert properties(NewTweet)["text"]["maxLength"] == rules.TWEET_MAX
    assert properties(TweetPath)["id"]["maximum"] == rules.MAX_ID
    assert properties(IdempotencyHeader)["Idempotency-Key"]["maxLength"] == \
        rules.IDEMPOTENCY_KEY_MAX
