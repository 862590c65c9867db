"""`make api-fuzz` counts what the API answered: 5xx, and statuses the document does not
declare for the operation that answered them."""

from __future__ import annotations

from types import SimpleNamespace

import api_fuzz


def case(method: str, responses: dict, *, sent: str | None = None, case_id: str = "c1"):
    operation = SimpleNamespace(method=method, path="/api/v1/tweets",
                                definition=SimpleNamespace(raw={"responses": responses}))
    return SimpleNamespace(id=case_id, method=sent or method, operation=operation)


def test_a_status_is_documented_exactly_by_its_range_or_by_a_default():
    assert api_fuzz.documented({"201": {}, "422": {}}, 422)
    assert api_fuzz.documented({"4XX": {}}, 409)
    assert api_fuzz.documented({"default": {}}, 500)
    assert not api_fuzz.documented({"201": {}, "422": {}}, 409)


def test_the_tally_counts_server_errors_and_undocumented_statuses_per_operation():
    tally = api_fuzz.Tally()
    tally.record(case("post", {"201": {}, "503": {}}), 201)
    tally.record(case("post", {"201": {}, "503": {}}, case_id="c2"), 409)
    tally.record(case("post", {"201": {}, "503": {}}, case_id="c2"), 409)
    tally.record(case("post", {"201": {}, "503": {}}, case_id="c3"), 500)
    assert len(tally.cases) == 3 and tally.requests == 4
    assert tally.undocumented == {("POST /api/v1/tweets", 409): 2, ("POST /api/v1/tweets", 500): 1}
    assert tally.server_errors == {("POST /api/v1/tweets", 500): 1}
    assert "undocumented statuses: 3 (2 distinct)" in tally.report()


def test_a_method_the_operation_does_not_have_is_not_held_to_its_responses():
    tally = api_fuzz.Tally()
    tally.record(case("post", {"201": {}}, sent="TRACE"), 405)
    assert not tally.undocumented
