"""Throughput benchmark: does a paper-scale run finish at its critical path?

    python benchmarks/throughput.py                 # recommended settings (psysim-paper)
    python benchmarks/throughput.py --mode both     # Inspect's defaults first, for comparison

A scripted OpenAI-compatible server on 127.0.0.1 (psysim.testing.fake_server) answers every request
after a fixed latency (and optionally a latency per requested token); the harness reaches it
through Inspect's ``vllm/`` provider with ``VLLM_BASE_URL``, as it would a real vLLM server.
Experiment 1 runs at paper scale (3 conditions x 5 epochs x personas x 6 sessions) in one
``eval_set``; Experiment 2 at 50 snippets. The critical path is computed from the design (the
longest chain of dependent calls x latency), and, for Experiment 1, also measured in the same run
(one expert-condition sample alone, before the full run): on a shared machine the run is compared
with that baseline, which pays the same load.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import json  # noqa: E402
import urllib.request  # noqa: E402

from inspect_ai import Epochs, eval_set  # noqa: E402
from inspect_ai.log import read_eval_log  # noqa: E402

from psysim.calls.generation import ROLES  # noqa: E402
from psysim.calls.rating import RATING_MAX_TOKENS  # noqa: E402
from psysim.study.paper import paper_tasks, run_paper  # noqa: E402
from psysim.testing.fake_server import server_process  # noqa: E402

MODEL = "vllm/fake-llama"


def exp1_chain(sessions: int, turns: int, turn_tokens: int, feedback_tokens: int, latency: float, per_token: float) -> float:
    """Longest dependent chain of one expert-condition sample, in seconds: the dialogue, then
    after each session the rating and the feedback at once (the feedback only before a next
    session), so 6 sessions x 4 exchanges are 6 x 8 + 6 = 54 calls."""
    call = lambda max_tokens: latency + per_token * max_tokens  # noqa: E731
    dialogue = sessions * 2 * turns * call(turn_tokens)
    return dialogue + (sessions - 1) * max(call(RATING_MAX_TOKENS), call(feedback_tokens)) + call(RATING_MAX_TOKENS)


def exp2_chain(response_tokens: int, critique_tokens: int, latency: float, per_token: float) -> float:
    """LLM response || (critique -> revision), then the three ratings at once."""
    call = lambda max_tokens: latency + per_token * max_tokens  # noqa: E731
    return max(call(response_tokens), call(critique_tokens) + call(response_tokens)) + call(RATING_MAX_TOKENS)


def synthetic_transcripts(path: Path, count: int) -> Path:
    """``count`` short transcripts from different clients, one eligible snippet each."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["transcript_id", "client_id", "turn", "speaker", "text"])
        for i in range(count):
            writer.writerows([
                [f"s{i:03d}", f"c{i:03d}", 0, "therapist", "What brings you in today?"],
                [f"s{i:03d}", f"c{i:03d}", 1, "client", f"I have been worrying about work for {i + 2} weeks now."],
                [f"s{i:03d}", f"c{i:03d}", 2, "therapist",
                 "It sounds like the worry has followed you home too, and I wonder what a calmer week would look like."],
            ])
    return path


def session_tokens(log_path: str) -> list[tuple[int, float, float]]:
    """Mean prompt and completion tokens per session (per sample), from the log's model events."""
    log = read_eval_log(log_path)
    totals: dict[int, list[float]] = {}
    for sample in log.samples or []:
        spans = {e.id: int(e.name.split("_")[1]) for e in sample.events if e.event == "span_begin" and e.type == "session"}
        per_sample: dict[int, list[int]] = {}
        for e in sample.events:
            if e.event == "model" and e.span_id in spans and e.output.usage:
                k = spans[e.span_id]
                acc = per_sample.setdefault(k, [0, 0])
                acc[0] += e.output.usage.input_tokens
                acc[1] += e.output.usage.output_tokens
        for k, (prompt, completion) in per_sample.items():
            totals.setdefault(k, []).append((prompt, completion))
    return [(k, sum(p for p, _ in v) / len(v), sum(c for _, c in v) / len(v)) for k, v in sorted(totals.items())]


def measured_chain_seconds(args: argparse.Namespace, log_dir: Path, recommended: bool) -> float:
    """Wall time of the critical path measured on this machine now: one expert-condition sample
    (the longest chain: 6 x 8 dialogue calls + the ratings and feedback after each session) run
    alone against the same server with the same settings. On a shared machine, the whole run is
    compared with this rather than with the computed chain, as both pay the same load."""
    from psysim.tasks.iterative_feedback import iterative_feedback

    task = iterative_feedback(condition="expert", sessions=args.sessions, turns=args.turns)
    started = time.monotonic()
    if recommended:
        success, logs = run_paper(MODEL, str(log_dir), epochs=1, limit=1, tasks=[task], display="none",
                                  realtime=not args.no_realtime)
    else:
        success, logs = eval_set([task], log_dir=str(log_dir), model=MODEL, model_roles={r: MODEL for r in ROLES},
                                 epochs=1, limit=1, display="none")
    seconds = time.monotonic() - started
    if not success or any(log.status != "success" for log in logs):
        raise SystemExit("baseline (one sample alone) failed")
    return seconds


def measure(name: str, args: argparse.Namespace, tasks_for: str, recommended: bool, workdir: Path, base_url: str) -> None:
    if tasks_for == "iterative_feedback":
        tasks = paper_tasks(("iterative_feedback",), sessions=args.sessions, turns=args.turns)
        chain = exp1_chain(args.sessions, args.turns, 300, 600, args.latency, args.per_token)
        limit, epochs = args.personas, args.epochs
    else:
        transcripts = synthetic_transcripts(workdir / "transcripts.csv", args.snippets)
        tasks = paper_tasks(("human_comparison",), snippets=args.snippets, transcripts=str(transcripts))
        chain = exp2_chain(300, 400, args.latency, args.per_token)
        limit, epochs = None, 1
    log_dir = str(workdir / f"logs-{tasks_for}-{name}")
    measured_chain = None
    if tasks_for == "iterative_feedback" and not args.no_baseline:
        measured_chain = measured_chain_seconds(args, workdir / f"logs-chain-{name}", recommended)
    urllib.request.urlopen(f"{base_url}/stats?reset").read()
    started, cpu = time.monotonic(), time.process_time()
    if recommended:
        success, logs = run_paper(MODEL, log_dir, epochs=epochs, limit=limit, tasks=tasks, display="none",
                                  realtime=not args.no_realtime)
    else:  # Inspect's defaults
        success, logs = eval_set(tasks, log_dir=log_dir, model=MODEL, model_roles={r: MODEL for r in ROLES},
                                 epochs=Epochs(epochs, []), limit=limit, display="none")
    wall, cpu = time.monotonic() - started, time.process_time() - cpu
    with urllib.request.urlopen(f"{base_url}/stats") as response:
        stats = json.load(response)
    failed = [f"{log.eval.task}: {log.status} {log.error.message if log.error else ''}" for log in logs if log.status != "success"]
    if not success or failed:
        raise SystemExit(f"benchmark run failed: {failed or 'eval_set incomplete'}")
    calls, peak = stats["requests"], stats["peak_in_flight"]
    serial = calls * args.latency + args.per_token * stats["requested_tokens"]
    print(f"\n## {tasks_for} — {name} ({'psysim-paper settings' if recommended else 'Inspect defaults'})")
    print("| total calls | critical path | wall | wall / critical path | wall / serial | peak concurrency | harness CPU / call |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {calls} | {chain:.2f}s | {wall:.2f}s | {wall / chain:.2f} | {wall / serial:.3f} | {peak} | {1000 * cpu / calls:.1f} ms |")
    if measured_chain is not None:
        print(f"\nmeasured chain (one expert-condition sample alone, same server and settings, this run): "
              f"{measured_chain:.2f}s = {measured_chain / chain:.3f}x the computed critical path; "
              f"wall / measured chain = **{wall / measured_chain:.3f}** (goal at 3 s per call: at most 1.10)")
    print(f"load average (1, 5, 15 min) after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if tasks_for == "iterative_feedback":
        expert_log = next(log.location for log in logs if log.eval.task_args.get("condition") == "expert")
        print("\n| session | prompt tokens / sample | completion tokens / sample |\n|---|---|---|")
        for k, prompt, completion in session_tokens(expert_log):
            print(f"| {k} | {prompt:.0f} | {completion:.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["after", "before", "both"], default="after")
    parser.add_argument("--experiment", choices=["iterative_feedback", "human_comparison", "both"], default="both")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request (default 0.1)")
    parser.add_argument("--per-token", type=float, default=0.0, help="extra seconds per requested max token")
    parser.add_argument("--personas", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--snippets", type=int, default=50)
    parser.add_argument("--no-realtime", action="store_true", help="psysim-paper --no-realtime")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the measured chain (one Experiment 1 sample alone, run first as the baseline)")
    args = parser.parse_args()
    modes = {"after": [("after", True)], "before": [("before", False)], "both": [("before", False), ("after", True)]}[args.mode]
    experiments = ["iterative_feedback", "human_comparison"] if args.experiment == "both" else [args.experiment]
    print(f"latency {args.latency}s per call (+{args.per_token}s per requested token); "
          f"Experiment 1: 3 conditions x {args.epochs} epochs x {args.personas} personas x {args.sessions} sessions "
          f"x {args.turns} turns; Experiment 2: {args.snippets} snippets")
    # One server process for the whole benchmark: it runs apart from Inspect's event loop, as a
    # real server would, and Inspect's vllm provider keeps the first base URL it sees per model.
    server = server_process("--latency", str(args.latency), "--per-token", str(args.per_token),
                            "--max-requests", "200000", "--max-seconds", "3600")
    with server as base_url, tempfile.TemporaryDirectory() as tmp:
        os.environ["VLLM_BASE_URL"], os.environ["VLLM_API_KEY"] = base_url, "local"
        for experiment in experiments:
            for name, recommended in modes:
                measure(name, args, experiment, recommended, Path(tmp), base_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
