"""Experiment 1: a Therapist improves across sessions with feedback, rated by the Client.

    inspect eval tasks/iterative_feedback.py --model vllm/meta-llama/Llama-3.1-70B-Instruct

Roles: ``therapist``, ``client``, ``expert`` (unbound roles fall back to ``--model``).
"""

from __future__ import annotations

from inspect_ai import Task, task

from psysim.calls.failed_calls import DEFAULT_MAX_REPLY_ATTEMPTS
from psysim.calls.rating import RATING_FORMATS
from psysim.dialogue.integrity import INTEGRITY_FILE
from psysim.inputs.input_error import TaskArgumentError
from psysim.inputs.personas import DEFAULT_PERSONAS, persona_dataset
from psysim.inputs.task_args import (
    require_bool,
    require_choice,
    require_ints,
    require_temperature,
)
from psysim.prompts import DEFAULT_GENERIC_FEEDBACK, DEFAULT_GUIDELINES, text_or_file
from psysim.prompts.therapist_styles import DEFAULT_STYLE, style_prompt
from psysim.provenance import file_record, prompt_files, provenance, source_record, text_or_file_record
from psysim.questionnaires import instrument_specs, load_instruments
from psysim.safety.rubric import DEFAULT_RUBRIC
from psysim.scorers.client_questionnaires import client_questionnaires
from psysim.scorers.client_satisfaction import client_satisfaction
from psysim.scorers.safety_rubric import safety_rubric
from psysim.scorers.simulation_integrity import simulation_integrity
from psysim.solvers.course import CourseSettings
from psysim.solvers.feedback_policy import CONDITIONS
from psysim.solvers.therapy_sessions import therapy_sessions
from psysim.study.sharding import shard_dataset

VERSION = 2  # bumped on any change to the task's prompts or scoring, with a CHANGELOG.md line
DEFAULT_SESSIONS = 6  # the study's number of sessions
DEFAULT_TURNS = 4  # therapist-client exchanges per session (the study does not fix one)
DEFAULT_BASELINE = 30  # satisfaction stated to the client before session 1, as in the study
DEFAULT_TEMPERATURE = 0.1  # the study's temperature for all agents
DEFAULT_TURN_MAX_TOKENS = 300


@task
def iterative_feedback(
    condition: str = "expert",
    therapist: str = DEFAULT_STYLE,
    sessions: int = DEFAULT_SESSIONS,
    turns: int = DEFAULT_TURNS,
    baseline: float = DEFAULT_BASELINE,
    temperature: float = DEFAULT_TEMPERATURE,
    personas: str | None = None,
    guidelines: str | None = None,
    generic_feedback: str | None = None,
    rating_format: str = "auto",
    max_rating_attempts: int = 3,
    max_reply_attempts: int = DEFAULT_MAX_REPLY_ATTEMPTS,
    seed: int | None = 0,
    turn_max_tokens: int = DEFAULT_TURN_MAX_TOKENS,
    feedback_max_tokens: int | None = None,
    questionnaires: str | list[str] | None = None,
    safety: bool = False,
    safety_rubric_file: str | None = None,
    shard: str | None = None,
) -> Task:
    """Sequential therapy sessions with Client ratings and per-condition therapist feedback.

    Args:
        condition: ``expert`` (Expert LLM feedback), ``none`` (no feedback) or ``generic``
            (fixed non-specific feedback; the Expert is not called).
        therapist: Therapist style: ``standard`` (default) or ``poor``, a deliberately poor
            therapist as a negative control for the rater (combinable with every condition).
        sessions: Sessions per simulated client (paper: 6).
        turns: Therapist-client exchanges per session; the therapist speaks first.
        baseline: Satisfaction (0-100) stated to the client before the first session (paper: 30).
        temperature: Sampling temperature for every role (paper: 0.1).
        personas: Persona file (native YAML/JSON, CACTUS or ConsistentMI); default: the shipped
            original personas.
        guidelines: Expert guidelines, as text or a path to a text file; default: the working
            alliance guidelines shipped with the prompts.
        generic_feedback: Feedback text (or file) for the ``generic`` condition.
        rating_format: ``auto``, ``json_schema`` (OpenAI/vLLM structured output),
            ``json_object`` (llama-cpp-python server) or ``text`` (prompt + strict parser).
        max_rating_attempts: Times the client is asked before a rating is recorded as missing.
        max_reply_attempts: Times a therapist/client turn or the Expert's feedback is asked
            when the reply is empty or an error message, before the call is recorded as
            failed and the course ends (default 3: the first ask and 2 re-asks).
        seed: Base seed; each epoch uses ``seed + epoch``. ``None`` for no seed.
        turn_max_tokens: Max tokens of one therapist or client turn.
        feedback_max_tokens: Max tokens of the Expert's feedback; ``null`` (default) derives it
            from the feedback's word limit (``expert.yaml``: 200 words -> 540 tokens). Feedback
            over the limit or writing lines for the therapist is re-asked (``psysim.calls.critique``).
        questionnaires: Instruments the client fills in after each session, beside its rating
            (one call each): shipped names (``srs``, ``wai_sr``) or instrument YAML files,
            comma-separated (``srs,wai_sr``) or a list. Default: none (no extra calls).
        safety: Score each complete session's therapist turns against the safety rubric after
            the course (role ``safety_judge``, falling back to the main model; called in every
            condition). Default off: no extra calls.
        safety_rubric_file: Rubric file for ``safety``; default ``psysim/data/safety_rubric.yaml``.
        shard: ``K/N``: only shard K of N of the personas (round robin; all runs of a persona
            in one shard, seeds unchanged), so N processes together run exactly the samples of
            one run (``psysim-paper --shard``). Default: all personas.
    """
    require_choice("condition", condition, CONDITIONS)
    style_prompt(therapist)  # ValueError naming the known styles
    require_choice("rating_format", rating_format, RATING_FORMATS)
    require_ints(
        ("sessions", sessions, 1, False),
        ("turns", turns, 1, False),
        ("max_rating_attempts", max_rating_attempts, 1, False),
        ("max_reply_attempts", max_reply_attempts, 1, False),
        ("turn_max_tokens", turn_max_tokens, 1, False),
        ("feedback_max_tokens", feedback_max_tokens, 1, True),
    )
    if not isinstance(baseline, (int, float)) or not 0 <= baseline <= 100:
        raise TaskArgumentError(f"baseline must be a number from 0 to 100; got {baseline!r}")
    require_temperature(temperature)
    require_bool("safety", safety)

    instruments = load_instruments(questionnaires)
    settings = CourseSettings(
        condition=condition,
        sessions=sessions,
        turns=turns,
        baseline=float(baseline),
        guidelines=text_or_file(guidelines, DEFAULT_GUIDELINES),
        generic_feedback=text_or_file(generic_feedback, DEFAULT_GENERIC_FEEDBACK),
        rating_format=rating_format,
        max_rating_attempts=max_rating_attempts,
        turn_max_tokens=turn_max_tokens,
        feedback_max_tokens=feedback_max_tokens,
        temperature=float(temperature),
        seed=seed,
        max_reply_attempts=max_reply_attempts,
        therapist=therapist,
        questionnaires=instruments,
    )
    scorers = [client_satisfaction(sessions=sessions, baseline=float(baseline)), simulation_integrity()]
    if instruments:  # a separate scorer, so a run without questionnaires scores as before
        scorers.append(client_questionnaires(instrument_specs(questionnaires), sessions=sessions))
    if safety:  # a separate scorer after the course, so a run without it costs nothing more
        scorers.append(safety_rubric(
            sessions=sessions, rubric=safety_rubric_file, temperature=float(temperature), seed=seed,
            rating_format=rating_format, max_attempts=max_rating_attempts,
        ))
    inputs = prompt_files([style_prompt(therapist), "client", "expert", "rating", "reask"]
                          + (["questionnaire"] if instruments else []) + (["safety_judge"] if safety else []))
    inputs |= {"personas": source_record(personas, DEFAULT_PERSONAS), "integrity": file_record(INTEGRITY_FILE),
               "guidelines": text_or_file_record(guidelines, DEFAULT_GUIDELINES),
               "generic_feedback": text_or_file_record(generic_feedback, DEFAULT_GENERIC_FEEDBACK)}
    inputs |= {f"instrument:{i.id}": file_record(i.source) for i in instruments}
    if safety:
        inputs["safety_rubric"] = source_record(safety_rubric_file, DEFAULT_RUBRIC)
    return Task(
        dataset=shard_dataset(persona_dataset(personas), shard),
        solver=therapy_sessions(settings),
        scorer=scorers,
        version=VERSION,
        metadata={"experiment": "iterative_feedback", "condition": condition, "therapist": therapist,
                  "provenance": provenance(inputs)}
        | ({"questionnaires": [i.id for i in instruments]} if instruments else {})
        | ({"safety": True} if safety else {}),
    )
