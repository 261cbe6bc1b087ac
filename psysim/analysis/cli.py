"""``psysim-report LOG_DIR -o OUT``: the study's statistics and figures from Inspect logs.

Never ends in a traceback: a directory without usable logs, an unknown task or a malformed
option exits 2 with a message naming the file or option; unreadable logs beside usable ones
are named on stderr and at the top of the report, which is written from the rest (exit 0).
Missing or incomplete shards of a sharded study are named the same way; with
``--fail-on-incomplete-shards`` (the Slurm report job's) the exit code is then 3, after the report.
"""

from __future__ import annotations

import argparse
import sys

from psysim._version import add_version_argument
from psysim.analysis.frames import UnknownTaskError
from psysim.analysis.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED
from psysim.analysis.report import SHARD_OMISSION, NothingUsableError, write_report
from psysim.analysis.section import ReportOptions
from psysim.analysis.sections import SECTIONS


def _primary(values: list[str]) -> dict[str, str]:
    chosen = {}
    for value in values:
        task, sep, spec = value.partition("=")
        if not sep or not spec:
            raise ValueError(f"--primary {value!r}: expected TASK=SPEC, e.g. iterative_feedback=expert-vs-none:slope")
        chosen[task] = spec
    return chosen


def main(argv: list[str] | None = None) -> int:
    choices = "; ".join(f"{task}: {section.primary_help}" for task, section in SECTIONS.items())
    parser = argparse.ArgumentParser(prog="psysim-report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_argument(parser)
    parser.add_argument("log_dir", help="directory of Inspect logs (e.g. logs/)")
    parser.add_argument("-o", "--output", default="reports", help="report directory (default: reports/)")
    parser.add_argument("--primary", action="append", default=[], metavar="TASK=SPEC",
                        help=f"the pre-declared primary test of an experiment ({choices})")
    parser.add_argument("--bootstrap", type=int, default=0,
                        help="ignored: Experiment 1's mixed model no longer bootstraps (analytic Satterthwaite CIs); "
                             "accepted so that older commands still run")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of every bootstrap (the rater checks'; default {DEFAULT_SEED})")
    parser.add_argument("--ci-resamples", type=int, default=DEFAULT_RESAMPLES,
                        help="resamples of the bootstrap CIs over transcripts of the rater checks (rater validity: "
                             f"AUC and group difference; default {DEFAULT_RESAMPLES})")
    parser.add_argument("--human-ratings", default=None, metavar="STUDY.db|CSV",
                        help="a psysim-rate study (its database or exported CSV): adds human raters next to the Client LLM")
    parser.add_argument("--keep-all-raters", action="store_true",
                        help="with --human-ratings: keep raters who failed more than a third of their gold items "
                             "(attention checks) in the statistics (default: left out, and the report says so)")
    parser.add_argument("--png", action=argparse.BooleanOptionalAction, default=None,
                        help="write a PNG beside each figure (needs Chromium for kaleido; default: on unless "
                             "PSYSIM_REPORT_PNG=0)")
    parser.add_argument("--skip-unknown", action="store_true", help="ignore logs of other tasks")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--fail-on-incomplete-shards", action="store_true",
                        help="exit 3 (after writing the report) when a shard of a sharded study is missing or "
                             "incomplete (configs/slurm/report.sbatch uses it)")
    args = parser.parse_args(argv)
    try:
        if args.ci_resamples < 2:
            raise ValueError(f"--ci-resamples must be at least 2 (got {args.ci_resamples})")
        options = ReportOptions(primary=_primary(args.primary), bootstrap=args.bootstrap, seed=args.seed,
                                ci_resamples=args.ci_resamples, human_ratings=args.human_ratings, keep_all_raters=args.keep_all_raters,
                                skip_unknown=args.skip_unknown, quiet=args.quiet, png=args.png)
        report = write_report(args.log_dir, args.output, options)
    except (FileNotFoundError, UnknownTaskError, NothingUsableError, ValueError) as ex:
        print(f"psysim-report: error: {ex}", file=sys.stderr)
        return 2
    except Exception as ex:  # the promise is a message, never a traceback
        print(f"psysim-report: error: unexpected failure reading {args.log_dir}: {type(ex).__name__}: {ex}",
              file=sys.stderr)
        return 1
    print(f"Report written to {report.directory}/ (open {report.directory / 'index.html'})")
    for note in report.notes:
        print(f"note: {note}")
    for omission in report.omissions:
        if "unreadable" in omission or omission.startswith(SHARD_OMISSION):
            print(f"warning: {omission}", file=sys.stderr)
    if args.fail_on_incomplete_shards and any(o.startswith(SHARD_OMISSION) for o in report.omissions):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
