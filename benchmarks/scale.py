"""Scale-out benchmark: N harness shards, K fake replicas behind nginx, and a projection.

    python benchmarks/scale.py                                   # N, K in 1 2 4, paper scale
    python benchmarks/scale.py --shards 1 2 --replicas 1 --personas 2 --epochs 1 --sessions 1 \\
        --turns 1 --latency 0.01                                  # a smoke run in seconds

Each of the K replicas is ``python -m psysim.testing.fake_server`` (fixed latency plus a time per
requested token, at most ``--replica-cap`` requests at once: a replica's batch limit, the rest
queue). nginx (Debian's package) balances them (``least_conn``) behind one base URL, which
Inspect's ``vllm/`` provider reaches as it would a vLLM router. N processes run
``psysim-paper --shard k/N`` (N = 1: one unsharded process) at the same time.

Printed per (N, K): wall time against the longest chain of dependent calls and against the
replicas' capacity (total service time / (K x cap)), and the harness CPU per call. Fake
replicas sleep rather than compute, so on a small machine the shards compete only for harness
CPU: the table shows how far one harness process and the balancer carry, not GPU speed. Then a
projection from the measured per-call costs and the stated assumptions about a real replica.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from throughput import exp1_chain  # noqa: E402

from psysim.calls.critique import form_max_tokens, load_form  # noqa: E402
from psysim.study.nginx_balancer import nginx_balancer  # noqa: E402
from psysim.study.size import Hardware  # noqa: E402
from psysim.testing.fake_server import server_process  # noqa: E402

# the task's defaults: turn_max_tokens, and feedback_max_tokens derived from the feedback's word limit
TURN_TOKENS, FEEDBACK_TOKENS = 300, form_max_tokens(load_form("feedback_form"))
CONDITIONS = 3


@dataclass
class Design:
    personas: int = 4
    epochs: int = 5
    sessions: int = 6
    turns: int = 4

    def calls_per_persona_run(self) -> dict[str, int]:
        """Model calls of one complete course: the dialogue, a rating per session, and the
        Expert's feedback before every next session (``expert`` only)."""
        base = self.sessions * (2 * self.turns + 1)
        return {"expert": base + self.sessions - 1, "none": base, "generic": base}

    def calls(self) -> int:
        return self.personas * self.epochs * sum(self.calls_per_persona_run().values())


@dataclass
class Cell:
    shards: int
    replicas: int
    calls: int
    wall: float
    chain: float
    replica_bound: float
    harness_cpu: float
    peaks: list[int]
    prompt_tokens: int
    completion_tokens: int

    @property
    def cpu_per_call(self) -> float:
        return self.harness_cpu / self.calls


def service_time(stats: dict, latency: float, per_token: float) -> float:
    return stats["requests"] * latency + per_token * stats["requested_tokens"]


def startup_cpu() -> float:
    """CPU seconds a harness process spends importing before its first call (subtracted per shard)."""
    process = subprocess.Popen([sys.executable, "-c", "import psysim.study.paper, tasks.iterative_feedback, "
                                "inspect_ai.model._providers.vllm"], cwd=REPO)
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0
    return usage.ru_utime + usage.ru_stime


def run_cell(args: argparse.Namespace, design: Design, shards: int, replicas: int, workdir: Path,
             startup: float = 0.0) -> Cell:
    """One (N, K) measurement: K replicas, nginx, N psysim-paper processes at once."""
    replica_options = ["--latency", str(args.latency), "--per-token", str(args.per_token),
                       "--max-concurrency", str(args.replica_cap), "--max-seconds", str(args.max_seconds),
                       "--max-requests", "2000000"]
    with ExitStack() as stack:
        urls = [stack.enter_context(server_process(*replica_options)) for _ in range(replicas)]
        balancer = stack.enter_context(nginx_balancer(urls, max_seconds=args.max_seconds))
        env = {**os.environ, "VLLM_BASE_URL": balancer, "VLLM_API_KEY": "local", "VLLM_DEFAULT_SERVER_ARGS": "{}"}
        common = [sys.executable, "-m", "psysim.study.paper", "--model", "vllm/fake-llama", "--epochs", str(design.epochs),
                  "--sessions", str(design.sessions), "--turns", str(design.turns), "--limit", str(design.personas),
                  "--retry-attempts", "0", "--no-preflight",  # the study's calls only: no probe call per shard
                  *(["--no-realtime"] if args.no_realtime else [])]
        log_dir = workdir / f"n{shards}-k{replicas}"
        started = time.monotonic()
        processes = [
            subprocess.Popen([*common, "--log-dir", str(log_dir), *(["--shard", f"{k}/{shards}"] if shards > 1 else [])],
                             env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for k in range(1, shards + 1)
        ]
        cpu, failures = 0.0, []
        for process in processes:
            _, status, usage = os.wait4(process.pid, 0)  # the child's own CPU time
            cpu += usage.ru_utime + usage.ru_stime
            process.returncode = os.waitstatus_to_exitcode(status)
            if process.returncode != 0:
                failures.append((process.args[-1], process.stdout.read()[-2000:] if process.stdout else ""))
        wall = time.monotonic() - started
        if failures:
            raise SystemExit(f"harness shard(s) failed (N={shards}, K={replicas}): {failures}")
        stats = [json.load(urllib.request.urlopen(f"{url}/stats")) for url in urls]
    calls = sum(s["requests"] for s in stats)
    total_service = sum(service_time(s, args.latency, args.per_token) for s in stats)
    return Cell(
        shards=shards, replicas=replicas, calls=calls, wall=wall,
        chain=exp1_chain(design.sessions, design.turns, TURN_TOKENS, FEEDBACK_TOKENS, args.latency, args.per_token),
        replica_bound=total_service / (replicas * args.replica_cap), harness_cpu=max(0.0, cpu - shards * startup),
        peaks=[s["peak_serving"] for s in stats], prompt_tokens=sum(s["prompt_tokens"] for s in stats),
        completion_tokens=sum(s["completion_tokens"] for s in stats),
    )


def measured_table(cells: list[Cell]) -> list[str]:
    lines = ["| shards N | replicas K | calls | wall | chain | replica bound | wall / chain | "
             "wall / max(chain, replica bound) | harness CPU / call | peak served at once per replica |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c in cells:
        bound = max(c.chain, c.replica_bound)
        lines.append(f"| {c.shards} | {c.replicas} | {c.calls} | {c.wall:.1f} s | {c.chain:.1f} s | "
                     f"{c.replica_bound:.1f} s | {c.wall / c.chain:.2f} | {c.wall / bound:.2f} | "
                     f"{1000 * c.cpu_per_call:.1f} ms | {', '.join(map(str, c.peaks))} |")
    return lines


REPLICA = Hardware()


@dataclass
class Assumptions:
    """What a real replica does (flags of this script; none of it is measured here)."""

    # one source for the replica's speeds: psysim-paper's size table (psysim/study/size.py)
    gpus_per_replica: int = REPLICA.gpus
    output_tokens_per_s: float = REPLICA.gpus * REPLICA.generate_tps_per_gpu
    prefill_tokens_per_s: float = REPLICA.gpus * REPLICA.prefill_tps_per_gpu
    prefix_cache_hit: float = REPLICA.prefix_cache_share
    completion_tokens_per_call: float = 150.0
    projected_replicas: int = 8
    projected_shards: int = 8
    seconds_per_call: float = 3.0


STUDIES = [
    ("the paper's study (4 personas x 3 conditions x 5 runs)", Design(4, 5, 6, 4)),
    ("CACTUS-size (450 personas x 3 conditions x 5 runs)", Design(450, 5, 6, 4)),
]
LARGE_STUDY_CALLS = 400_000


def projection(cells: list[Cell], a: Assumptions) -> list[str]:
    """Calls, tokens, GPU-hours and wall-time bounds for the paper's and larger studies."""
    cpu_per_call = min(c.cpu_per_call for c in cells)  # the least contended measurement
    prompt_per_call = sum(c.prompt_tokens for c in cells) / sum(c.calls for c in cells)
    design = Design()
    chain_calls = design.sessions * 2 * design.turns + design.sessions
    rows = [(name, d.calls()) for name, d in STUDIES] + [("a study of 400,000 calls", LARGE_STUDY_CALLS)]
    lines = [
        "Assumptions (flags): a replica is a 70B model on "
        f"{a.gpus_per_replica} GPUs (tensor parallel) generating {a.output_tokens_per_s:.0f} output tokens/s and "
        f"prefilling {a.prefill_tokens_per_s:.0f} tokens/s at full batch, {a.prefix_cache_hit:.0%} of prompt tokens "
        f"served from vLLM's prefix cache; {a.completion_tokens_per_call:.0f} completion tokens per call (the fake "
        f"replies are shorter); {prompt_per_call:.0f} prompt tokens per call (measured here, with the fake's short "
        f"replies: real prompts are longer); {a.seconds_per_call:.0f} s per call under load; harness CPU "
        f"{1000 * cpu_per_call:.1f} ms per call (measured); {a.projected_replicas} replicas, {a.projected_shards} harness "
        f"shards on cores of their own; a chain of {chain_calls} dependent calls per persona-run.", "",
        "| study | calls | prompt tokens | completion tokens | GPU-hours | harness core-hours | "
        "wall bound: chain | wall bound: GPUs | wall bound: harness |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, calls in rows:
        prompt, completion = calls * prompt_per_call, calls * a.completion_tokens_per_call
        replica_seconds = completion / a.output_tokens_per_s + prompt * (1 - a.prefix_cache_hit) / a.prefill_tokens_per_s
        gpu_hours = replica_seconds * a.gpus_per_replica / 3600
        core_seconds = calls * cpu_per_call
        lines.append(
            f"| {name} | {calls:,} | {prompt / 1e6:,.1f} M | {completion / 1e6:,.1f} M | {gpu_hours:,.1f} | "
            f"{core_seconds / 3600:.2f} | {chain_calls * a.seconds_per_call / 60:.1f} min | "
            f"{replica_seconds / a.projected_replicas / 60:.1f} min | {core_seconds / a.projected_shards / 60:.1f} min |")
    lines += ["", "Wall time is at least the largest of the three bounds: the chain (every persona-run in flight "
              "at once), the replicas' GPU time shared out, the harness CPU shared out over its shards."]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4], help="harness processes N")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4], help="fake replicas K")
    parser.add_argument("--latency", type=float, default=0.25, help="seconds per call (default 0.25)")
    parser.add_argument("--per-token", type=float, default=0.0005, help="seconds per requested max token")
    parser.add_argument("--replica-cap", type=int, default=16, help="requests one replica serves at once")
    parser.add_argument("--personas", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--no-realtime", action="store_true", help="psysim-paper --no-realtime")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="every server stops by itself after this")
    for name, value in vars(Assumptions()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value, help="projection")
    args = parser.parse_args(argv)
    design = Design(args.personas, args.epochs, args.sessions, args.turns)
    assumptions = Assumptions(**{k: getattr(args, k) for k in vars(Assumptions())})
    print(f"{os.cpu_count()} CPU cores; {design.calls()} calls per run (3 conditions x {design.epochs} runs x "
          f"{design.personas} personas x {design.sessions} sessions x {design.turns} exchanges); {args.latency} s per "
          f"call + {args.per_token} s per requested token; at most {args.replica_cap} requests at once per replica; "
          "nginx least_conn in front of the replicas.\n")
    startup = startup_cpu()
    print(f"Harness start-up (imports) {startup:.1f} s CPU per process, subtracted from the CPU per call.\n")
    cells = []
    with tempfile.TemporaryDirectory() as tmp:
        for shards in args.shards:
            if shards > design.personas:  # a shard with no persona has nothing to run
                print(f"N = {shards} skipped: more shards than the {design.personas} personas", flush=True)
                continue
            for replicas in args.replicas:
                cells.append(run_cell(args, design, shards, replicas, Path(tmp), startup))
                print(measured_table(cells[-1:])[-1], flush=True)
    print("\n## Measured\n")
    print("\n".join(measured_table(cells)))
    ceiling = 1 / min(c.cpu_per_call for c in cells)
    print(f"\nCalls/s ceiling of one harness process (one core, {1000 / ceiling:.1f} ms CPU per call): {ceiling:.0f}. "
          f"This machine has {os.cpu_count()} cores: with more shards than free cores the shards share them, so "
          "shards help here only while a core is idle; on a cluster each shard gets its own cores.")
    print("\n## Projection\n")
    print("\n".join(projection(cells, assumptions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
