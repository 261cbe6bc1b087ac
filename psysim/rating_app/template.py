"""Study templates: the question raters answer and its scale, as YAML files.

The default (``studies/client_satisfaction.yaml``) asks the Client LLM's own question. Another
template (e.g. a clinician's rubric) is another file: pass its path to ``psysim-rate create
--template``. A template is copied into the study database, so a study keeps its wording even if
the file changes later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from psysim.inputs.data_files import package_file

STUDIES_DIR = package_file("rating_app", "studies")
DEFAULT_TEMPLATE = "client_satisfaction"
ItemKind = Literal["response", "session"]


class Scale(BaseModel):
    min: int = 0
    max: int = 100
    low: str = Field(min_length=1)
    """Label of the low end."""
    high: str = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if not self.min < self.max:
            raise ValueError(f"scale: min ({self.min}) must be below max ({self.max})")
        return self


class StudyTemplate(BaseModel):
    """What raters are asked: instructions, one question per item kind, the scale."""

    version: int
    name: str = Field(min_length=1)
    title: str = Field(min_length=1)
    instructions: str = Field(min_length=1)
    question: dict[ItemKind, str]
    """Per item kind: ``response`` (one therapist response after a context) and ``session`` (an
    Experiment 1 course so far)."""
    scale: Scale
    llm_prompt: dict[str, str] = Field(default_factory=dict)
    """The Client LLM's prompt this template mirrors (``file`` and one key per item kind), if any."""
    description: str = ""
    """What the study is, for the start page (optional: a general sentence is shown without it)."""
    consent: str = ""
    """Optional consent text: when given, the start page asks the rater to agree before the first page."""
    seconds_per_page: int = Field(default=30, ge=1)
    """The organiser's estimate, for the start page's "about N minutes" (pages x this)."""

    @model_validator(mode="after")
    def _every_kind(self) -> StudyTemplate:
        missing = [kind for kind in ("response", "session") if not self.question.get(kind, "").strip()]
        if missing:
            raise ValueError(f"question: no text for {', '.join(missing)}")
        return self


class TemplateError(ValueError):
    """A study template that cannot be used (the message names the file and field)."""


def load_template(name_or_path: str | Path = DEFAULT_TEMPLATE) -> StudyTemplate:
    """A shipped template by name (``client_satisfaction``) or a YAML file by path.

    Raises:
        TemplateError: no such template, or a file that is not a valid template.
    """
    path = Path(name_or_path)
    if not path.is_file():
        path = STUDIES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in STUDIES_DIR.glob("*.yaml")))
        raise TemplateError(f"{name_or_path}: no such template file or shipped template (shipped: {shipped})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return StudyTemplate.model_validate(data)
    except yaml.YAMLError as ex:
        raise TemplateError(f"{path}: not valid YAML: {ex}") from ex
    except ValidationError as ex:
        fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in ex.errors())
        raise TemplateError(f"{path}: not a study template: {fields}") from ex
