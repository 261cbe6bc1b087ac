"""Validated-questionnaire style instruments filled in by the simulated client (Experiment 1).

One YAML file per instrument (``instruments/``); :mod:`.instrument` reads and checks it,
:mod:`.asking` asks the client for all items in one structured reply, :mod:`.parsing` reads
the reply strictly, :mod:`.scoring` computes totals and subscales without proration.
"""

from psysim.questionnaires.asking import (
    QuestionnaireResult,
    ask_questionnaire,
    questionnaire_prompt,
)
from psysim.questionnaires.instrument import (
    INSTRUMENTS_DIR,
    Instrument,
    InstrumentFileError,
    instrument_specs,
    load_instrument,
    load_instruments,
    shipped_instruments,
)
from psysim.questionnaires.parsing import ParsedAnswers, judge_answer, parse_answers
from psysim.questionnaires.scoring import ScaleScore, score_scales

__all__ = [
    "INSTRUMENTS_DIR",
    "Instrument",
    "InstrumentFileError",
    "ParsedAnswers",
    "QuestionnaireResult",
    "ScaleScore",
    "ask_questionnaire",
    "instrument_specs",
    "judge_answer",
    "load_instrument",
    "load_instruments",
    "parse_answers",
    "questionnaire_prompt",
    "score_scales",
    "shipped_instruments",
]
