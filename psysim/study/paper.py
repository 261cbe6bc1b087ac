"""``psysim-paper``: Experiment 1's three conditions (and optionally Experiment 2) in one
Inspect ``eval_set``, with concurrency that keeps a vLLM server busy.

Every session depends on the one before, so one persona-run is a chain of dependent calls;
the only way to finish at that chain's length is to run all chains at once: all conditions
(``max_tasks``), all persona x run samples (``max_samples``) and enough connections for them
(``max_connections``). vLLM batches the concurrent requests on the GPU.

Every model call is bounded (``--max-retries``, ``--attempt-timeout``, ``--timeout``), so a
server that keeps failing ends the run with an error status and a non-zero exit instead of
retrying forever; run the same command again to resume (finished samples already written into the
log are reused: :mod:`psysim.study.resume`). A vLLM
server that Inspect starts itself binds 127.0.0.1 (``--vllm-host``).

Before any call it prints the study's size (samples, calls, tokens, and the wall time and
GPU-hours on the stated hardware, also at the paper's size, 15 personas and CACTUS size;
``--dry-run`` stops there), then runs a preflight (:mod:`psysim.study.preflight`: the provider,
a managed vLLM server's package and credentials, one probe call and its finish reason) and
exits non-zero with a plain message if something is missing (``--no-preflight`` skips it).
Default personas: the 15 shipped in ``datasets/personas/original.yaml``; the paper's study is
``--limit 4`` (4 personas x 3 conditions x 5 runs x 6 sessions x 4 turns = 3,340 calls).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from inspect_ai import Epochs, Task, eval_set
from inspect_ai.model import GenerateConfig, get_model

from psysim._version import add_version_argument
from psysim.calls.generation import ROLES
from psysim.prompts.therapist_styles import DEFAULT_STYLE, THERAPIST_STYLES
from psysim.solvers.feedback_policy import CONDITIONS
from psysim.study.log_series import short_task_name
from psysim.study.log_status import describe
from psysim.study.preflight import PreflightError, plain, run_preflight
from psysim.study.resume import discard_sample_buffers
from psysim.study.sharding import SHARD_ARG, Shard
from psysim.study.size import (
    CACTUS_PERSONAS,
    PAPER_EPOCHS,
    PAPER_PERSONAS,
    PAPER_SESSIONS,
    PAPER_TURNS,
    Hardware,
    ReplyLengths,
    StudySize,
    describe_assumptions,
    exp1_size,
    exp2_size,
    size_table,
)

# One 70B generation under a full batch takes well under a minute; 10 minutes leaves room for a
# long queue and for the first call, which waits for a managed vLLM server to start (Inspect
# waits up to 10 minutes for it by default).
DEFAULT_ATTEMPT_TIMEOUT = 600
# Inspect attempts per call after the first (each attempt: the OpenAI client's own 2 quick retries,
# then Inspect waits 5 s): rides out a brief outage, not a dead server.
DEFAULT_MAX_RETRIES = 5
# A whole call, all attempts included: the first call's server start plus two full attempts.
DEFAULT_TIMEOUT = 1800
# Times eval_set runs a failed task again at once (finished samples are reused).
DEFAULT_RETRY_ATTEMPTS = 2
VLLM_SERVER_ARGS = "VLLM_DEFAULT_SERVER_ARGS"
DEFAULT_VLLM_HOST = "127.0.0.1"


@dataclass(frozen=True)
class CallBounds:
    """Bounds on every model call (Inspect's defaults: unlimited retries, no timeouts)."""

    max_retries: int = DEFAULT_MAX_RETRIES
    timeout: int = DEFAULT_TIMEOUT
    attempt_timeout: int = DEFAULT_ATTEMPT_TIMEOUT

    def config(self) -> GenerateConfig:
        return GenerateConfig(max_retries=self.max_retries, timeout=self.timeout, attempt_timeout=self.attempt_timeout)


def bind_vllm_host(host: str | None) -> str:
    """Make a vLLM server started by Inspect bind ``host``, via ``VLLM_DEFAULT_SERVER_ARGS``.

    Inspect's managed server binds 0.0.0.0 unless its server args name a host. ``host`` None
    keeps a host already set in ``VLLM_DEFAULT_SERVER_ARGS``, else binds 127.0.0.1; other
    server args in that variable are kept.

    Returns:
        The host the server will bind.
    """
    current = os.environ.get(VLLM_SERVER_ARGS, "").strip()
    try:
        args = json.loads(current) if current else {}
    except json.JSONDecodeError as ex:
        raise ValueError(f"{VLLM_SERVER_ARGS} is not valid JSON ({ex}): {current}") from None
    if not isinstance(args, dict):
        raise ValueError(f"{VLLM_SERVER_ARGS} must be a JSON object, e.g. '{{\"tensor_parallel_size\": 4}}': {current}")
    args["host"] = host or args.get("host") or DEFAULT_VLLM_HOST
    os.environ[VLLM_SERVER_ARGS] = json.dumps(args)
    return args["host"]


def paper_tasks(
    experiments: tuple[str, ...] = ("iterative_feedback",),
    personas: str | None = None,
    sessions: int = 6,
    turns: int = 4,
    snippets: int | None = 50,
    transcripts: str | None = None,
    therapist_styles: tuple[str, ...] = (DEFAULT_STYLE,),
    questionnaires: str | None = None,
    shard: Shard | None = None,
    **task_args: Any,
) -> list[Task]:
    from psysim.tasks.human_comparison import human_comparison
    from psysim.tasks.iterative_feedback import iterative_feedback

    if shard is not None:  # only when sharded, so an unsharded run's series is unchanged
        task_args[SHARD_ARG] = str(shard)
    tasks: list[Task] = []
    if "iterative_feedback" in experiments:
        # a style other than the standard one is a separate design (a negative control), run
        # only when asked; the standard style is left at its default so its series is unchanged
        # (and so are runs without questionnaires)
        tasks += [
            iterative_feedback(condition=c, sessions=sessions, turns=turns, personas=personas,
                               **({} if style == DEFAULT_STYLE else {"therapist": style}),
                               **({"questionnaires": questionnaires} if questionnaires else {}), **task_args)
            for style in therapist_styles
            for c in CONDITIONS
        ]
    if "human_comparison" in experiments:
        tasks.append(human_comparison(transcripts=transcripts, snippets=snippets, **task_args))
    return tasks


def _questionnaires_of(task: Task) -> list[str]:
    return list((task.metadata or {}).get("questionnaires", []))


def concurrency(tasks: list[Task], epochs: int, limit: int | None, max_connections: int | None) -> dict[str, int]:
    """All tasks, all samples and enough connections for every chain to be in flight at once."""
    samples = max(min(len(t.dataset), limit or len(t.dataset)) * epochs for t in tasks)
    # Experiment 2 issues up to three calls at once per sample (LLM response + critique; ratings);
    # Experiment 1 one during a session, then the rating, the feedback and one per questionnaire at once
    per_sample = max(3 if short_task_name(t.name) == "human_comparison" else 2 + len(_questionnaires_of(t)) for t in tasks)
    connections = max_connections or max(samples * per_sample * len(tasks), 16)
    return {"max_tasks": len(tasks), "max_samples": samples, "max_connections": connections}


def run_paper(
    model: str,
    log_dir: str,
    epochs: int = 5,
    limit: int | None = None,
    max_connections: int | None = None,
    tasks: list[Task] | None = None,
    realtime: bool = True,
    bounds: CallBounds = CallBounds(),
    retry_attempts: int = DEFAULT_RETRY_ATTEMPTS,
    **eval_args: Any,
) -> tuple[bool, list[Any]]:
    """Run ``tasks`` (default: Experiment 1's three conditions) in one resumable eval_set.

    Args:
        model: Model for every role.
        log_dir: The eval set's log directory (run again with the same one to resume).
        epochs: Independent runs per persona; per-run scores are kept.
        limit: First N samples of each task.
        max_connections: Default: one per concurrent call.
        tasks: The tasks.
        realtime: False stops streaming sample events for live viewing in ``inspect view``
            (finished samples still show): about a fifth less CPU per model call in the harness.
        bounds: Retries and timeouts of every call, every role.
        retry_attempts: Times a failed task is run again at once, reusing finished samples.
        **eval_args: Further eval_set arguments.

    Returns:
        eval_set's (success, log headers).
    """
    tasks = tasks if tasks is not None else paper_tasks()
    settings = concurrency(tasks, epochs, limit, max_connections)
    # a resume reuses only samples written whole into the interrupted logs (psysim/study/resume.py)
    if interrupted := discard_sample_buffers(log_dir):
        print(f"resuming {len(interrupted)} interrupted log(s): samples already in them are reused; samples not yet "
              "written into them run again", file=sys.stderr)
    call_config = bounds.config()
    return eval_set(
        tasks,
        log_dir=log_dir,
        model=model,
        # every role bound, so the log labels each call's role; with the bounds, because role
        # models inherit max_retries and timeout from the eval but not attempt_timeout
        model_roles={role: get_model(model, config=call_config, memoize=False) for role in ROLES},
        epochs=Epochs(epochs, []),  # per-run scores kept, as configs/paper.yaml
        limit=limit,
        log_realtime=realtime,
        retry_attempts=retry_attempts,
        **settings,
        **call_config.model_dump(exclude_none=True),
        **eval_args,
    )


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def positive_or_zero(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def shard_argument(text: str) -> Shard:
    try:
        return Shard.parse(text, field="--shard")
    except ValueError as ex:
        raise argparse.ArgumentTypeError(str(ex)) from None


def study_sizes(tasks: list[Task], args: argparse.Namespace, limit: int | None) -> list[StudySize]:
    """This run's size, then the reference sizes (the paper's, 15 personas, CACTUS) of the same design."""
    from psysim.inputs.personas import load_personas
    from psysim.prompts import DEFAULT_GENERIC_FEEDBACK, DEFAULT_GUIDELINES
    from psysim.questionnaires import instrument_specs

    personas = load_personas(args.personas)
    conditions = tuple(f"{c}" for _ in dict.fromkeys(args.therapist_styles) for c in CONDITIONS)
    texts = {"guidelines": DEFAULT_GUIDELINES.read_text(encoding="utf-8"),
             "generic_feedback": DEFAULT_GENERIC_FEEDBACK.read_text(encoding="utf-8")}
    q = len(instrument_specs(args.questionnaires))
    sizes: list[StudySize] = []
    if "iterative_feedback" in args.experiments:
        n = min(limit or len(personas), len(personas))
        sizes.append(exp1_size(f"this run: Experiment 1, {n} personas x {len(conditions)} conditions x {args.epochs} "
                               f"runs x {args.sessions} sessions x {args.turns} turns", personas[:n], n, args.epochs,
                               args.sessions, args.turns, conditions, questionnaires=q, **texts))
    exp2 = [t for t in tasks if short_task_name(t.name) == "human_comparison"]
    if exp2:
        contexts = [str(sample.input if isinstance(sample.input, str) else sample.input[-1].text)
                    for sample in list(exp2[0].dataset)[:limit]]
        size = exp2_size(f"this run: Experiment 2, {len(contexts)} snippets x {args.epochs} runs", contexts,
                         args.epochs, guidelines=texts["guidelines"])
        sizes = [replace(sizes[0] + size, label=f"{sizes[0].label}; + Experiment 2, {len(contexts)} snippets")] \
            if sizes else [size]
    design = f"x 3 conditions x {PAPER_EPOCHS} runs x {PAPER_SESSIONS} sessions x {PAPER_TURNS} turns"
    paper = exp1_size(f"the paper's study: Experiment 1, {PAPER_PERSONAS} personas {design}", personas[:PAPER_PERSONAS],
                      PAPER_PERSONAS, PAPER_EPOCHS, PAPER_SESSIONS, PAPER_TURNS, **texts)
    shipped = exp1_size(f"15 personas {design}", personas[:15], 15, PAPER_EPOCHS, PAPER_SESSIONS, PAPER_TURNS, **texts)
    cactus = shipped.scaled(f"CACTUS-size: {CACTUS_PERSONAS} personas {design}", CACTUS_PERSONAS / 15)
    return sizes + [paper, shipped, cactus]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="psysim-paper", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_argument(parser)
    parser.add_argument("--model", default="vllm/meta-llama/Llama-3.1-70B-Instruct",
                        help="model of every role (default vllm/meta-llama/Llama-3.1-70B-Instruct)")
    parser.add_argument("--log-dir", default="logs/paper", help="the eval set's directory; the same one resumes (default logs/paper)")
    parser.add_argument("--experiments", nargs="+", default=["iterative_feedback"],
                        choices=["iterative_feedback", "human_comparison"],
                        help="experiments in the eval set (default iterative_feedback)")
    parser.add_argument("--therapist-styles", nargs="+", default=[DEFAULT_STYLE], choices=list(THERAPIST_STYLES),
                        help=f"Experiment 1 therapist styles, each with every condition (default {DEFAULT_STYLE}; "
                             "add poor for the negative control: a deliberately poor therapist)")
    parser.add_argument("--epochs", type=positive, default=5, help="independent runs (paper: 5)")
    parser.add_argument("--sessions", type=positive, default=6, help="Experiment 1: sessions per course (paper: 6)")
    parser.add_argument("--turns", type=positive, default=4, help="Experiment 1: therapist turns per session (paper: 4)")
    parser.add_argument("--limit", type=positive, default=None, help="first N personas / snippets only")
    parser.add_argument("--personas", default=None, help="persona file (default: shipped personas)")
    parser.add_argument("--transcripts", default=None, help="Experiment 2 transcripts (default: demo set)")
    parser.add_argument("--questionnaires", default=None,
                        help="Experiment 1: instruments the client fills in after each session, e.g. srs,wai_sr "
                             "(default: none)")
    parser.add_argument("--shard", type=shard_argument, default=None, metavar="K/N",
                        help="run only shard K of N of the personas/snippets (all runs of each in one shard); "
                             "logs go to LOG_DIR/shard-K-of-N; N processes (any machines) with the same options "
                             "and --shard 1/N .. N/N together run the whole study; psysim-report LOG_DIR merges them")
    parser.add_argument("--max-connections", type=int, default=None, help="default: one per concurrent call")
    parser.add_argument("--no-realtime", action="store_true",
                        help="no live view of running samples (less harness CPU per call)")
    parser.add_argument("--max-retries", type=positive_or_zero, default=DEFAULT_MAX_RETRIES,
                        help=f"Inspect retries per model call (default {DEFAULT_MAX_RETRIES})")
    parser.add_argument("--attempt-timeout", type=positive, default=DEFAULT_ATTEMPT_TIMEOUT,
                        help=f"seconds for one attempt of a call (default {DEFAULT_ATTEMPT_TIMEOUT})")
    parser.add_argument("--timeout", type=positive, default=DEFAULT_TIMEOUT,
                        help=f"seconds for a call, all attempts included (default {DEFAULT_TIMEOUT})")
    parser.add_argument("--retry-attempts", type=positive_or_zero, default=DEFAULT_RETRY_ATTEMPTS,
                        help=f"times a failed task is run again, reusing finished samples (default {DEFAULT_RETRY_ATTEMPTS})")
    parser.add_argument("--vllm-host", default=None,
                        help=f"host a vLLM server started by Inspect binds (default: the host in "
                             f"{VLLM_SERVER_ARGS}, else {DEFAULT_VLLM_HOST})")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the study's size and projected time, then stop: no preflight, no call")
    parser.add_argument("--no-preflight", action="store_true",
                        help="skip the preflight (provider, vLLM package, credentials, one probe call)")
    hardware = parser.add_argument_group("projection (assumed hardware; printed with the size table)")
    defaults = Hardware()
    hardware.add_argument("--gpus", type=positive, default=defaults.gpus, help=f"GPUs (default {defaults.gpus})")
    hardware.add_argument("--tokens-per-second-per-gpu", type=float, default=defaults.generate_tps_per_gpu,
                          help=f"output tokens/s per GPU at full batch (default {defaults.generate_tps_per_gpu:g})")
    hardware.add_argument("--prefill-tokens-per-second-per-gpu", type=float, default=defaults.prefill_tps_per_gpu,
                          help=f"prompt tokens/s per GPU at full batch (default {defaults.prefill_tps_per_gpu:g})")
    hardware.add_argument("--sequence-tokens-per-second", type=float, default=defaults.sequence_tps,
                          help=f"output tokens/s of one sequence in a busy batch (default {defaults.sequence_tps:g})")
    args = parser.parse_args(argv)
    for name in ("tokens_per_second_per_gpu", "prefill_tokens_per_second_per_gpu", "sequence_tokens_per_second"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    try:
        bind_vllm_host(args.vllm_host)
    except ValueError as ex:
        parser.error(str(ex))
    shard: Shard | None = args.shard
    try:
        tasks = paper_tasks(tuple(args.experiments), personas=args.personas, transcripts=args.transcripts,
                            sessions=args.sessions, turns=args.turns,
                            therapist_styles=tuple(dict.fromkeys(args.therapist_styles)),
                            questionnaires=args.questionnaires, shard=shard)
    except ValueError as ex:  # e.g. a shard with no samples
        parser.error(str(ex))
    # the first L samples of the whole study are a prefix of each shard (round robin)
    limit = shard.limit(args.limit) if shard is not None else args.limit
    if limit == 0:
        parser.error(f"--shard {shard} --limit {args.limit}: this shard has none of the first {args.limit} samples")
    log_dir = str(Path(args.log_dir) / shard.label) if shard is not None else args.log_dir
    machine = Hardware(gpus=args.gpus, generate_tps_per_gpu=args.tokens_per_second_per_gpu,
                       prefill_tps_per_gpu=args.prefill_tokens_per_second_per_gpu,
                       sequence_tps=args.sequence_tokens_per_second)
    try:
        sizes = study_sizes(tasks, args, limit)
    except ValueError as ex:
        parser.error(str(ex))
    print(f"Study size{f' (shard {shard}: its share of the study)' if shard else ''} and projection, before any call:")
    print(size_table(sizes, machine))
    print(describe_assumptions(ReplyLengths(), machine))
    if args.dry_run:
        print("dry run: no preflight, no model call, nothing written")
        return 0
    if not args.no_preflight:
        try:
            for line in run_preflight(args.model, timeout=args.attempt_timeout):
                print(f"preflight: {line}")
        except PreflightError as ex:
            print(f"psysim-paper: error: preflight failed: {plain(str(ex))}", file=sys.stderr)
            print("nothing was run (fix the above, or pass --no-preflight to skip the check)", file=sys.stderr)
            return 2
    success, logs = run_paper(
        args.model, log_dir, epochs=args.epochs, limit=limit, max_connections=args.max_connections,
        tasks=tasks, realtime=not args.no_realtime, retry_attempts=args.retry_attempts,
        bounds=CallBounds(max_retries=args.max_retries, timeout=args.timeout, attempt_timeout=args.attempt_timeout),
    )
    for log in logs:
        print(plain(describe(log)))
    print(f"{'complete' if success else 'incomplete (run again to resume)'}: {log_dir}; "
          f"report: psysim-report {args.log_dir} -o reports/")
    return 0 if success else 1


if __name__ == "__main__":
    sys.exit(main())
