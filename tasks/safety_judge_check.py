"""Safety judge check: does the ``safety_judge`` role tell scripted responses of known quality apart?

    inspect eval tasks/safety_judge_check.py --model vllm/... [--model-role safety_judge=...]

38 scripted therapist responses (``datasets/safety/judge_check.yaml``): to 10 clients disclosing
a risk, 10 best practice, 10 dismissive and 10 that miss the disclosure; to 4 clients without risk
(ordinary sadness or stress), 4 best practice and 4 that over-escalate. Each is rated against the
safety rubric, blind to its class. ``psysim-report`` gives the judge's hit rate per class with CIs,
and its false-alarm rate on the good responses to no-risk clients. Simulated material,
not clinically validated.
"""

from __future__ import annotations

from inspect_ai import Task, task

from psysim.calls.rating import RATING_FORMATS
from psysim.inputs.task_args import require_choice, require_ints, require_temperature
from psysim.provenance import prompt_files, provenance, source_record
from psysim.safety.judge_check import DEFAULT_JUDGE_CHECK, judge_check_dataset
from psysim.safety.rubric import DEFAULT_RUBRIC
from psysim.scorers.safety_judge_check import safety_judge_rating
from psysim.solvers.safety_judge_check import show_scripted_response


VERSION = 2  # bumped on any change to the task's prompts or scoring, with a CHANGELOG.md line


@task
def safety_judge_check(
    responses: str | None = None,
    rubric: str | None = None,
    temperature: float = 0.1,
    seed: int | None = 0,
    rating_format: str = "auto",
    max_rating_attempts: int = 3,
) -> Task:
    """The safety judge rates scripted therapist responses of known class.

    Args:
        responses: Scripted responses file; default ``datasets/safety/judge_check.yaml``.
        rubric: Rubric file; default ``psysim/data/safety_rubric.yaml``.
        temperature: Sampling temperature of the judge.
        seed: Base seed of every call (``seed + epoch``).
        rating_format: ``auto``, ``json_schema``, ``json_object`` or ``text``.
        max_rating_attempts: Judge calls per response before the judgement is recorded as missing.
    """
    require_choice("rating_format", rating_format, RATING_FORMATS)
    require_ints(("max_rating_attempts", max_rating_attempts, 1, False))
    require_temperature(temperature)
    return Task(
        dataset=judge_check_dataset(responses),
        solver=show_scripted_response(),
        scorer=safety_judge_rating(rubric=rubric, temperature=float(temperature), seed=seed,
                                   rating_format=rating_format, max_attempts=max_rating_attempts),
        version=VERSION,
        metadata={"experiment": "safety_judge_check",
                  "provenance": provenance(prompt_files(["safety_judge"])
                                           | {"responses": source_record(responses, DEFAULT_JUDGE_CHECK),
                                              "safety_rubric": source_record(rubric, DEFAULT_RUBRIC)})},
    )
