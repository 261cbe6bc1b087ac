"""Does ``psysim-report`` keep up with a study 100x the paper's size? (issue 28)

    python benchmarks/report_scale.py                       # 15, 150 and 450 personas
    python benchmarks/report_scale.py --personas 450 --work DIR   # one size; logs kept in DIR for a re-run

Experiment 1 with P personas x 5 runs x 6 sessions x 3 conditions (450 personas: 40,500 rated
sessions). Running that through model calls would take an hour, so the logs are written directly:
a tiny study is run for real by the scripted demo model (``report_speed.make_logs``: the real
task, solver and scorers, so every field the report reads is as a real run writes it), and each of
its three logs is then scaled up with Inspect's own streaming log writer (``EvalRecorder``, the one
``eval`` uses): every persona-run is a copy of a template sample under a new id and epoch, its
session ratings shifted by a persona effect, a run effect and rating noise (seeded), so that the
mixed model has variance to estimate. Only the ratings differ from the template; dialogues repeat.

Each report runs in a fresh process (``/usr/bin/time -v``: wall time and peak RSS, imports
included) with ``--no-png``. Goal: 450 personas in under 2 minutes and 4 GB, time growing no
faster than linearly in samples. The load average is printed with each timing: the machine may be
shared. DEMO NUMBERS: speed and memory only, nothing about therapy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from inspect_ai.log import EvalLog, EvalSample, read_eval_log, read_eval_log_sample, read_eval_log_sample_summaries
from inspect_ai.log._recorders.eval import EvalRecorder  # what eval() writes with; streams sample by sample
from shortuuid import uuid

sys.path.insert(0, str(Path(__file__).resolve().parent))

SIZES = (15, 150, 450)
TIME_GOAL, MEMORY_GOAL = 120.0, 4 * 1024**3
TEMPLATE_PERSONAS = 2  # persona-runs of the real template study, per condition
FLUSH_EVERY = 50  # samples written to the zip at a time (memory stays at a few samples' worth)


def template_logs(directory: Path, sessions: int, turns: int) -> list[Path]:
    """A tiny Experiment 1 run for real by the demo model: one log per condition."""
    from report_speed import make_logs

    make_logs(directory, TEMPLATE_PERSONAS, 1, sessions, turns)
    return sorted(directory.glob("*.eval"))


def _shifted(sample: EvalSample, shift: list[float], sample_id: str, epoch: int) -> EvalSample:
    """``sample`` as persona-run (``sample_id``, ``epoch``), its session ratings plus ``shift``
    (clipped to 0-100): in the score value and in the per-session records of its metadata."""
    score = sample.scores["client_satisfaction"]
    value = dict(score.value)
    metadata = dict(score.metadata or {})
    sessions = [dict(s) for s in metadata.get("sessions") or []]
    ratings: dict[int, float] = {}
    for key in [k for k in value if re.fullmatch(r"session_\d+", k)]:
        k = int(key.removeprefix("session_"))
        if isinstance(value[key], (int, float)):
            ratings[k] = value[key] = float(min(100, max(0, round(value[key] + shift[k - 1]))))
    for record in sessions:
        if record.get("session") in ratings and record.get("rating") is not None:
            record["rating"] = ratings[record["session"]]
            record["rating_raw"] = [f'{{"rating": {int(ratings[record["session"]])}}}']
    if ratings:
        last = ratings[max(ratings)]
        value["final"] = last
        value["gain"] = last - float(metadata.get("baseline", 30))
    metadata["sessions"] = sessions
    scores = {**sample.scores, "client_satisfaction": score.model_copy(update={"value": value, "metadata": metadata})}
    return sample.model_copy(update={"id": sample_id, "epoch": epoch, "uuid": uuid(), "scores": scores})


def _write_scaled(template: Path, out_dir: Path, personas: int, epochs: int, seed: int) -> Path:
    header: EvalLog = read_eval_log(str(template), header_only=True)
    samples = [read_eval_log_sample(str(template), id=s.id, epoch=s.epoch)
               for s in read_eval_log_sample_summaries(str(template))]
    return asyncio.run(_write(header, samples, out_dir, personas, epochs, seed))


async def _write(header: EvalLog, samples: list[EvalSample], out_dir: Path, personas: int, epochs: int,
                 seed: int) -> Path:
    condition = str(header.eval.task_args.get("condition"))
    sessions = int(header.eval.task_args.get("sessions") or 6)
    ids = [f"{samples[p % len(samples)].id}-{p:04d}" for p in range(personas)]
    eval_spec = header.eval.model_copy(deep=True)
    eval_spec.eval_id, eval_spec.run_id = uuid(), uuid()
    eval_spec.dataset.samples, eval_spec.dataset.sample_ids = personas, ids
    eval_spec.config.epochs = epochs
    recorder = EvalRecorder(str(out_dir))
    location = await recorder.log_init(eval_spec)
    await recorder.log_start(eval_spec, header.plan)
    rng = random.Random(f"{seed}:{condition}")
    persona_effect = [random.Random(f"{seed}:persona:{p}").gauss(0, 4) for p in range(personas)]
    written = 0
    for p in range(personas):
        for epoch in range(1, epochs + 1):
            run_effect = random.Random(f"{seed}:run:{condition}:{epoch}").gauss(0, 2)
            shift = [persona_effect[p] + run_effect + rng.gauss(0, 3) for _ in range(sessions)]
            await recorder.log_sample(eval_spec, _shifted(samples[p % len(samples)], shift, ids[p], epoch))
            written += 1
            if written % FLUSH_EVERY == 0:
                await recorder.flush(eval_spec)
    results = header.results.model_copy(update={"total_samples": written, "completed_samples": written})
    await recorder.log_finish(eval_spec, "success", header.stats, results, None)
    return Path(location)


def make_logs(directory: Path, personas: int, epochs: int = 5, sessions: int = 6, turns: int = 4, seed: int = 0,
              templates: list[Path] | None = None) -> list[Path]:
    """Write the scaled logs of a ``personas``-persona study into ``directory`` (created); the
    template study is run first unless ``templates`` (its logs) are given."""
    directory.mkdir(parents=True, exist_ok=True)
    if templates is None:
        templates = template_logs(directory.parent / f"{directory.name}-template", sessions, turns)
    return [_write_scaled(t, directory, personas, epochs, seed) for t in templates]


def time_report(logs: Path, out: Path) -> dict[str, Any]:
    """``psysim-report`` in a fresh process under ``/usr/bin/time -v``: wall seconds, peak RSS."""
    command = [str(Path(sys.executable).parent / "psysim-report"), str(logs), "-o", str(out), "--quiet", "--no-png"]
    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(timer + command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"psysim-report failed ({done.returncode}):\n{done.stderr[-3000:]}")
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    cpu = [float(m[1]) for m in re.finditer(r"(?:User|System) time \(seconds\): ([\d.]+)", done.stderr)]
    return {"seconds": seconds, "peak_rss": int(match[1]) * 1024 if match else None, "command": " ".join(command),
            "cpu": sum(cpu) if len(cpu) == 2 else None, "load": (load_before, os.getloadavg()[0])}


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.eval"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--personas", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1, help="time each report this many times")
    parser.add_argument("--work", type=Path, help="keep logs here and reuse them on a re-run (default: a temp dir)")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="psysim-report-scale-"))
    templates_dir = work / "template"
    templates = sorted(templates_dir.glob("*.eval"))
    if not templates:
        templates = template_logs(templates_dir, args.sessions, args.turns)
    print(f"machine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; work dir {work}")
    print("| personas | samples | rated sessions | log size | time | CPU (user + sys) | peak RSS | load (1 min, before/after) |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for personas in args.personas:
        logs = work / f"logs-{personas}"
        samples = 3 * personas * args.epochs
        if _size(logs) == 0 or len(list(logs.glob("*.eval"))) != len(templates):
            shutil.rmtree(logs, ignore_errors=True)
            start = time.perf_counter()
            make_logs(logs, personas, args.epochs, args.sessions, args.turns, templates=templates)
            print(f"<!-- wrote {samples} samples in {time.perf_counter() - start:.1f} s -->", flush=True)
        for _ in range(args.repeat):
            out = work / f"report-{personas}"
            shutil.rmtree(out, ignore_errors=True)
            result = time_report(logs, out)
            rss = f"{result['peak_rss'] / 1024**2:,.0f} MB" if result["peak_rss"] else "n/a"
            cpu = f"{result['cpu']:.1f} s" if result["cpu"] is not None else "n/a"
            print(f"| {personas} | {samples:,} | {samples * args.sessions:,} | {_size(logs) / 1024**2:,.1f} MB | "
                  f"{result['seconds']:.1f} s | {cpu} | {rss} | {result['load'][0]:.2f} / {result['load'][1]:.2f} |",
                  flush=True)
            rows.append((personas, samples, result))
    print("\ncommand:", rows[-1][2]["command"] if rows else "")
    if len({p for p, _, _ in rows}) > 1:  # growth: seconds per sample, smallest vs largest study
        small = min(rows, key=lambda r: r[1])
        large = max(rows, key=lambda r: r[1])
        print(f"time per 1,000 samples: {1000 * small[2]['seconds'] / small[1]:.2f} s at {small[0]} personas, "
              f"{1000 * large[2]['seconds'] / large[1]:.2f} s at {large[0]} personas (start-up included; "
              "CPU time is the steadier measure on a shared machine)")
    largest = [r for r in rows if r[0] == max(args.personas)]
    ok = all(r[2]["seconds"] < TIME_GOAL and (r[2]["peak_rss"] or 0) < MEMORY_GOAL for r in largest)
    print(f"goal (under {TIME_GOAL:.0f} s and {MEMORY_GOAL / 1024**3:.0f} GB at {max(args.personas)} personas): "
          + ("met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
