"""Hostile and careless input through nginx: each gets a 4xx naming the problem at the
first layer that can tell, nothing is stored, and a lost answer can be retried safely."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from e2e._addresses import fresh_address, session_from
from e2e.conftest import PASSWORD

HOSTILE_TEXT = {
    "NUL": "a\x00b",
    "control": "a\x1b[2Jb",
    "bidi override": "evil\u202etxt.exe",
    "zero-width only": "\u200b\u200b",
    "BOM only": "\ufeff",
    "noncharacter": "a\uffffb",
}
NESTED = "[" * 1000 + "]" * 1000


@pytest.mark.parametrize("text", HOSTILE_TEXT.values(), ids=HOSTILE_TEXT.keys())
def test_unacceptable_text_is_a_422_naming_the_field_in_every_text_field(api, problem, text):
    member = api.sign_up("hx")
    name = api.unique_name("hx")
    signup = api.post("/users", json={"username": name, "password": PASSWORD,
                                      "display_name": text})
    assert problem(signup, 422)["errors"][0]["field"] == "display_name"
    assert api.get(f"/users/{name}").status_code == 404  # nothing was made
    for field in ("display_name", "bio"):
        edit = api.patch("/users/me", json={field: text},
                         headers={**member.auth, "If-Match": "*"})
        assert problem(edit, 422)["errors"][0]["field"] == field
    post = api.post("/tweets", json={"text": text}, headers=member.auth)
    assert problem(post, 422)["errors"][0]["field"] == "text"
    assert api.get(f"/users/{member.username}/tweets").json()["items"] == []


def test_lines_and_any_script_are_ordinary_text(api):
    member = api.sign_up("hx")
    text = "first line\nsecond line \u0645\u0631\u062d\u0628\u0627 \U0001f469\u200d\U0001f4bb"
    assert api.tweet(member, text)["text"] == text


@pytest.mark.parametrize("method,path,needs_token", [
    ("POST", "/users", False), ("POST", "/sessions", False),
    ("POST", "/tweets", True), ("PATCH", "/users/me", True)])
def test_deeply_nested_json_is_a_422_on_every_json_body(api, problem, method, path, needs_token):
    member = api.sign_up("hx") if needs_token else None
    headers = {"Content-Type": "application/json", **(member.auth if member else {}),
               "If-Match": "*"}
    body = problem(api.request(method, path, data=NESTED, headers=headers), 422)
    assert any(e["field"] == "body" for e in body["errors"]), body


def test_a_sign_up_retried_with_its_key_gets_the_same_account(api, problem):
    name, key = api.unique_name("hx"), str(uuid.uuid4())
    body = {"username": name, "password": PASSWORD}
    first = api.post("/users", json=body, headers={"Idempotency-Key": key})
    again = api.post("/users", json=body, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json() == first.json()
    problem(api.post("/users", json=body), 409)  # without the key it is a second sign-up
    other = api.post("/users", json={**body, "username": api.unique_name("hx")},
                     headers={"Idempotency-Key": key})
    assert problem(other, 422)["errors"][0]["field"] == "Idempotency-Key"


def test_concurrent_repeats_of_one_keyed_sign_up_all_get_the_one_account(api):
    name, key = api.unique_name("hx"), str(uuid.uuid4())

    def attempt(_: int):
        with session_from(fresh_address()) as http:  # each from its own address
            return http.post(f"{api.base}/users", json={"username": name, "password": PASSWORD},
                             headers={"Idempotency-Key": key}, timeout=15)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(attempt, range(8)))
    statuses = [a.status_code for a in answers]
    # 201 for each, or a deliberate 503 (hashing slots full) that a repeat will resolve.
    assert set(statuses) <= {201, 503}, [a.text for a in answers]
    ids = {a.json()["id"] for a in answers if a.status_code == 201}
    assert len(ids) == 1, ids
    retried = api.post("/users", json={"username": name, "password": PASSWORD},
                       headers={"Idempotency-Key": key})
    assert retried.status_code == 201 and retried.json()["id"] in ids


def test_an_account_is_throttled_after_five_failed_sign_ins(api, problem):
    member = api.sign_up("hx")
    wrong = {"username": member.username, "password": "not the password"}
    with session_from(fresh_address()) as http:
        statuses = [http.post(f"{api.base}/sessions", json=wrong, timeout=10).status_code
                    for _ in range(5)]
    assert statuses == [401] * 5
    # From another address, even with the right password: the account is throttled.
    with session_from(fresh_address()) as http:
        refused = http.post(f"{api.base}/sessions", timeout=10,
                            json={"username": member.username, "password": PASSWORD})
    problem(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_an_address_is_throttled_after_twenty_failed_sign_ins_whatever_the_accounts(api, problem):
    member = api.sign_up("hx")
    with session_from(fresh_address()) as guesser:
        statuses = [guesser.post(f"{api.base}/sessions", timeout=10, json={
            "username": api.unique_name("nobody"), "password": "guess"}).status_code
            for _ in range(20)]
        assert statuses == [401] * 20
        refused = guesser.post(f"{api.base}/sessions", timeout=10,
                               json={"username": member.username, "password": PASSWORD})
        problem(refused, 429)
    with session_from(fresh_address()) as honest:  # another address signs in as before
        assert honest.post(f"{api.base}/sessions", timeout=10, json={
            "username": member.username, "password": PASSWORD}).status_code == 200
