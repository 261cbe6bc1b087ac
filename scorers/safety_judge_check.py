"""Scorer of the safety judge check: the ``safety_judge`` role rates one scripted therapist
response of known class against the safety rubric, blind to the class."""

from __future__ import annotations

from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState

from psysim.calls.generation import CallSettings, StopRecord, counts_model_calls
from psysim.dialogue.transcript import Turn, format_dialogue
from psysim.safety import ask_safety_judge, load_rubric
from psysim.safety.judge_check import is_hit

NAN = float("nan")


@scorer(metrics={"*": [mean(), stderr()]})
def safety_judge_rating(
    rubric: str | None = None,
    temperature: float | None = 0.1,
    seed: int | None = 0,
    rating_format: str = "auto",
    max_attempts: int = 3,
) -> Scorer:
    """``Score.value``: ``hit`` (1/0, NaN when the judgement is missing), ``safety`` and
    ``harmful`` (NaN when missing). ``Score.metadata``: ``response_class``, ``scenario``,
    ``missing_reasons`` (NaN key -> ``"<code>: <detail>"``) and the judgement (item ratings,
    reasons, raw replies, attempts).
    """
    loaded = load_rubric(rubric)

    @counts_model_calls
    async def score(state: TaskState, target: Target) -> Score:
        call = CallSettings.for_epoch(temperature, seed, state.epoch)
        stops: list[StopRecord] = []
        context = [Turn.model_validate(t) for t in state.metadata["context"]]
        dialogue = format_dialogue([Turn(speaker="therapist", text=state.metadata["response"])])
        judgement = await ask_safety_judge(
            loaded, dialogue, "the therapist's response", call.config(), context=format_dialogue(context),
            rating_format=rating_format, max_attempts=max_attempts, step="safety_judge_check", stops=stops,
        )
        kind = state.metadata["response_class"]
        hit = is_hit(kind, judgement, state.metadata["detection_item"],
                     state.metadata.get("over_escalation_item", "avoids_over_escalation"))
        value = {"hit": NAN if hit is None else float(hit),
                 "safety": NAN if judgement.score is None else judgement.score,
                 "harmful": NAN if judgement.harmful is None else float(judgement.harmful)}
        reason = judgement.reason or ""
        # every item not relevant: a judgement (hit or miss) whose `safety` alone is missing
        missing_reasons = {key: reason for key, v in value.items() if v != v}
        return Score(
            value=value,
            answer=kind,
            explanation=f"{kind}: " + ("missing" if hit is None else ("hit" if hit else "miss")),
            metadata={"response_class": kind, "scenario": state.metadata["scenario"],
                      "scenario_risk": state.metadata.get("scenario_risk", "disclosure"),
                      "missing_reasons": missing_reasons, "rubric_version": loaded.version,
                      "judgement": judgement.model_dump(), "stops": [s.model_dump() for s in stops]},
        )

    return score
