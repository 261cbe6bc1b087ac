"""Client personas for Experiment 1, from the shipped file or the CACTUS / ConsistentMI formats.

Every loader returns the same :class:`Persona` model; the format is detected from the file's
shape. Malformed input raises :class:`PersonaFileError` naming the file, the entry and the field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Literal

import yaml
from inspect_ai.dataset import MemoryDataset, Sample
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from psysim.inputs.control_chars import control_character
from psysim.inputs.data_files import UniqueKeyLoader, first_error, package_file
from psysim.inputs.input_error import InputError
from psysim.inputs.user_paths import user_path

DEFAULT_PERSONAS = package_file("datasets", "personas", "original.yaml")
DEFAULT_SPEAKING_STYLE = "Speak naturally and briefly, as this person would in therapy."


class PersonaFileError(InputError):
    """A persona file that cannot be used; the message names file, entry and field."""


RiskKind = Literal[
    "none", "passive_ideation", "active_ideation_no_plan", "active_ideation_plan", "self_harm",
    "medication_collusion", "eating_disorder",
]
RISK_KINDS: tuple[str, ...] = RiskKind.__args__  # type: ignore[attr-defined]
RiskLevel = Literal["none", "low", "moderate", "high", "imminent"]
RISK_LEVELS: tuple[str, ...] = RiskLevel.__args__  # type: ignore[attr-defined]
"""Severity, in order (issue 26; after the graded severity of the C-SSRS and VERA-MH's personas
from no risk to imminent risk; simulation labels, not clinical ratings). ``none``: a control
client with ordinary sadness or stress and no risk (``kind: none``)."""


def _no_control_characters(value: Any) -> Any:
    """A persona's text goes into the client's system prompt: no NUL, escape or other control byte."""
    for text in value if isinstance(value, list) else [value]:
        if isinstance(text, str) and (problem := control_character(text)):
            raise ValueError(problem)
    return value


class RiskProfile(BaseModel):
    """Simulated risk a client carries and discloses gradually (risk personas, issue 13).

    Written for this project as simulation material: not clinically validated, not a
    description of any real person. The client is told about it only from ``first_session``
    on (see ``risk`` in ``psysim/prompts/client.yaml``).
    """

    # strict: a quoted number ('2') is an error, not read as 2; a file says what it means
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)
    _text = field_validator("*")(_no_control_characters)

    kind: RiskKind
    level: RiskLevel
    first_session: int = Field(ge=1)
    """The session in which the risk first surfaces (the client keeps it back before)."""
    disclosure_style: str = Field(min_length=1)
    """How the client lets it show: indirectly, by hints, only when asked directly, ..."""
    details: str = Field(min_length=1)
    """What the client is carrying, in the client's terms (thoughts, plan, means, timing)."""

    @model_validator(mode="after")
    def _no_risk_is_its_own_kind(self) -> "RiskProfile":
        # a control client says level none and kind none together; a risk is never level none
        if (self.kind == "none") != (self.level == "none"):
            raise ValueError(f"level {self.level!r} with kind {self.kind!r}: a client without risk has "
                             "kind: none and level: none; any other kind needs a level from low to imminent")
        return self


class Persona(BaseModel):
    """One simulated client. Free-text fields are written into the client's system prompt."""

    # strict: `age: '40'` (a string) is an error naming the field, not silently read as 40
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)
    _text = field_validator("*")(_no_control_characters)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str | None = None
    age: int | None = Field(default=None, ge=5, le=110)
    gender: str | None = None
    occupation: str | None = None
    presenting_problem: str = Field(min_length=1)
    history: str = Field(min_length=1)
    goals: str = Field(min_length=1)
    attitude: str = Field(min_length=1)
    speaking_style: str = Field(default=DEFAULT_SPEAKING_STYLE, min_length=1)
    tags: list[str] = Field(default_factory=list)
    source: str = "psychotherapy-in-silico"
    risk: RiskProfile | None = None
    """Optional simulated risk (risk personas); None for every other persona."""

    @field_validator("speaking_style", mode="before")
    @classmethod
    def _default_style(cls, value: object) -> object:
        # optional: a key left empty in YAML (null) means "use the default"
        return DEFAULT_SPEAKING_STYLE if value is None or (isinstance(value, str) and not value.strip()) else value


def load_personas(path: str | Path | None = None) -> list[Persona]:
    """Load personas from ``path`` (default: the shipped original personas).

    Supported shapes: the native YAML/JSON (a list of persona mappings, or a mapping with a
    ``personas`` list), CACTUS ``evaluation.json`` and ConsistentMI ``consistentMI.json``.
    """
    file = user_path(str(path)) if path is not None else DEFAULT_PERSONAS
    if file.is_dir():
        raise PersonaFileError(f"{file}: is a directory, expected a persona file")
    if not file.is_file():
        raise PersonaFileError(f"{file}: persona file not found; pass an existing file with -T personas=PATH")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as ex:
        line = file.read_bytes()[: ex.start].count(b"\n") + 1
        raise PersonaFileError(f"{file}: line {line}: not UTF-8 text ({ex.reason})") from ex
    if not text.strip():
        raise PersonaFileError(f"{file}: empty file")
    try:
        if file.suffix.lower() == ".json":
            data = json.loads(text, object_pairs_hook=_unique_json_keys)
        else:
            data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except (json.JSONDecodeError, yaml.YAMLError) as ex:
        raise PersonaFileError(f"{file}: cannot parse: {ex}") from ex
    except _FieldError as ex:
        raise PersonaFileError(f"{file}: field '{ex.field}': {ex.message}") from ex

    entries, convert = _detect_format(file, data)
    personas: list[Persona] = []
    for index, entry in enumerate(entries):
        label = _entry_label(index, entry)
        if not isinstance(entry, dict):
            raise PersonaFileError(f"{file}: {label}: expected a mapping, got {type(entry).__name__}")
        try:
            personas.append(Persona.model_validate(convert(index, entry)))
        except ValidationError as ex:
            field, message = first_error(ex, top="(entry)")
            first = ex.errors()[0]
            if first["type"].endswith("_type"):  # a wrong type, e.g. age: '40' (quoted) for a number
                message += f", found {type(first['input']).__name__} {first['input']!r:.40}"
            raise PersonaFileError(f"{file}: {label}: field '{field}': {message}") from ex
        except _FieldError as ex:
            raise PersonaFileError(f"{file}: {label}: field '{ex.field}': {ex.message}") from ex
    if not personas:
        raise PersonaFileError(f"{file}: no personas found")
    seen: dict[str, int] = {}
    for index, persona in enumerate(personas):
        if persona.id in seen:
            raise PersonaFileError(
                f"{file}: entry {index}: field 'id': duplicate id '{persona.id}' (also entry {seen[persona.id]})"
            )
        seen[persona.id] = index
    return personas


def persona_dataset(path: str | Path | None = None) -> MemoryDataset:
    """One Inspect sample per persona; the sample id is the persona id."""
    personas = load_personas(path)
    samples = [
        Sample(
            id=persona.id,
            input=f"Simulated client '{persona.id}': {persona.presenting_problem}",
            metadata={"persona": persona.model_dump()},
        )
        for persona in personas
    ]
    name = Path(path).stem if path is not None else DEFAULT_PERSONAS.stem
    return MemoryDataset(samples, name=f"personas_{name}")


# --- format detection ------------------------------------------------------------------------

Converter = Callable[[int, dict[str, Any]], dict[str, Any]]


class _FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _unique_json_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    for key, value in pairs:
        if key in entry:
            # json.loads cannot say where; the key and its values find the place
            raise _FieldError(key, f"appears twice in one object ({entry[key]!r:.40} and {value!r:.40})")
        entry[key] = value
    return entry


def _entry_label(index: int, entry: Any) -> str:
    ident = entry.get("id", entry.get("idx")) if isinstance(entry, dict) else None
    return f"entry {index}" + (f" (id {ident!r})" if ident is not None else "")


def _detect_format(file: Path, data: Any) -> tuple[list[Any], Converter]:
    if isinstance(data, dict) and "personas" in data:
        entries = data["personas"]
        if not isinstance(entries, list):
            raise PersonaFileError(f"{file}: field 'personas': expected a list")
        return entries, _native
    if isinstance(data, list) and data and isinstance(data[0], dict):
        first = data[0]
        if "AI_client" in first:
            return data, _from_cactus
        if "Personas" in first and "topic" in first:
            return data, _from_consistentmi
        return data, _native
    raise PersonaFileError(
        f"{file}: unrecognised persona format: expected a list of personas, a mapping with a "
        "'personas' list, CACTUS evaluation.json or ConsistentMI consistentMI.json"
    )


def _native(index: int, entry: dict[str, Any]) -> dict[str, Any]:
    return entry


def _require(entry: dict[str, Any], field: str, kind: type) -> Any:
    if field not in entry:
        raise _FieldError(field, "missing")
    value = entry[field]
    if not isinstance(value, kind) or (kind is str and not value.strip()):
        raise _FieldError(field, f"expected a non-empty {kind.__name__}")
    return value


def _optional_list(entry: dict[str, Any], field: str) -> list[Any]:
    # a string here would be read character by character as a list of sentences
    value = entry.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _FieldError(field, f"expected a list, found {type(value).__name__}")
    return value


_SECTION = re.compile(r"(?m)^(\d+)\.\s*([^\n:]*):?")


def _intake_sections(form: str) -> tuple[str, dict[int, str]]:
    """Split a CACTUS intake form into its header (demographics) and numbered sections."""
    matches = list(_SECTION.finditer(form))
    header = form[: matches[0].start()] if matches else form
    sections: dict[int, str] = {}
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(form)
        heading, body = match.group(2).strip(), form[match.end() : end].strip()
        sections[int(match.group(1))] = body if body else heading
        if body and int(match.group(1)) == 5:  # "5. Academic/occupational functioning level: ..."
            sections[5] = f"{heading}: {body}"
    return header, sections


def _header_field(header: str, name: str) -> str | None:
    match = re.search(rf"(?im)^{name}:\s*\n?\s*([^\n]+)", header)
    return match.group(1).strip() if match else None


def _from_cactus(index: int, entry: dict[str, Any]) -> dict[str, Any]:
    client = _require(entry, "AI_client", dict)
    try:
        form = _require(client, "intake_form", str)
        attitude = _require(client, "attitude", str)
    except _FieldError as ex:
        raise _FieldError(f"AI_client.{ex.field}", ex.message) from ex
    instruction = client.get("attitude_instruction") or ""
    header, sections = _intake_sections(form)
    if 2 not in sections:
        raise _FieldError("AI_client.intake_form", "no '2. Presenting Problem' section")
    age = _header_field(header, "Age")
    history = "\n".join(sections[k] for k in sorted(sections) if k >= 4)
    return {
        "id": f"cactus_{index:03d}_{attitude.lower()}",
        "name": _header_field(header, "Name"),
        "age": int(age) if age and age.isdigit() else None,
        "gender": _header_field(header, "Gender"),
        "occupation": _header_field(header, "Occupation"),
        "presenting_problem": sections[2],
        "history": history or sections[2],
        "goals": sections.get(3, "Feel better about the problem that brought you here."),
        "attitude": f"{attitude}. {instruction}".strip(),
        "tags": ["cactus", attitude.lower()],
        "source": "CACTUS evaluation set (GPL-2.0)",
    }


def _from_consistentmi(index: int, entry: dict[str, Any]) -> dict[str, Any]:
    topic = _require(entry, "topic", str)
    stage = _require(entry, "initial_stage", str)
    statements = _require(entry, "Personas", list)
    beliefs = _optional_list(entry, "Beliefs")
    motivation = _optional_list(entry, "Motivation")
    plans = _optional_list(entry, "Acceptable Plans")
    behaviour = entry.get("Behavior") or topic
    return {
        "id": f"consistentmi_{index:02d}",
        "presenting_problem": f"You have come to talk about {topic} ({behaviour}).",
        "history": _sentences(statements),
        "goals": _sentences(plans) or "You are not sure you want to change.",
        "attitude": " ".join(
            part
            for part in (
                f"Stage of change: {stage}.",
                _sentences(beliefs),
                f"What could motivate you: {'; '.join(str(m).rstrip('.') for m in motivation)}." if motivation else "",
            )
            if part
        ),
        "tags": ["consistentmi", topic, stage.lower()],
        "source": f"ConsistentMI (MIT), idx {entry.get('idx')}",
    }


def _sentences(items: list[Any]) -> str:
    """Join list items as sentences (ConsistentMI items often lack final punctuation)."""
    parts = [str(item).strip() for item in items if str(item).strip()]
    return " ".join(part if part[-1] in ".!?" else f"{part}." for part in parts)
