"""Questionnaire instruments as data: one YAML file per instrument.

A file holds the items, the response scale (range, decimals allowed, anchor labels), the
reverse-keyed items, the scales that are scored (a total and any subscales, each a sum or a
mean of its items), the citation and the licence note. Adding an instrument means adding one
file to ``psysim/questionnaires/instruments/`` (or passing the path of one). Every field is
checked when the task is built, before any model call, and an error names the file and field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from inspect_ai.util import JSONSchema
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from psysim.inputs.data_files import (
    first_error,
    package_file,
    read_yaml_mapping,
    repeated,
)
from psysim.inputs.input_error import InputError

INSTRUMENTS_DIR = package_file("questionnaires", "instruments")
_NAME = r"^[a-z][a-z0-9_]*$"
_ITEM_ID = r"^[A-Za-z0-9_]+$"


class InstrumentFileError(InputError):
    """An instrument file that cannot be used (message names the file and the field)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResponseScale(_Strict):
    """The answer every item takes: a number from ``min`` to ``max``."""

    min: int
    max: int
    decimals: int = Field(default=0, ge=0, le=3)
    """Digits allowed after the decimal point (0: whole numbers only; SRS: 1, a mark on a 10 cm
    line read to the millimetre)."""
    anchors: dict[int, str] = Field(default_factory=dict)
    """Labels of scale points, e.g. ``{1: Seldom, ..., 5: Always}`` (may be only the ends)."""

    @model_validator(mode="after")
    def _check(self) -> "ResponseScale":
        if self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        outside = [v for v in self.anchors if not self.min <= v <= self.max]
        if outside:
            raise ValueError(f"anchors outside {self.min}-{self.max}: {outside}")
        return self


class Item(_Strict):
    id: str = Field(pattern=_ITEM_ID)
    """The item's key in the client's JSON reply (``"1"`` ... ``"12"``)."""
    text: str = Field(min_length=1)
    anchors: dict[int, str] = Field(default_factory=dict)
    """Item-specific anchor labels (SRS: each item has its own two ends); else the scale's."""


class Scale(_Strict):
    """A score computed from items: their sum or mean (after reverse-keying)."""

    items: list[str] = Field(min_length=1)
    method: Literal["sum", "mean"] = "sum"


class Instrument(_Strict):
    """One questionnaire, as read from its file."""

    id: str = Field(pattern=_NAME)
    """Name used in ``-T questionnaires=...`` and in the store."""
    key: str = Field(pattern=_NAME)
    """Prefix of its score keys: ``<key>_<scale>_s<session>`` (``srs_total_s3``, ``wai_bond_s3``)."""
    name: str
    version: int
    wording: Literal["adapted", "licensed"]
    """``adapted``: paraphrased items, not the validated wording; ``licensed``: the instrument's
    own wording, supplied by a user who holds its licence."""
    wording_note: str
    citation: str
    licence: str
    instructions: str
    """What the client is told before the items (time frame, how to answer)."""
    response_scale: ResponseScale
    items: list[Item] = Field(min_length=1)
    reverse_keyed: list[str] = Field(default_factory=list)
    """Items scored as ``min + max - answer`` before the scales are computed."""
    scales: dict[str, Scale] = Field(min_length=1)
    """Scored scales by name (``total``, ``goal``, ...)."""
    scoring_note: str = ""
    source: str = Field(default="", exclude=True)
    """The file it was read from (set by the loader)."""

    @model_validator(mode="after")
    def _check(self) -> "Instrument":
        ids = [item.id for item in self.items]
        if duplicates := repeated(ids):
            raise ValueError(f"items: duplicate id {duplicates}")
        for name, scale in self.scales.items():
            if not re.match(_NAME, name):
                raise ValueError(f"scales: name {name!r} must match {_NAME}")
            unknown = [i for i in scale.items if i not in ids]
            if unknown:
                raise ValueError(f"scales.{name}.items: unknown item ids {unknown}")
            if len(set(scale.items)) != len(scale.items):
                raise ValueError(f"scales.{name}.items: an item is listed twice")
        unknown = [i for i in self.reverse_keyed if i not in ids]
        if unknown:
            raise ValueError(f"reverse_keyed: unknown item ids {unknown}")
        for item in self.items:
            outside = [v for v in item.anchors if not self.response_scale.min <= v <= self.response_scale.max]
            if outside:
                raise ValueError(f"items ({item.id}).anchors: outside the response scale: {outside}")
        return self

    def item_ids(self) -> list[str]:
        return [item.id for item in self.items]

    def score_key(self, scale: str, session: int) -> str:
        return f"{self.key}_{scale}_s{session}"

    def scale_range(self, scale: str) -> tuple[float, float]:
        """The lowest and highest value ``scale`` can take."""
        n = len(self.scales[scale].items)
        low, high = self.response_scale.min, self.response_scale.max
        return (low * n, high * n) if self.scales[scale].method == "sum" else (low, high)

    def anchors_of(self, item: Item) -> dict[int, str]:
        return dict(sorted((item.anchors or self.response_scale.anchors).items()))

    def json_schema(self) -> JSONSchema:
        """The structured reply: one number per item, all required, nothing else.

        Integers where the scale takes whole numbers. (Inspect's OpenAI-compatible providers
        drop ``minimum``/``maximum``; the parser enforces the range whatever the engine does.)
        """
        scale = self.response_scale
        kind = "integer" if scale.decimals == 0 else "number"
        properties = {
            item.id: JSONSchema(type=kind, minimum=scale.min, maximum=scale.max, description=item.text)
            for item in self.items
        }
        return JSONSchema(
            type="object", properties=properties, required=self.item_ids(), additionalProperties=False
        )


def shipped_instruments() -> list[str]:
    """Names of the instruments shipped in ``INSTRUMENTS_DIR``."""
    return sorted(path.stem for path in INSTRUMENTS_DIR.glob("*.yaml"))


def load_instrument(spec: str) -> Instrument:
    """The instrument named ``spec`` (a shipped id such as ``srs``) or read from the file ``spec``.

    Raises:
        InstrumentFileError: unknown name, missing or malformed file (naming file and field).
    """
    spec = spec.strip()
    if re.match(_NAME, spec) and not spec.endswith((".yaml", ".yml")):
        file = INSTRUMENTS_DIR / f"{spec}.yaml"
        if not file.is_file():
            raise InstrumentFileError(
                f"unknown questionnaire {spec!r}: shipped are {', '.join(shipped_instruments())}, "
                "or give the path of an instrument YAML file"
            )
    else:
        file = Path(spec).expanduser()
    data = read_yaml_mapping(file, InstrumentFileError, "instrument")
    try:
        instrument = Instrument.model_validate(data)
    except ValidationError as ex:
        field, message = first_error(ex)
        raise InstrumentFileError(f"{file}: field '{field}': {message}") from ex
    return instrument.model_copy(update={"source": str(file)})


def instrument_specs(specs: str | list[str] | None) -> list[str]:
    """The names or paths in a ``questionnaires`` argument (``"srs,wai_sr"``, a list, None or ``"none"``)."""
    if specs is None or specs == "none":
        return []
    names = specs.split(",") if isinstance(specs, str) else list(specs)
    return [str(name).strip() for name in names if str(name).strip()]


def load_instruments(specs: str | list[str] | None) -> list[Instrument]:
    """Instruments from a task argument: ``None``/``"none"``/empty (none), ``"srs,wai_sr"`` or a list.

    Raises:
        InstrumentFileError: a bad name or file, or two instruments sharing an id or score key.
    """
    instruments = [load_instrument(name) for name in instrument_specs(specs)]
    for attribute in ("id", "key"):
        values = [getattr(instrument, attribute) for instrument in instruments]
        if twice := repeated(values):
            raise InstrumentFileError(f"questionnaires: {attribute} {twice} given more than once")
    return instruments
