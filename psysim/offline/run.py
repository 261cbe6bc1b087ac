"""``psysim-offline``: the harness end to end on a real small LLM, on CPU, offline.

Installs the engine (once), assembles the model (once), serves it on 127.0.0.1, runs
Experiment 1 (and/or 2) at a small scale through Inspect's ``vllm/`` provider — the same path
as a remote vLLM server — and prints where the log is. ``--check`` turns it into the CI
regression eval: it fails unless the run succeeded, every rating parsed, the Expert's feedback
reached the Therapist, and the run fit in ``--budget`` seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from psysim.generation import ROLES
from psysim.offline.cache import OfflineError
from psysim.offline.engine import ensure_engine
from psysim.offline.model import QWEN_CODER_1_5B, ensure_model
from psysim.offline.server import LlamaCppServer, stop_on_sigterm

EXPERIMENTS = ("iterative_feedback", "human_comparison")


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
    output_tokens: int = 0
    input_tokens: int = 0
    decode_tps: float = float("nan")
    prefill_tps: float = float("nan")


def _task(experiment: str, args: argparse.Namespace) -> Any:
    # llama-cpp-python's server enforces a schema only in its json_object form (measured)
    if experiment == "iterative_feedback":
        from tasks.iterative_feedback import iterative_feedback

        return iterative_feedback(
            condition="expert", sessions=args.sessions, turns=args.turns, rating_format="json_object",
            turn_max_tokens=args.max_tokens, feedback_max_tokens=2 * args.max_tokens,
        )
    from tasks.human_comparison import human_comparison

    return human_comparison(
        snippets=args.snippets, context_turns=8, rating_format="json_object",
        response_max_tokens=args.max_tokens, critique_max_tokens=2 * args.max_tokens,
    )


def run_experiment(experiment: str, model: str, args: argparse.Namespace) -> RunReport:
    from inspect_ai import eval as inspect_eval

    started = time.monotonic()
    [log] = inspect_eval(
        _task(experiment, args),
        model=model,
        model_roles={role: model for role in ROLES},  # bound, so the log labels every call's role
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
    if full.status != "success":
        report.problems.append(f"status {full.status}: {full.error.message if full.error else ''}")
    for sample in full.samples or []:
        for event in sample.events:
            if event.event == "model" and event.output and event.output.usage:
                report.output_tokens += event.output.usage.output_tokens
                report.input_tokens += event.output.usage.input_tokens
        if not sample.scores:
            report.problems.append(f"sample {sample.id}: not scored")
            continue
        [score] = sample.scores.values()
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="psysim-offline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", choices=[*EXPERIMENTS, "both"], default="iterative_feedback")
    parser.add_argument("--personas", type=int, default=1, help="Experiment 1: personas (default 1)")
    parser.add_argument("--sessions", type=int, default=2, help="Experiment 1: sessions (default 2)")
    parser.add_argument("--turns", type=int, default=2, help="Experiment 1: exchanges per session (default 2)")
    parser.add_argument("--snippets", type=int, default=2, help="Experiment 2: demo snippets (default 2)")
    parser.add_argument("--max-tokens", type=int, default=120, help="cap on each turn (feedback: twice this)")
    parser.add_argument("--log-dir", default="logs")
    parser.add_argument("--port", type=int, default=None, help="server port (default: a free one)")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    parser.add_argument("--refresh-model", action="store_true", help="download and assemble the model again")
    parser.add_argument("--check", action="store_true", help="regression eval: fail on any problem")
    parser.add_argument("--budget", type=float, default=1200.0, help="--check: max seconds per experiment")
    parser.add_argument("--display", default="plain", help="Inspect display (plain, rich, none)")
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
        if args.check:
            if report.seconds > args.budget:
                report.problems.append(f"took {report.seconds:.0f}s, over the budget of {args.budget:.0f}s")
            for problem in report.problems:
                print(f"  FAIL: {problem}")
            failed = failed or bool(report.problems)
    print(f"\nTotal {time.monotonic() - started:.0f}s. Browse the dialogues: inspect view --log-dir {args.log_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
