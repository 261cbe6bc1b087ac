"""Re-judging a finished log with another client model, without re-running the dialogues.

    inspect score LOG --scorer scorers/rejudge.py@rejudge -S rater=llama8b \\
        --model-role client=vllm/meta-llama/Llama-3.1-8B-Instruct --action append

The ``client`` role bound on the command line rates again, with the same rating machinery:

- Experiment 1 (``iterative_feedback``): each held session, from the persona, the baseline and
  the transcript of all sessions so far, with exactly the in-loop rating prompt but **without
  the earlier ratings** (the in-loop client remembers what it rated after each earlier session;
  a re-judge sees the dialogue only, so its ratings are not anchored on earlier ones).
- Experiment 2 (``human_comparison``): each candidate response, with exactly the Experiment 2
  prompt (:func:`scorers.client_rating.rate_candidates`).

``Score.value`` keys are named by the rater label (``<rater>_session_1``, ``<rater>_human``...),
so several re-judges appended to one log stay apart; ``Score.metadata["rater"]`` holds the label
and ``missing_reasons`` maps every NaN key to ``"<code>: <detail>"``. Inspect names the score
``rejudge`` (``rejudge1``, ... when appended again).
"""

from __future__ import annotations

import math

from inspect_ai.model import get_model
from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState
from inspect_ai.util import collect, store_as

from psysim.calls.generation import CallSettings, StopRecord, counts_model_calls
from psysim.calls.raters import REJUDGE_MARK, check_rater
from psysim.inputs.personas import Persona
from psysim.inputs.snippets import Snippet
from psysim.scorers.client_rating import rate_candidates
from psysim.solvers.client_simulator import client_satisfaction_rating
from psysim.solvers.course import TherapyCourse, require_course
from psysim.solvers.human_comparison import Comparison

NAN = float("nan")


@scorer(metrics={"*": [mean(), stderr()]})
def rejudge(
    rater: str,
    temperature: float | None = 0.1,
    seed: int | None = 0,
    rating_format: str = "auto",
    max_attempts: int = 3,
    baseline: float | None = None,
) -> Scorer:
    """Ratings of the ``client`` role bound now, under keys ``<rater>_<item>``.

    Args:
        rater: Label naming this rater in the score keys and the report (e.g. ``llama8b``).
        temperature: Sampling temperature of the re-judge.
        seed: Base seed (``seed + epoch`` per sample, as in the run). With the same model and
            seed as the run, a re-judge of Experiment 2 repeats the run's calls: pass another
            seed for a test-retest.
        rating_format: ``auto``, ``json_schema``, ``json_object`` or ``text``.
        max_attempts: Times the client is asked before a rating is recorded as missing.
        baseline: Experiment 1: the baseline stated to the client; default: the run's (from the
            ``client_satisfaction`` score, present with ``--action append``).
    """
    label = check_rater(rater)

    @counts_model_calls
    async def score(state: TaskState, target: Target) -> Score:
        call = CallSettings.for_epoch(temperature, seed, state.epoch)
        stops: list[StopRecord] = []
        if "persona" in state.metadata:
            value, missing_reasons, ratings = await _sessions(state, call, stops)
        elif "snippet" in state.metadata and "group" not in state.metadata:  # "group": a rater-validity snippet
            # a candidate the run did not produce (or a sample that failed before any) stays
            # missing with upstream_failed, as in the run
            snippet = Snippet.model_validate(state.metadata["snippet"])
            results, value, missing_reasons = await rate_candidates(
                snippet, store_as(Comparison), call, rating_format, max_attempts, stops
            )
            ratings = {kind: None if r is None else r.model_dump() for kind, r in results.items()}
        else:
            raise ValueError(
                f"rejudge: sample {state.sample_id} is neither an Experiment 1 course (no persona) nor an "
                "Experiment 2 snippet: re-judge iterative_feedback or human_comparison logs"
            )
        return Score(
            value={f"{label}_{key}": v for key, v in value.items()},
            explanation=f"rater {label}: " + ", ".join(
                f"{key}={'missing' if math.isnan(v) else f'{v:g}'}" for key, v in value.items()
            ),
            metadata={
                REJUDGE_MARK: True,
                "rater": label,
                "client_model": str(get_model(role="client")),
                "missing_reasons": {f"{label}_{key}": why for key, why in missing_reasons.items()},
                "ratings": ratings,
                "stops": [s.model_dump() for s in stops],
            },
        )

    async def _sessions(
        state: TaskState, call: CallSettings, stops: list[StopRecord]
    ) -> tuple[dict[str, float], dict[str, str], dict[str, object]]:
        persona = Persona.model_validate(state.metadata["persona"])
        course = require_course(store_as(TherapyCourse), state.sample_id, state.epoch)
        start = _baseline(state, baseline)
        value: dict[str, float] = {}
        missing_reasons: dict[str, str] = {}
        ratings: dict[str, object] = {}
        held = [record for record in course.sessions if record.status == "complete"]
        for record in course.sessions:
            if record.status != "complete":
                missing_reasons[f"session_{record.session}"] = (
                    record.missing_reason or "" if record.status == "not_held"
                    else f"upstream_failed: session {record.session} was not held in full ({record.missing_reason})"
                )
        # independent calls (no earlier ratings are shown), so they run concurrently
        results = await collect(*(
            client_satisfaction_rating(
                persona, record.session, [t for t in course.turns if t.session <= record.session], [], start,
                call, rating_format, max_attempts, stops,
            )
            for record in held
        ))
        by_session = {record.session: result for record, result in zip(held, results)}
        for record in course.sessions:
            key = f"session_{record.session}"
            result = by_session.get(record.session)
            value[key] = NAN if result is None or result.value is None else float(result.value)
            if result is not None:
                ratings[key] = result.model_dump()
                if result.value is None:
                    missing_reasons[key] = result.reason or "rating_unparsed"
        return value, missing_reasons, ratings

    return score


def _baseline(state: TaskState, given: float | None) -> float:
    if given is not None:
        return float(given)
    earlier = (state.scores or {}).get("client_satisfaction")
    if earlier is not None and isinstance(earlier.metadata, dict) and "baseline" in earlier.metadata:
        return float(earlier.metadata["baseline"])
    raise ValueError(
        f"rejudge: sample {state.sample_id}: the run's baseline is not in its scores (scored with --action "
        "overwrite?): pass it with -S baseline=<0-100>"
    )
