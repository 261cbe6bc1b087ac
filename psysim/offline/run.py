"""``psysim-offline``: the harness end to end on a real small LLM, on CPU, offline.

Installs the engine (once), assembles the model (once), serves it on 127.0.0.1, runs
Experiment 1 (and/or 2) at a small scale through Inspect's ``vllm/`` provider — the same path
as a remote vLLM server — and prints where the log is. ``--check`` turns it into the CI
regression eval: it fails unless the run succeeded, every rating parsed, the Expert's feedback
reached the Therapist, the share of replies flagged by the simulation-integrity check is at most
``--max-integrity-fail`` (default: ``check_gate`` in ``psysim/data/integrity.yaml``), and the run
fit in ``--budget`` seconds.

Sampling penalties (``--frequency-penalty``, ``--presence-penalty``, ``--repeat-penalty``) are
this offline run's own configuration, set on the role models it binds: they curb the small
model's echoes and repetition and never reach a task's defaults (the paper's setup is unchanged).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from psysim._version import add_version_argument
from psysim.calls.generation import ROLES
from psysim.dialogue.integrity import load_integrity_config
from psysim.offline.cache import OfflineError
from psysim.offline.engine import ensure_engine
from psysim.offline.model import QWEN_CODER_1_5B, ensure_model
from psysim.offline.server import LlamaCppServer, stop_on_sigterm
from psysim.safety import JUDGE_ROLE

EXPERIMENTS = ("iterative_feedback", "human_comparison")
RATING_SCORERS = ("client_satisfaction", "client_rating")
INTEGRITY_SCORER = "simulation_integrity"
SAFETY_SCORER = "safety_rubric"


@dataclass(frozen=True)
class OfflineSampling:
    """Sampling penalties of the offline run's role models (llama.cpp server parameters).

    Chosen by measurement on the offline 1.5B model (README, "Simulation integrity").
    ``repeat_penalty`` is llama.cpp's own (sent in ``extra_body``; the server's default is 1.1).
    A call that sets its own ``extra_body`` (the ``json_object`` rating) keeps the server's
    default repeat penalty; the OpenAI penalties apply to every call.
    """

    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repeat_penalty: float = 1.1


def engine_speed(server_log: str) -> tuple[float, float]:
    """(decode, prefill) tokens per second over all requests, from llama.cpp's timing lines."""
    import re

    decode = [0.0, 0.0]
    prefill = [0.0, 0.0]
    pattern = re.compile(r"(prompt eval|\s+eval) time =\s*([\d.]+) ms /\s*(\d+) (?:tokens|runs)")
    for match in pattern.finditer(server_log):
        target = prefill if match.group(1) == "prompt eval" else decode
        target[0] += float(match.group(2)) / 1000
        target[1] += int(match.group(3))
    return (decode[1] / decode[0] if decode[0] else float("nan"), prefill[1] / prefill[0] if prefill[0] else float("nan"))


@dataclass
class RunReport:
    experiment: str
    log: str
    seconds: float
    status: str
    problems: list[str] = field(default_factory=list)
    ratings: int = 0
    first_try: int = 0
    integrity: "IntegritySummary | None" = None
    safety: list[str] = field(default_factory=list)
    """Per sample, its safety score by session (``-T safety=true`` only)."""
    output_tokens: int = 0
    input_tokens: int = 0
    decode_tps: float = float("nan")
    prefill_tps: float = float("nan")


@dataclass
class IntegritySummary:
    """Simulation-integrity counts over a log's ``simulation_integrity`` scores."""

    units: int = 0
    """Held sessions (Experiment 1) or snippets (Experiment 2)."""
    failed: int = 0
    """Sessions that fail integrity, or snippets with a failing flag."""
    excluded: int = 0
    """Experiment 1: failed sessions plus the later sessions of their courses."""
    flags: dict[str, int] = field(default_factory=dict)
    """Failing flags per ``<role>:<kind>``."""
    replies: int = 0
    flagged_replies: int = 0
    truncated: int = 0
    failed_calls: int = 0
    noted: int = 0
    """Information-only flags (identical revisions)."""

    @property
    def fail_rate(self) -> float:
        return self.failed / self.units if self.units else 0.0

    @property
    def flagged_share(self) -> float:
        return self.flagged_replies / self.replies if self.replies else 0.0

    def describe(self, unit: str) -> str:
        flags = ", ".join(f"{k} {v}" for k, v in sorted(self.flags.items())) or "none"
        text = (f"{self.flagged_replies}/{self.replies} replies flagged ({self.flagged_share:.0%}); "
                f"{self.failed}/{self.units} {unit} fail ({self.fail_rate:.0%})")
        if unit == "sessions":
            text += f", {self.excluded} excluded with later sessions"
        return (f"{text}; flags: {flags}; truncated turns {self.truncated}; failed calls {self.failed_calls}"
                + (f"; identical revisions {self.noted}" if self.noted else ""))


def integrity_summary(samples: list[Any]) -> IntegritySummary:
    """Sum the ``simulation_integrity`` scores of ``samples`` (samples without one are skipped)."""
    summary = IntegritySummary()
    for sample in samples:
        score = (sample.scores or {}).get(INTEGRITY_SCORER)
        if score is None:
            continue
        value, meta = score.value, score.metadata or {}
        if "held_sessions" in value:
            summary.units += int(value["held_sessions"])
            summary.failed += int(value["sessions_failed"])
            summary.excluded += int(value["sessions_excluded"])
        else:
            summary.units += 1
            summary.failed += int(value["flagged"])
        summary.replies += int(value.get("replies", 0))
        summary.flagged_replies += int(value.get("flagged_replies", 0))
        summary.truncated += int(value.get("truncated", 0))
        summary.failed_calls += int(value.get("failed_calls", 0))
        for flag in meta.get("flags", []):
            if not flag.get("failure", True):
                summary.noted += 1
                continue
            key = f"{flag['role']}:{flag['kind']}"
            summary.flags[key] = summary.flags.get(key, 0) + 1
    return summary


def role_models(model: str, sampling: OfflineSampling, extra_roles: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every role bound (so the log labels each call's role), with the offline penalties;
    ``extra_roles`` (e.g. ``safety_judge``) are bound the same way."""
    from inspect_ai.model import GenerateConfig, get_model

    config = GenerateConfig(
        frequency_penalty=sampling.frequency_penalty,
        presence_penalty=sampling.presence_penalty,
        extra_body={"repeat_penalty": sampling.repeat_penalty},
    )
    return {role: get_model(model, config=config, memoize=False) for role in (*ROLES, *extra_roles)}


def _task(experiment: str, args: argparse.Namespace) -> Any:
    # llama-cpp-python's server enforces a schema only in its json_object form (measured)
    if experiment == "iterative_feedback":
        from psysim.tasks.iterative_feedback import iterative_feedback

        return iterative_feedback(
            condition="expert", sessions=args.sessions, turns=args.turns, rating_format="json_object",
            turn_max_tokens=args.max_tokens, seed=args.seed,
            # the feedback's token cap comes from its word limit (expert.yaml; issue 26): a reply
            # over the limit or cut at the cap is re-asked, naming the problem
            personas=args.persona_file, safety=args.safety,
        )
    from psysim.tasks.human_comparison import human_comparison

    return human_comparison(
        transcripts=args.transcripts, snippets=args.snippets, context_turns=8, rating_format="json_object", seed=args.seed,
        # the critique is a form of short fields whose token cap comes from its word limit
        # (expert.yaml; issue 26: free-form, the small model wrote 350-400-word critiques with a full
        # response); the revision runs past 120 tokens (3 of 3, measured), so responses get 2x
        response_max_tokens=2 * args.max_tokens,
    )


def run_experiment(experiment: str, model: str, args: argparse.Namespace) -> RunReport:
    from inspect_ai import eval as inspect_eval

    started = time.monotonic()
    [log] = inspect_eval(
        _task(experiment, args),
        model=model,
        model_roles=role_models(model, sampling_of(args), (JUDGE_ROLE,) if args.safety else ()),
        limit=args.personas if experiment == "iterative_feedback" else None,
        log_dir=args.log_dir,
        display=args.display,
        max_connections=2,
    )
    report = RunReport(experiment=experiment, log=log.location, seconds=time.monotonic() - started, status=log.status)
    inspect_log(log, report)
    return report


def inspect_log(log: Any, report: RunReport) -> None:
    """Count ratings, first-try parses, tokens; list problems the regression eval fails on."""
    from inspect_ai.log import read_eval_log

    full = read_eval_log(log.location, resolve_attachments=True)  # events keep long texts as attachments
    report.integrity = integrity_summary(full.samples or [])
    if full.status != "success":
        report.problems.append(f"status {full.status}: {full.error.message if full.error else ''}")
    for sample in full.samples or []:
        safety = (sample.scores or {}).get(SAFETY_SCORER)
        if safety is not None:
            report.safety.append(f"{sample.id} (epoch {sample.epoch}): {safety.answer}")
        for event in sample.events:
            if event.event == "model" and event.output and event.output.usage:
                report.output_tokens += event.output.usage.output_tokens
                report.input_tokens += event.output.usage.input_tokens
        if not sample.scores:
            report.problems.append(f"sample {sample.id}: not scored")
            continue
        score = next((sample.scores[name] for name in RATING_SCORERS if name in sample.scores), None)
        if score is None:
            report.problems.append(f"sample {sample.id}: no rating score")
            continue
        meta = score.metadata or {}
        if report.experiment == "iterative_feedback":
            sessions = meta.get("sessions", [])
            reasons = meta.get("missing_reasons", {})
            for record in sessions:
                report.ratings += 1
                report.first_try += record["rating_attempts"] == 1 and record["rating"] is not None
                if record["rating"] is None:
                    reason = reasons.get(f"session_{record['session']}", record["rating_error"])
                    report.problems.append(f"sample {sample.id} session {record['session']}: rating missing ({reason})")
            for before, after in zip(sessions, sessions[1:]):
                feedback = before.get("feedback_after")
                if not feedback or after.get("feedback_given") != feedback:
                    report.problems.append(f"sample {sample.id}: expert feedback after session {before['session']} did not reach the therapist")
                elif not _therapist_saw(sample, feedback):
                    report.problems.append(f"sample {sample.id}: feedback missing from the therapist's prompt in session {after['session']}")
        else:
            reasons = meta.get("missing_reasons", {})
            for kind, rating in meta.get("ratings", {}).items():
                report.ratings += 1
                report.first_try += rating is not None and rating["attempts"] == 1 and rating["value"] is not None
                if rating is None or rating["value"] is None:
                    reason = reasons.get(kind, rating["error"] if rating else "not rated")
                    report.problems.append(f"sample {sample.id} {kind}: rating missing ({reason})")


def _therapist_saw(sample: Any, feedback: str) -> bool:
    for event in sample.events:
        if event.event == "model" and event.role == "therapist":
            if any(m.role == "system" and feedback.strip() in m.text for m in event.input):
                return True
    return False


def sampling_of(args: argparse.Namespace) -> OfflineSampling:
    return OfflineSampling(args.frequency_penalty, args.presence_penalty, args.repeat_penalty)


def integrity_problems(report: RunReport, max_fail: float) -> list[str]:
    """The regression eval's integrity gate: at most ``max_fail`` of all replies (every role)
    may be flagged by the simulation-integrity check."""
    summary = report.integrity
    if summary is None or summary.replies == 0:
        return ["no simulation_integrity score in the log"]
    if summary.flagged_share > max_fail:
        return [f"simulation integrity: {summary.flagged_replies}/{summary.replies} replies flagged "
                f"({summary.flagged_share:.0%}, gate {max_fail:.0%})"]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="psysim-offline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_argument(parser)
    parser.add_argument("--experiment", choices=[*EXPERIMENTS, "both"], default="iterative_feedback",
                        help="which experiment to run (default iterative_feedback; both: Experiment 1, then 2)")
    parser.add_argument("--personas", type=int, default=1, help="Experiment 1: personas (default 1)")
    parser.add_argument("--sessions", type=int, default=2, help="Experiment 1: sessions (default 2)")
    parser.add_argument("--turns", type=int, default=2, help="Experiment 1: exchanges per session (default 2)")
    parser.add_argument("--persona-file", default=None,
                        help="Experiment 1: persona file (default: the shipped personas), e.g. datasets/personas/risk.yaml")
    parser.add_argument("--safety", action="store_true",
                        help="Experiment 1: score each session against the safety rubric (role safety_judge)")
    parser.add_argument("--snippets", type=int, default=2, help="Experiment 2: snippets (default 2)")
    parser.add_argument("--transcripts", default=None,
                        help="Experiment 2: transcript file (default: the shipped demo set), e.g. data/AnnoMI-simple.csv")
    parser.add_argument("--max-tokens", type=int, default=120, help="cap on each turn (Experiment 2's responses: twice this; Expert feedback and critique: 8 times)")
    parser.add_argument("--log-dir", default="logs", help="log directory (default logs)")
    parser.add_argument("--port", type=int, default=None, help="server port (default: a free one)")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    parser.add_argument("--refresh-model", action="store_true", help="download and assemble the model again")
    parser.add_argument("--check", action="store_true", help="regression eval: fail on any problem")
    parser.add_argument("--budget", type=float, default=1200.0, help="--check: max seconds per experiment")
    parser.add_argument("--display", default="plain", help="Inspect display (plain, rich, none)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of every call (default 0)")
    defaults = OfflineSampling()
    parser.add_argument("--frequency-penalty", type=float, default=defaults.frequency_penalty,
                        help=f"offline sampling (default {defaults.frequency_penalty})")
    parser.add_argument("--presence-penalty", type=float, default=defaults.presence_penalty,
                        help=f"offline sampling (default {defaults.presence_penalty})")
    parser.add_argument("--repeat-penalty", type=float, default=defaults.repeat_penalty,
                        help=f"llama.cpp repeat penalty (default {defaults.repeat_penalty})")
    gate = load_integrity_config().max_flagged_reply_share
    parser.add_argument("--max-integrity-fail", type=float, default=gate,
                        help=f"--check: max share of replies flagged by the integrity check (default {gate})")
    args = parser.parse_args(argv)
    stop_on_sigterm()

    spec = QWEN_CODER_1_5B
    experiments = EXPERIMENTS if args.experiment == "both" else (args.experiment,)
    started = time.monotonic()
    try:
        ensure_engine()
        model_path = ensure_model(spec, refresh=args.refresh_model)
        with LlamaCppServer(model_path, alias=spec.name, port=args.port, n_threads=args.threads) as server:
            print(f"server: {spec.name} ready at {server.base_url} ({time.monotonic() - started:.0f}s since start)")
            os.environ["VLLM_BASE_URL"] = server.base_url
            os.environ.setdefault("VLLM_API_KEY", "local")
            reports = []
            for experiment in experiments:
                offset = server.log_path.stat().st_size
                report = run_experiment(experiment, f"vllm/{spec.name}", args)
                with server.log_path.open(errors="replace") as handle:
                    handle.seek(offset)
                    report.decode_tps, report.prefill_tps = engine_speed(handle.read())
                reports.append(report)
    except OfflineError as ex:
        print(f"psysim-offline: error: {ex}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("psysim-offline: interrupted; the model server was stopped", file=sys.stderr)
        return 130

    failed = False
    for report in reports:
        print(
            f"\n{report.experiment}: {report.status} in {report.seconds:.0f}s; log: {report.log}\n"
            f"  ratings parsed on the first try: {report.first_try}/{report.ratings}; "
            f"tokens: {report.input_tokens} prompt, {report.output_tokens} completion; engine: decode "
            f"{report.decode_tps:.1f} tokens/s, prompt {report.prefill_tps:.1f} tokens/s"
        )
        if report.integrity is not None:
            unit = "sessions" if report.experiment == "iterative_feedback" else "snippets"
            print(f"  simulation integrity: {report.integrity.describe(unit)}")
        for line in report.safety:
            print(f"  safety (mean rubric item, -1..1): {line}")
        if args.check:
            report.problems += integrity_problems(report, args.max_integrity_fail)
            if report.seconds > args.budget:
                report.problems.append(f"took {report.seconds:.0f}s, over the budget of {args.budget:.0f}s")
            for problem in report.problems:
                print(f"  FAIL: {problem}")
            failed = failed or bool(report.problems)
    print(f"\nTotal {time.monotonic() - started:.0f}s. Browse the dialogues: inspect view --log-dir {args.log_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
