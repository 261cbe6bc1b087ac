"""Property-based tests of the rating parser (hypothesis): generated replies, well- and malformed."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from psysim.calls.rating import RATING_MAX, RATING_MIN, parse_rating

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
ratings = st.integers(min_value=RATING_MIN, max_value=RATING_MAX)
prose = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)


@SETTINGS
@given(st.text(max_size=200))
@example('{"rating":85,"rating":20}')
@example("99.99999999999999999")
@example("-0")
@example("7e1")
def test_any_accepted_value_is_a_whole_number_in_range_written_in_the_reply(reply: str) -> None:
    value, error = parse_rating(reply)
    if value is None:
        assert error  # a missing rating always has a reason
        return
    assert error is None
    assert value.is_integer() and RATING_MIN <= value <= RATING_MAX
    # the number appears literally, not produced by rounding, clamping or a default
    assert re.search(rf"(?<![\d.]){int(value)}(?:\.0)?(?![\d.]*\d)", reply)


@SETTINGS
@given(ratings)
def test_valid_json_rating_always_parses_to_itself(n: int) -> None:
    assert parse_rating(json.dumps({"rating": n})) == (float(n), None)
    assert parse_rating(f"```json\n{{\"rating\": {n}}}\n```") == (float(n), None)
    assert parse_rating(f"Rating: {n}") == (float(n), None)


@SETTINGS
@given(ratings, prose)
def test_rating_in_prose_with_a_label_parses(n: int, before: str) -> None:
    before = re.sub(r"[\d{}\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]|rating", "", before, flags=re.I)
    assert parse_rating(f"{before}\nRating: {n}\n") == (float(n), None)


# Malformed numbers: each must be rejected whatever the wrapping.
fractions = st.builds(
    lambda whole, frac: f"{whole}.{frac}",
    st.integers(min_value=0, max_value=150),
    st.from_regex(r"\A\d{0,25}[1-9]\Z", fullmatch=True),
)
exponents = st.builds(
    lambda mant, sign, exp: f"{mant}{'e'}{sign}{exp}",
    st.integers(min_value=0, max_value=100), st.sampled_from(["", "+", "-"]), st.integers(min_value=0, max_value=5),
)
negative_zeros = st.builds(lambda zeros, frac: "-" + "0" * zeros + frac, st.integers(1, 3), st.sampled_from(["", ".0", ".00"]))
out_of_range = st.one_of(st.integers(min_value=RATING_MAX + 1, max_value=10**30), st.integers(max_value=-1)).map(str)
malformed_numbers = st.one_of(fractions, exponents, negative_zeros, out_of_range)
wrappers = st.sampled_from(["{n}", '{{"rating": {n}}}', "Rating: {n}", "**Rating:** {n}/100", '```json\n{{"rating": {n}}}\n```',
                            'Sure: {{"rating": {n}}}'])


@SETTINGS
@given(malformed_numbers, wrappers)
def test_malformed_numbers_never_produce_a_value(number: str, wrapper: str) -> None:
    value, error = parse_rating(wrapper.format(n=number))
    assert value is None and error


@SETTINGS
@given(ratings, ratings, wrappers, wrappers)
def test_two_different_ratings_are_ambiguous(a: int, b: int, first: str, second: str) -> None:
    if a == b:
        return
    value, error = parse_rating(first.format(n=a) + "\n" + second.format(n=b))
    assert value is None and error


@SETTINGS
@given(ratings, ratings)
def test_duplicate_json_keys_are_rejected(a: int, b: int) -> None:
    value, error = parse_rating(f'{{"rating": {a}, "rating": {b}}}')
    assert value is None and "more than once" in error


@SETTINGS
@given(st.text(alphabet=st.characters(exclude_categories=["Nd", "Cs"]), max_size=100))
def test_replies_without_digits_never_produce_a_value(reply: str) -> None:
    assert parse_rating(reply)[0] is None


# The rating app's save handler (issue 22): any typed text gives 2xx or 4xx, never 5xx, and only
# whole numbers 0-100 written in ASCII digits are ever stored.

@pytest.fixture(scope="module")
def rating_app(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    from starlette.testclient import TestClient

    from psysim.rating_app.app import create_app
    from psysim.rating_app.items import read_items
    from psysim.rating_app.study import Study, create_study
    from psysim.rating_app.template import load_template
    from psysim.study.log_series import load_selection
    from rating_logs import exp2_log

    root = tmp_path_factory.mktemp("property-logs")
    exp2_log(root / "logs")
    [entry] = load_selection(root / "logs").used
    created = create_study(root / "study.db", "properties", read_items(entry)[0], 1, load_template(), seed=1)
    [token] = created.tokens.values()
    study = Study(created.path)
    rater_id, _ = study.rater(token)
    study.start(rater_id)  # the start page passed
    client = TestClient(create_app(created.path), follow_redirects=False, raise_server_exceptions=False,
                        headers={"origin": "http://testserver"})
    return client, study, rater_id, token


typed = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(categories=["Nd", "No", "Nl"]), max_size=6),  # every script's digits
    st.integers(min_value=-10**6, max_value=10**6).map(str),
    st.integers(min_value=0, max_value=100).map(lambda n: f" {n}\t"),
    st.just("9" * 5000),
)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rating=typed, position=st.sampled_from(["1", "2", str(2**63), "0"]))
@example(rating="²", position="1")
@example(rating="①", position="1")
@example(rating="--5", position="1")
@example(rating="٥٠", position="1")
@example(rating="５٠", position="1")
def test_save_handler_answers_2xx_or_4xx_and_stores_only_0_to_100(rating_app, rating: str, position: str) -> None:
    client, study, rater_id, token = rating_app
    page = study.page(rater_id, int(position)) if position in ("1", "2") else None
    before = None if page is None else (page.rating, page.skipped)
    form = {"response": page.response_id if page else "f" * 16, "rating": rating, "action": "save"}
    answer = client.post(f"/r/{token}/{position}", data=form)
    assert 200 <= answer.status_code < 500, (answer.status_code, rating)
    if page is None:
        return
    stored = study.page(rater_id, int(position)).rating
    if answer.status_code == 303:
        assert re.fullmatch(r"[0-9]{1,3}", rating.strip(), re.ASCII) and stored == int(rating.strip())
        assert 0 <= stored <= 100
    else:
        assert answer.status_code == 400 and stored == before[0]  # refused: nothing saved
