from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import shared_file

from psysim.inputs.personas import (
    DEFAULT_PERSONAS,
    PersonaFileError,
    load_personas,
    persona_dataset,
)
from psysim.prompts import prompt


def test_shipped_personas() -> None:
    personas = load_personas()
    assert len(personas) >= 12
    assert len({p.id for p in personas}) == len(personas)
    assert all(p.presenting_problem and p.attitude and p.speaking_style for p in personas)
    text = prompt("client", "persona", p=personas[0])
    assert personas[0].presenting_problem in text and personas[0].speaking_style in text
    dataset = persona_dataset()
    assert [s.id for s in dataset] == [p.id for p in personas]
    assert dataset[0].metadata["persona"]["id"] == personas[0].id


def test_shipped_personas_are_varied() -> None:
    personas = load_personas()
    ages = [p.age for p in personas]
    assert min(ages) < 25 and max(ages) > 65
    assert len({p.gender for p in personas}) >= 3
    assert len({tuple(p.tags) for p in personas}) == len(personas)


def write(tmp_path: Path, data: object, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if name.endswith(".yaml") else json.dumps(data))
    return path


def valid(**overrides: object) -> dict:
    entry = {
        "id": "x1",
        "presenting_problem": "Cannot sleep.",
        "history": "Since the move.",
        "goals": "Sleep through the night.",
        "attitude": "Skeptical.",
    }
    return entry | overrides


def test_minimal_native_list_and_json(tmp_path: Path) -> None:
    [persona] = load_personas(write(tmp_path, [valid()]))
    assert persona.id == "x1" and persona.speaking_style  # default style
    [persona] = load_personas(write(tmp_path, {"personas": [valid()]}, "p.json"))
    assert persona.goals == "Sleep through the night."


@pytest.mark.parametrize(
    "data, message",
    [
        ({"personas": [valid(), {k: v for k, v in valid(id="x2").items() if k != "goals"}]},
         "entry 1 (id 'x2'): field 'goals': Field required"),
        ({"personas": [valid(history="")]}, "entry 0 (id 'x1'): field 'history'"),
        ({"personas": [valid(age="old")]}, "field 'age'"),
        # strict types: a quoted number is not read as the number
        ({"personas": [valid(age="40")]}, "entry 0 (id 'x1'): field 'age': Input should be a valid integer, found str '40'"),
        ({"personas": [valid(risk={"kind": "self_harm", "level": "high", "first_session": "2",
                                   "disclosure_style": "hints", "details": "cuts"})]},
         "field 'risk.first_session': Input should be a valid integer, found str '2'"),
        ({"personas": [valid(name=7)]}, "field 'name': Input should be a valid string, found int 7"),
        # control characters would go into the client's system prompt unseen
        ({"personas": [valid(history="Since\x00 the move.")]},
         "entry 0 (id 'x1'): field 'history': Value error, control character U+0000 (NUL) at character 6"),
        ({"personas": [valid(tags=["ok", "a\x1b[31m"])]}, "field 'tags': Value error, control character U+001B (ESC)"),
        ({"personas": [valid(risk={"kind": "self_harm", "level": "high", "first_session": 2,
                                   "disclosure_style": "hints", "details": "cu\x7fts"})]},
         "field 'risk.details': Value error, control character U+007F (DEL)"),
        ({"personas": [valid(mood="sad")]}, "field 'mood': Extra inputs are not permitted"),
        ({"personas": [valid(), valid()]}, "entry 1: field 'id': duplicate id 'x1'"),
        ({"personas": [valid(id="has space")]}, "field 'id'"),
        ({"personas": "none"}, "field 'personas': expected a list"),
        ({"personas": []}, "no personas found"),
        ({"personas": ["just text"]}, "entry 0: expected a mapping"),
        ("a string", "unrecognised persona format"),
    ],
)
def test_malformed_personas_name_file_entry_field(tmp_path: Path, data: object, message: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(PersonaFileError) as error:
        load_personas(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_tab_and_newlines_in_persona_text_are_kept(tmp_path: Path) -> None:
    [persona] = load_personas(write(tmp_path, [valid(history="Since the move.\n\tThen\r\nmore.", age=40)]))
    assert persona.history == "Since the move.\n\tThen\r\nmore." and persona.age == 40


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(PersonaFileError, match="not found"):
        load_personas(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PersonaFileError, match="cannot parse"):
        load_personas(bad)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("id: caf\xe9".encode("latin-1"))
    with pytest.raises(PersonaFileError, match="not UTF-8"):
        load_personas(latin)


def test_cactus_shape_and_errors(tmp_path: Path) -> None:
    form = (
        "Name:\nAna Ruiz\nAge:\n33\nGender:\nfemale\nOccupation: Nurse\n\n"
        "2. Presenting Problem\nI panic before shifts.\n\n"
        "3. Reason for Seeking Counseling\nI want to keep my job.\n\n"
        "4. Past History (including medical history)\nNone.\n\n"
        "5. Academic/occupational functioning level: Worse lately.\n\n"
        "6. Social Support System\nMy sister."
    )
    entry = {"AI_client": {"intake_form": form, "attitude": "negative", "attitude_instruction": "Resists."}}
    [persona] = load_personas(write(tmp_path, [entry], "cactus.json"))
    assert persona.id == "cactus_000_negative"
    assert (persona.name, persona.age, persona.occupation) == ("Ana Ruiz", 33, "Nurse")
    assert persona.presenting_problem == "I panic before shifts."
    assert persona.goals == "I want to keep my job."
    assert "My sister." in persona.history and "Worse lately." in persona.history
    assert persona.attitude.startswith("negative. Resists.")
    broken = {"AI_client": {"intake_form": "Name:\nX", "attitude": "neutral"}}
    with pytest.raises(PersonaFileError, match=r"entry 1: field 'AI_client.intake_form': no '2. Presenting"):
        load_personas(write(tmp_path, [entry, broken], "cactus.json"))
    with pytest.raises(PersonaFileError, match=r"entry 1: field 'AI_client.attitude': missing"):
        load_personas(write(tmp_path, [entry, {"AI_client": {"intake_form": form}}], "cactus.json"))


def test_consistentmi_shape(tmp_path: Path) -> None:
    entry = {"idx": 3, "topic": "smoking cessation", "initial_stage": "Contemplation",
             "Personas": ["You smoke 20 a day", "Your kids ask you to quit."], "Beliefs": ["It calms you"],
             "Motivation": ["Health"], "Acceptable Plans": ["Cut down to 10 a day"], "Behavior": "smoking"}
    [persona] = load_personas(write(tmp_path, [entry], "mi.json"))
    assert persona.id == "consistentmi_00"
    assert persona.history == "You smoke 20 a day. Your kids ask you to quit."
    assert "Contemplation" in persona.attitude and "It calms you." in persona.attitude
    with pytest.raises(PersonaFileError, match="entry 1 \\(id 4\\): field 'Personas': missing"):
        load_personas(write(tmp_path, [entry, {"idx": 4, "topic": "x", "initial_stage": "y"}], "mi.json"))
    # a string where a list belongs would otherwise become one "sentence" per character
    with pytest.raises(PersonaFileError, match="entry 0 \\(id 3\\): field 'Beliefs': expected a list, found str"):
        load_personas(write(tmp_path, [entry | {"Beliefs": "It calms you"}], "mi.json"))


def test_real_cactus_file() -> None:
    personas = load_personas(shared_file("personas", "cactus", "evaluation.json"))
    assert len(personas) == 450
    assert {p.tags[1] for p in personas} == {"positive", "neutral", "negative"}
    assert personas[0].name == "Laura Saunders" and personas[0].age == 45
    assert all(p.presenting_problem and p.goals for p in personas)


def test_real_consistentmi_file() -> None:
    personas = load_personas(shared_file("personas", "consistentmi", "consistentMI.json"))
    assert len(personas) == 38
    assert personas[0].presenting_problem == "You have come to talk about reducing drug use (drug use)."
    assert "Precontemplation" in personas[0].attitude


def test_default_path_is_shipped() -> None:
    assert DEFAULT_PERSONAS.is_file() and DEFAULT_PERSONAS.parent.parent.name == "datasets"


def test_optional_fields(tmp_path: Path) -> None:
    [persona] = load_personas(write(tmp_path, [valid(speaking_style=None, age=40, occupation="baker")]))
    assert persona.speaking_style.startswith("Speak naturally")
    text = prompt("client", "persona", p=persona)
    assert text.startswith("About this person: 40 years old, baker.")  # no name, facts kept
    [persona] = load_personas(write(tmp_path, [valid()]))
    assert prompt("client", "persona", p=persona).startswith("Why you are coming to therapy")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("d.yaml", "personas:\n  - id: a\n    goals: one\n    goals: two\n", r"found key 'goals' twice \(first on line 3\)[\s\S]*line 4"),
        ("d.json", '[{"id": "a", "goals": "one", "goals": "two"}]', r"field 'goals': appears twice in one object \('one' and 'two'\)"),
        ("e.yaml", "  \n", r"empty file$"),
        ("u.yaml", b"personas:\n  - id: a\n    history: caf\xe9\n", r"line 3: not UTF-8 text"),
    ],
)
def test_unreadable_persona_files_name_file_and_place(tmp_path: Path, name: str, content: str | bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(PersonaFileError, match=rf"^{re.escape(str(path))}: [\s\S]*{message}"):
        load_personas(path)


def test_persona_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(PersonaFileError, match="is a directory, expected a persona file"):
        load_personas(tmp_path)
    with pytest.raises(PersonaFileError, match=r"nope.yaml: persona file not found"):
        load_personas(tmp_path / "nope.yaml")
