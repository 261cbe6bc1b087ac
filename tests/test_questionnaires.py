"""Questionnaire instruments (issue 11, part 1): files, strict parsing, scoring by hand.

Scoring is checked against totals computed by hand (written out in the comments), never by
re-running the scorer's own arithmetic.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from inspect_ai.model import GenerateConfig

from psysim.calls.rating import rating_config
from psysim.calls.strict_json import loads_strict
from psysim.questionnaires import (
    InstrumentFileError,
    judge_answer,
    load_instrument,
    load_instruments,
    parse_answers,
    score_scales,
    shipped_instruments,
)

WAI = load_instrument("wai_sr")
SRS = load_instrument("srs")


def wai_reply(answers: dict[str, object]) -> str:
    return "{" + ", ".join(f'"{k}": {v}' for k, v in answers.items()) + "}"


WAI_ANSWERS = {"1": 4, "2": 3, "3": 5, "4": 2, "5": 5, "6": 3, "7": 4, "8": 2, "9": 5, "10": 3, "11": 1, "12": 4}


# --- the instrument files ------------------------------------------------------------------


def test_shipped_instruments_follow_the_published_structure() -> None:
    assert shipped_instruments() == ["srs", "wai_sr"]
    # WAI-SR (Hatcher & Gillaspy 2006): 12 items, 1-5, goal 4/6/8/11, task 1/2/10/12, bond 3/5/7/9
    assert WAI.item_ids() == [str(i) for i in range(1, 13)]
    assert (WAI.response_scale.min, WAI.response_scale.max, WAI.response_scale.decimals) == (1, 5, 0)
    assert WAI.response_scale.anchors == {1: "Seldom", 2: "Sometimes", 3: "Fairly often", 4: "Very often", 5: "Always"}
    assert WAI.scales["goal"].items == ["4", "6", "8", "11"]
    assert WAI.scales["task"].items == ["1", "2", "10", "12"]
    assert WAI.scales["bond"].items == ["3", "5", "7", "9"]
    assert sorted(WAI.scales["total"].items, key=int) == WAI.item_ids()
    assert WAI.reverse_keyed == []
    assert [WAI.scale_range(s) for s in ("total", "goal")] == [(12, 60), (4, 20)]
    # SRS (Duncan et al. 2003): 4 items, 0-10 with one decimal, total 0-40
    assert SRS.item_ids() == ["1", "2", "3", "4"]
    assert (SRS.response_scale.min, SRS.response_scale.max, SRS.response_scale.decimals) == (0, 10, 1)
    assert SRS.scale_range("total") == (0, 40)
    assert all(set(item.anchors) == {0, 10} for item in SRS.items)
    for instrument in (WAI, SRS):
        assert instrument.wording == "adapted" and "NOT the validated" in instrument.wording_note
        assert instrument.citation and "copyright" in instrument.licence
    assert (SRS.score_key("total", 3), WAI.score_key("bond", 3)) == ("srs_total_s3", "wai_bond_s3")


def test_json_schema_from_the_instrument_file() -> None:
    schema = WAI.json_schema().model_dump(exclude_none=True)
    assert schema["required"] == WAI.item_ids() and schema["additionalProperties"] is False
    assert {p["type"] for p in schema["properties"].values()} == {"integer"}
    assert SRS.json_schema().properties["1"].type == "number"  # decimals allowed
    config = rating_config(GenerateConfig(), "json_object", schema=SRS.json_schema(), name="srs")
    assert config.extra_body["response_format"]["schema"]["required"] == ["1", "2", "3", "4"]
    config = rating_config(GenerateConfig(), "json_schema", schema=WAI.json_schema(), name="wai_sr")
    assert config.response_schema.name == "wai_sr" and config.response_schema.json_schema.required == WAI.item_ids()


def custom_instrument(tmp_path: Path, **changes: object) -> Path:
    data = {
        "id": "mini", "key": "mini", "name": "Mini test scale", "version": 1, "wording": "adapted",
        "wording_note": "test", "citation": "none", "licence": "test", "instructions": "Rate.",
        "response_scale": {"min": 1, "max": 5},
        "items": [{"id": "a", "text": "Good."}, {"id": "b", "text": "Bad."}, {"id": "c", "text": "Fine."}],
        "reverse_keyed": ["b"],
        "scales": {"total": {"items": ["a", "b", "c"]}, "pair": {"items": ["a", "b"], "method": "mean"}},
    }
    data.update(changes)
    path = tmp_path / "mini.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_new_instrument_is_one_file(tmp_path: Path) -> None:
    instrument = load_instrument(str(custom_instrument(tmp_path)))
    assert instrument.id == "mini" and instrument.source.endswith("mini.yaml")
    assert [i.id for i in load_instruments(f"srs, {tmp_path / 'mini.yaml'}")] == ["srs", "mini"]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"proration": True}, "proration"),  # a rule the scorer does not implement is not silently ignored
        ({"scales": {"total": {"items": ["a", "z"]}}}, "unknown item ids ['z']"),
        ({"reverse_keyed": ["z"]}, "reverse_keyed"),
        ({"response_scale": {"min": 5, "max": 1}}, "response_scale"),
        ({"response_scale": {"min": 1, "max": 5, "decimals": 1.5}}, "response_scale.decimals"),
        ({"items": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, "duplicate id"),
        ({"items": [{"id": 1, "text": "x"}]}, "items.0.id"),
        ({"key": "Bad Key"}, "key"),
        ({"wording": "original"}, "wording"),
    ],
)
def test_malformed_instrument_files_name_file_and_field(tmp_path: Path, changes: dict, field: str) -> None:
    path = custom_instrument(tmp_path, **changes)
    with pytest.raises(InstrumentFileError, match=r"mini\.yaml") as error:
        load_instrument(str(path))
    assert field in str(error.value)


def test_instrument_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InstrumentFileError, match="unknown questionnaire 'phq9'.*srs, wai_sr"):
        load_instrument("phq9")
    with pytest.raises(InstrumentFileError, match="instrument file not found"):
        load_instrument(str(tmp_path / "missing.yaml"))
    twice = tmp_path / "twice.yaml"
    twice.write_text(custom_instrument(tmp_path).read_text() + "version: 2\n", encoding="utf-8")
    with pytest.raises(InstrumentFileError, match="found key 'version' twice"):
        load_instrument(str(twice))
    with pytest.raises(InstrumentFileError, match=r"id \['srs'\] given more than once"):
        load_instruments("srs,srs")
    assert load_instruments(None) == [] and load_instruments("none") == [] and load_instruments("") == []


# --- scoring, against totals computed by hand ------------------------------------------------


def test_wai_scoring_by_hand() -> None:
    scores = score_scales(WAI, {k: float(v) for k, v in WAI_ANSWERS.items()})
    # goal 4,6,8,11: 2+3+2+1 = 8; task 1,2,10,12: 4+3+3+4 = 14; bond 3,5,7,9: 5+5+4+5 = 19; total 41
    assert {name: s.value for name, s in scores.items()} == {"total": 41.0, "goal": 8.0, "task": 14.0, "bond": 19.0}


def test_srs_scoring_by_hand_with_decimals() -> None:
    # 7.5 + 6.3 + 8.0 + 9.1 = 30.9 (a float sum would give 30.900000000000002)
    scores = score_scales(SRS, {"1": 7.5, "2": 6.3, "3": 8.0, "4": 9.1})
    assert scores["total"].value == 30.9
    assert score_scales(SRS, {"1": 0.0, "2": 0.0, "3": 0.0, "4": 0.0})["total"].value == 0.0
    assert score_scales(SRS, {"1": 10.0, "2": 10.0, "3": 10.0, "4": 10.0})["total"].value == 40.0


def test_reverse_keyed_items_and_mean_scales(tmp_path: Path) -> None:
    mini = load_instrument(str(custom_instrument(tmp_path)))
    scores = score_scales(mini, {"a": 4.0, "b": 2.0, "c": 3.0})
    # b is reverse-keyed on 1-5: 1 + 5 - 2 = 4; total 4 + 4 + 3 = 11; pair mean (4 + 4) / 2 = 4
    assert scores["total"].value == 11.0 and scores["pair"].value == 4.0
    scores = score_scales(mini, {"a": 5.0, "b": 5.0, "c": 1.0})
    # b: 1 + 5 - 5 = 1; total 5 + 1 + 1 = 7; pair (5 + 1) / 2 = 3
    assert scores["total"].value == 7.0 and scores["pair"].value == 3.0


def test_partial_answers_keep_items_and_mark_scales_missing() -> None:
    answers = {k: float(v) for k, v in WAI_ANSWERS.items() if k != "7"}  # a bond item unanswered
    scores = score_scales(WAI, answers)
    assert scores["total"].value is None and scores["total"].missing_items == ["7"]
    assert scores["bond"].value is None and scores["bond"].missing_items == ["7"]
    assert scores["goal"].value == 8.0 and scores["task"].value == 14.0  # no proration, no loss either


# --- the strict parser -------------------------------------------------------------------------


def test_parse_a_complete_reply() -> None:
    parsed = parse_answers(wai_reply(WAI_ANSWERS), WAI)
    assert parsed.readable and parsed.error is None and parsed.item_errors == {}
    assert parsed.answers == {k: float(v) for k, v in WAI_ANSWERS.items()}
    fenced = parse_answers("```json\n" + wai_reply(WAI_ANSWERS) + "\n```", WAI)
    assert fenced.answers == parsed.answers
    in_prose = parse_answers("Here are my answers: " + wai_reply(WAI_ANSWERS) + " Thank you.", WAI)
    assert in_prose.answers == parsed.answers
    srs = parse_answers('{"1": 7.5, "2": 6, "3": 10.0, "4": 0}', SRS)
    assert srs.error is None and srs.answers == {"1": 7.5, "2": 6.0, "3": 10.0, "4": 0.0}


@pytest.mark.parametrize(
    "value, problem",
    [
        ("6", "out of range: 6 is not within 1-5"),
        ("0", "out of range: 0 is not within 1-5"),
        ("-1", "out of range"),
        ("3.5", "not a whole number: 3.5"),
        ("4.00", "not written as a whole number"),
        ('"4"', "not a number: '4'"),  # a string is never coerced
        ("true", "not a number: True"),
        ("null", "no answer (null)"),
        ("4e0", "exponent not accepted"),
        ("-0", "negative zero"),
        ("04", None),  # not valid JSON: the reply as a whole is unreadable
        ("NaN", "not a number: NaN"),
        ("[4]", "not a number"),
    ],
)
def test_malformed_wai_answers_are_not_coerced(value: str, problem: str | None) -> None:
    answers = dict(WAI_ANSWERS, **{"5": value})
    parsed = parse_answers(wai_reply(answers), WAI)
    assert "5" not in parsed.answers
    if problem is None:
        assert not parsed.readable and parsed.answers == {}
    else:
        assert parsed.readable and problem in parsed.item_errors["5"] and "item 5" in parsed.error
        assert len(parsed.answers) == 11  # the other items are kept


def test_whole_number_with_a_single_point_zero_is_accepted() -> None:
    parsed = parse_answers(wai_reply(dict(WAI_ANSWERS, **{"5": "4.0"})), WAI)
    assert parsed.error is None and parsed.answers["5"] == 4.0


@pytest.mark.parametrize(
    "value, ok",
    [("7.5", True), ("7", True), ("10.0", True), ("0.0", True), ("7.55", False), ("7.50", False),
     ("10.1", False), ("-0.0", False), ("99.99999999999999999", False), ("1e1", False)],
)
def test_srs_decimals_from_the_file(value: str, ok: bool) -> None:
    judged = judge_answer(loads_strict(value), SRS.response_scale)
    assert isinstance(judged, float) is ok, judged


def test_unreadable_and_incomplete_replies() -> None:
    duplicate = parse_answers('{"1": 4, "2": 3, "1": 5}', WAI)  # json would keep 5 silently
    assert not duplicate.readable and "more than once" in duplicate.error and duplicate.answers == {}
    assert set(duplicate.item_errors) == set(WAI.item_ids())
    missing = parse_answers('{"1": 4, "2": 3}', WAI)
    assert missing.readable and missing.answers == {"1": 4.0, "2": 3.0}
    assert missing.item_errors["3"] == "not answered (key missing)" and len(missing.item_errors) == 10
    other_keys = parse_answers('{"q1": 4, "q2": 3, "q3": 5, "q4": 2}', SRS)
    assert other_keys.answers == {} and "unknown keys ['q1', 'q2', 'q3', 'q4']" in other_keys.error
    extra = parse_answers('{"1": 4, "2": 3, "3": 5, "4": 2, "comment": "fine"}', SRS)
    assert extra.error is None  # a full set of answers with an extra key is complete
    for text, reason in [
        ("", "empty reply"),
        ("I would rate it a 7.", "no JSON object"),
        ('{"1": 4} and {"1": 5}', "2 JSON objects"),
        ("[4, 3, 5, 2]", "not a JSON object"),
    ]:
        parsed = parse_answers(text, SRS)
        assert not parsed.readable and reason in parsed.error, (text, parsed.error)
