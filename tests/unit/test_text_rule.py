"""One rule for the text Murmur accepts, applied alike by the gateway's request models and
by the users and timeline domains (common.rules)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from common import rules
from gateway.entrypoints.schemas import NewTweet, NewUser, ProfileChanges
from users.domain.model import profile_change_errors

REFUSED = {
    "NUL": "a\x00b",
    "bell": "a\x07b",
    "escape": "\x1b[31mred",
    "DEL": "a\x7fb",
    "C1 control": "a\x85b",
    "right-to-left override": "abc\u202egnp.exe",
    "left-to-right isolate": "a\u2066b",
    "unpaired surrogate": "a\ud800b",
    "noncharacter": "a\ufffeb",
    "plane noncharacter": "a\U0001fffeb",
    "zero-width space only": "\u200b",
    "byte order mark only": "\ufeff",
    "joiners only": "\u200d\u200c\u2060",
    "Hangul filler only": "\u3164",
    "braille blank only": "\u2800\u2800",
}
ACCEPTED = {
    "plain": "hello, world",
    "emoji sequence with a joiner": "\U0001f469\u200d\U0001f4bb ships",
    "combining accent": "cafe\u0301",
    "right-to-left script": "\u0645\u0631\u062d\u0628\u0627",
    "marks between scripts": "abc \u200f\u0645\u0631\u062d\u0628\u0627",
    "supplementary plane": "\U0001d54f marks the spot",
}


def gateway_refuses(model: type, field: str, value: str) -> str | None:
    """The gateway's message for `field`, or None when the model accepts the value."""
    body = {"username": "someone", "password": "long enough"} if model is NewUser else {}
    try:
        model.model_validate({**body, field: value})
    except ValidationError as exc:
        return next(e["msg"] for e in exc.errors() if e["loc"] == (field,))
    return None


def domain_refuses(field: str, value: str) -> str | None:
    """The domain's message for `field`, or None when it accepts the value."""
    if field == "text":
        try:
            rules.tweet_text(value)
        except rules.InvalidInput as exc:
            return exc.errors[0]["message"]
        return None
    errors = profile_change_errors({field: value})
    return errors[0]["message"] if errors else None


@pytest.mark.parametrize("value", REFUSED.values(), ids=REFUSED.keys())
@pytest.mark.parametrize("model,field", [(NewUser, "display_name"), (ProfileChanges, "display_name"),
                                          (ProfileChanges, "bio"), (NewTweet, "text")])
def test_every_text_field_refuses_the_same_characters_in_the_gateway_and_the_domain(model, field, value):
    message = gateway_refuses(model, field, value)
    assert message is not None
    if "\ud800" in value:  # pydantic refuses it first, in its own words
        assert domain_refuses(field, value) == "must not contain U+D800 (an unpaired surrogate)"
    else:
        assert domain_refuses(field, value) == message


@pytest.mark.parametrize("value", ACCEPTED.values(), ids=ACCEPTED.keys())
@pytest.mark.parametrize("model,field", [(NewUser, "display_name"), (ProfileChanges, "bio"),
                                          (NewTweet, "text")])
def test_ordinary_text_in_any_script_is_accepted_everywhere(model, field, value):
    assert gateway_refuses(model, field, value) is None
    assert domain_refuses(field, value) is None


def test_a_refusal_names_the_character_and_what_it_is():
    assert domain_refuses("bio", "x\u202ey") == "must not contain U+202E (a bidirectional override)"
    assert domain_refuses("text", "x\x00y") == "must not contain NUL characters"


def test_a_display_name_is_one_line_but_a_bio_and_a_tweet_may_have_several():
    assert gateway_refuses(ProfileChanges, "display_name", "two\nlines") is not None
    assert gateway_refuses(ProfileChanges, "bio", "two\nlines") is None
    assert gateway_refuses(NewTweet, "text", "two\nlines") is None


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12),
       st.sampled_from([(NewTweet, "text"), (ProfileChanges, "bio"),
                        (ProfileChanges, "display_name")]))
def test_whatever_the_gateway_accepts_the_domain_accepts_and_the_other_way_round(value, target):
    model, field = target
    assert (gateway_refuses(model, field, value) is None) == (domain_refuses(field, value) is None)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12))
def test_accepted_text_can_be_stored_as_utf8_without_nul(value):
    if rules.text_problem(value, 280) is None:
        assert "\x00" not in value
        value.encode("utf-8")  # a lone surrogate would raise here
