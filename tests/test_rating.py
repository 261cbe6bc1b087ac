from __future__ import annotations

import pytest
from inspect_ai.model import GenerateConfig, get_model

from psysim.calls.rating import parse_rating, rating_config, resolve_rating_format


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"rating": 72}', 72.0),
        ('  {"Rating": 0}\n', 0.0),
        ('```json\n{"rating": 100}\n```', 100.0),
        ("72", 72.0),
        ("72/100", 72.0),
        ("Rating: 95", 95.0),
        ("RATING: 95", 95.0),
        ("rating = 40.", 40.0),
        ("I feel heard.\nRating: 65\nThat is my honest view.", 65.0),
        ('Sure, here it is: {"rating": 55}', 55.0),
        ('{"rating": 55} Rating: 55', 55.0),  # the same number twice is not ambiguous
        ("**Rating:** 65", 65.0),
        ("- rating = 65/100", 65.0),
        ('{"rating": 70.0}', 70.0),  # a whole number written with ".0" is accepted (README)
        ("70.0", 70.0),
        ('{"rating": 70, "note": "fine"}', 70.0),
        ('Rating: 70\n{"rating": 70.0}', 70.0),  # the same value twice is one rating
        ('Okay. {"mood": "calm"} {"rating": 40}', 40.0),  # a JSON object without a rating is prose
    ],
)
def test_parse_rating_accepts(text: str, expected: float) -> None:
    assert parse_rating(text) == (expected, None)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty reply"),
        ("It went well, I think.", "no rating found"),
        ("I'd say 70, maybe 80", "no rating found"),  # loose numbers in prose are not a rating
        ('{"rating": 150}', "out of range"),
        ('{"rating": -5}', "out of range"),
        ("101", "out of range"),
        ("Rating: 70\nRating: 80", "ambiguous"),
        ('{"score": 70}', "no 'rating' field"),
        ('{"rating": "high"}', "not a number"),
        ('{"rating": true}', "not a number"),
        ("[70]", "not an object"),
        ('{"rating": NaN}', "not a number"),
        ('{"rating": 62.5}', "not a whole number"),
        ("0.7", "not a whole number"),
        # issue 9: replies that used to be coerced into a rating
        ('{"rating":85,"rating":20}', "ambiguous: JSON object has the key 'rating' more than once"),
        ('{"rating": 85, "Rating": 85}', "more than once"),  # even with the same value
        ('Here: {"rating": 85, "rating": 20}', "more than once"),
        ("99.99999999999999999", "not a whole number"),  # a float would round it to 100
        ('{"rating": 99.99999999999999999}', "not a whole number"),
        ("Rating: 99.9999999999999999999", "not a whole number"),
        ("7e1", "exponent"),
        ('{"rating": 7e1}', "exponent"),
        ('{"rating": 1E2}', "exponent"),
        ("Rating: 7e1", "exponent"),
        ("-0", "negative zero"),
        ('{"rating": -0}', "negative zero"),
        ('{"rating": -0.0}', "negative zero"),
        ("070", "leading zero"),
        ('{"rating": 70.00}', "not written as a whole number"),
        ('Rating: 70\n{"rating": 7e1}', "exponent"),  # one bad candidate spoils the reply
        ('{"rating": 70} {"rating": 80}', "ambiguous"),
    ],
)
def test_parse_rating_rejects(text: str, reason: str) -> None:
    value, error = parse_rating(text)
    assert value is None
    assert reason in error


def test_out_of_range_is_never_clamped() -> None:
    assert parse_rating("100.5")[0] is None
    assert parse_rating("-1")[1].startswith("out of range")
    assert parse_rating("0")[0] == 0.0


def test_rating_format_by_provider() -> None:
    assert resolve_rating_format("auto", get_model("mockllm/model")) == "json_schema"
    assert resolve_rating_format("text", get_model("mockllm/model")) == "text"


def test_rating_config_per_format() -> None:
    base = GenerateConfig(temperature=0.1, seed=3)
    schema = rating_config(base, "json_schema")
    assert schema.response_schema is not None and schema.temperature == 0.1 and schema.seed == 3
    props = schema.response_schema.json_schema.properties["rating"]
    assert props.minimum == 0 and props.maximum == 100 and props.type == "integer"
    obj = rating_config(base, "json_object")
    assert obj.response_schema is None
    assert obj.extra_body["response_format"]["type"] == "json_object"
    assert obj.extra_body["response_format"]["schema"]["required"] == ["rating"]
    assert rating_config(base, "text") == base


def test_rating_json_is_never_read_through_a_float() -> None:
    # json.loads would give 100.0 and -0.0 here; the parser judges the digits as written
    assert parse_rating('{"rating": 99.99999999999999999}')[0] is None
    assert parse_rating("-0")[0] is None
    assert parse_rating("100")[0] == 100.0
