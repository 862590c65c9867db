"""Entity tags and the If-Match / If-None-Match preconditions, as RFC 9110 §13 has them."""

from __future__ import annotations

import pytest

from common import preconditions
from common.preconditions import NOT_MODIFIED, PRECONDITION_FAILED, evaluate_read


@pytest.mark.parametrize("value", [None, "", "  ", ",", " , ,", "1", "'1'", 'w/"1"',
                                   '"a" "b"', '"a", b', '"a\\"b"', '"un"closed'])
def test_an_absent_empty_or_malformed_header_lists_no_tags_and_is_ignored(value):
    assert preconditions.tags(value) is None
    assert evaluate_read(value, value, '"1"') is None


@pytest.mark.parametrize("value,strong", [
    ('"1"', ["1"]), ('"a", "1"', ["1", "a"]), (' "a" ,, W/"b" , "c" ', ["a", "c"]),
    ('W/"1"', [])])
def test_a_list_of_entity_tags_is_read_with_its_strong_tags(value, strong):
    listed = preconditions.tags(value)
    assert listed is not None and not listed.star_tag
    assert preconditions.strong_tags(listed) == strong


def test_tags_compare_as_strings_never_as_numbers():
    assert not preconditions.if_match(preconditions.tags('"01"'), '"1"')
    assert preconditions.if_none_match(preconditions.tags('"01"'), '"1"')
    assert evaluate_read('"01"', None, '"1"') == PRECONDITION_FAILED
    assert evaluate_read(None, '"01"', '"1"') is None


def test_if_match_holds_when_any_listed_tag_matches_strongly():
    assert preconditions.if_match(preconditions.tags('"x", "1"'), '"1"')
    assert not preconditions.if_match(preconditions.tags('W/"1"'), '"1"')
    assert not preconditions.if_match(preconditions.tags('"1"'), 'W/"1"')
    assert preconditions.if_match(preconditions.tags("*"), '"anything"')
    assert not preconditions.if_match(preconditions.tags("*"), None)


def test_if_none_match_fails_when_any_listed_tag_matches_weakly():
    assert not preconditions.if_none_match(preconditions.tags('"x", W/"1"'), '"1"')
    assert not preconditions.if_none_match(preconditions.tags('"1"'), 'W/"1"')
    assert not preconditions.if_none_match(preconditions.tags("*"), '"1"')
    assert preconditions.if_none_match(preconditions.tags('"2"'), '"1"')
    assert preconditions.if_none_match(preconditions.tags("*"), None)


def test_a_read_is_412_before_it_is_304():
    assert evaluate_read('"2"', '"1"', '"1"') == PRECONDITION_FAILED
    assert evaluate_read('"1"', '"1"', '"1"') == NOT_MODIFIED
    assert evaluate_read(None, '"1"', '"1"') == NOT_MODIFIED
    assert evaluate_read("*", '"2"', '"1"') is None


def test_a_428_says_whether_if_match_was_missing_or_unusable():
    assert "Send If-Match" in preconditions.missing_detail(None)
    assert "lists no entity tag" in preconditions.missing_detail("")
