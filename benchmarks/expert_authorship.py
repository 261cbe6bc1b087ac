"""Expert authorship on a finished (or running) Experiment 2 log: how often the "revised" response
is the Expert's text, and how long the Expert's critiques are (issue 26's before/after measure).

    python benchmarks/expert_authorship.py [--common] [--markdown] /work/runs/before26 /work/runs/after26

Per log directory: snippets; revisions produced; revisions flagged ``expert_authored`` (the
integrity flag, whatever the log's version); revisions flagged ``revision_identical`` (at least
0.95 similar to the human turn: no revision at all); critique words (median, max; the text the reviser
read); Expert calls beyond one per snippet (re-asks of any kind: a cut, an empty reply, a limit);
failed calls; wall time. Reads only what the log holds: a running log counts its finished samples.
"""

from __future__ import annotations

import statistics
import sys
from datetime import datetime
from pathlib import Path

from inspect_ai.log import list_eval_logs, read_eval_log, read_eval_log_samples


def expert_calls(sample) -> int:  # noqa: ANN001 - an Inspect EvalSample
    return sum(1 for e in sample.events if getattr(e, "event", "") == "model" and getattr(e, "role", None) == "expert")


def measure(log_dir: str, only: set[str] | None = None) -> dict[str, object]:
    [info] = list_eval_logs(log_dir)
    header = read_eval_log(info.name, header_only=True)
    samples = [s for s in read_eval_log_samples(info.name, all_samples_required=False)
               if only is None or str(s.id) in only]
    integrity = [s.scores["simulation_integrity"] for s in samples if s.scores and "simulation_integrity" in s.scores]
    words = [v.value["critique_words"] for v in integrity if v.value.get("critique_words") == v.value.get("critique_words")]
    revisions = sum(1 for s in samples if "revised" in (s.scores["client_rating"].metadata or {}).get("candidates", {}))
    flagged = sum(1 for v in integrity if v.value.get("expert_authored"))
    # the other way "revised" stops meaning a revision: the reviser handed back the human turn
    identical = sum(1 for v in integrity if v.value.get("revision_identical"))
    reasks = sum(max(expert_calls(s) - 1, 0) for s in samples)
    over = [v.value.get("critique_over_limit") for v in integrity if v.value.get("critique_over_limit") is not None]
    stats = header.stats
    wall = None
    if stats.started_at and stats.completed_at:
        wall = (datetime.fromisoformat(stats.completed_at) - datetime.fromisoformat(stats.started_at)).total_seconds()
    return {
        "log": info.name, "status": header.status, "task_version": header.eval.task_version,
        "snippets": len(samples), "revisions": revisions, "expert_authored": flagged,
        "revision_identical": identical,
        "critique_words_median": statistics.median(words) if words else None,
        "critique_words_max": max(words) if words else None,
        "expert_reasks": reasks,
        "critiques_over_limit": int(sum(x for x in over if x == x)) if over else None,
        "failed_calls": int(sum(v.value.get("failed_calls", 0) for v in integrity)),
        "wall_seconds": wall,
    }


def sample_ids(log_dir: str) -> set[str]:
    [info] = list_eval_logs(log_dir)
    return {str(s.id) for s in read_eval_log_samples(info.name, all_samples_required=False)}


def _words(r: dict[str, object]) -> str:
    return "–" if r["critique_words_median"] is None else f"{r['critique_words_median']:g}, {r['critique_words_max']:g}"


def main(argv: list[str]) -> int:
    """``--common``: only the snippets finished in every log (same seed: the same snippets), so
    runs still in progress compare like with like."""
    common, markdown = "--common" in argv, "--markdown" in argv
    dirs = [a for a in argv if a not in ("--common", "--markdown")] or ["logs"]
    only = set.intersection(*(sample_ids(d) for d in dirs)) if common else None
    if markdown:  # the table of docs/experiment-2.md
        print("| run | task version | snippets | revisions | flagged expert_authored | critique words (median, max) "
              "| identical to the human turn | Expert re-asks | kept over limit | failed calls | wall time |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
    for log_dir in dirs:
        r = measure(log_dir, only)
        if not markdown:
            print(f"{Path(log_dir).name}: " + ", ".join(f"{k}={v}" for k, v in r.items()))
            continue
        wall = f"{r['wall_seconds'] / 60:.0f} min" if r["wall_seconds"] else f"– ({r['status']})"
        over = "–" if r["critiques_over_limit"] is None else r["critiques_over_limit"]
        print(f"| {Path(log_dir).name} | {r['task_version']} | {r['snippets']} | {r['revisions']} | "
              f"{r['expert_authored']} of {r['revisions']} | {_words(r)} | {r['revision_identical']} of {r['revisions']} | "
              f"{r['expert_reasks']} | {over} | {r['failed_calls']} | {wall} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
