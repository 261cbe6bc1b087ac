"""Scoring a filled-in questionnaire: reverse-keying, then each scale's sum or mean.

No proration: a scale with any of its items missing is missing (neither shipped instrument
defines a proration rule, and the instrument file has no field for one), with the missing
items named. A subscale whose own items are all answered is scored even if the total is not.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel

from psysim.questionnaires.instrument import Instrument


class ScaleScore(BaseModel):
    value: float | None
    """The scale's score, or None when an item it needs has no answer."""
    missing_items: list[str] = []
    """Its items without an answer (why: the result's ``item_errors``)."""


def keyed(instrument: Instrument, item_id: str, answer: float) -> float:
    """``answer`` as scored: ``min + max - answer`` for a reverse-keyed item."""
    if item_id in instrument.reverse_keyed:
        scale = instrument.response_scale
        return float(Decimal(scale.min + scale.max) - Decimal(repr(answer)))
    return answer


def score_scales(instrument: Instrument, answers: dict[str, float]) -> dict[str, ScaleScore]:
    """Every scale of ``instrument`` from the item ``answers`` (item id -> answer as given)."""
    scores: dict[str, ScaleScore] = {}
    for name, scale in instrument.scales.items():
        missing = [item_id for item_id in scale.items if item_id not in answers]
        if missing:
            scores[name] = ScaleScore(value=None, missing_items=missing)
            continue
        # decimal arithmetic: 7.3 + 6.1 + ... must not come out as 13.399999999999999
        total = sum(Decimal(repr(keyed(instrument, i, answers[i]))) for i in scale.items)
        value = total if scale.method == "sum" else total / len(scale.items)
        scores[name] = ScaleScore(value=float(round(value, 6)))
    return scores
