"""``psysim-report LOG_DIR -o OUT``: the study's statistics and figures from Inspect logs."""

from __future__ import annotations

import argparse
import sys

from psysim.analysis.frames import UnknownTaskError
from psysim.analysis.report import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="psysim-report", description=__doc__)
    parser.add_argument("log_dir", help="directory of Inspect logs (e.g. logs/)")
    parser.add_argument("-o", "--output", default="reports", help="report directory (default: reports/)")
    parser.add_argument("--skip-unknown", action="store_true", help="ignore logs of other tasks")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        report = write_report(args.log_dir, args.output, skip_unknown=args.skip_unknown, quiet=args.quiet)
    except (FileNotFoundError, UnknownTaskError) as ex:
        print(f"psysim-report: error: {ex}", file=sys.stderr)
        return 2
    print(f"Report written to {report.directory}/ (open {report.directory / 'index.html'})")
    for note in report.notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
