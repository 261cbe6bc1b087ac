"""``psysim-rate``: human raters on the Client LLM's items.

  psysim-rate create LOG [LOG...] --study NAME --raters 5 [--items 50] [--seed 0]
              [--practice FILE.yaml] [--gold FILE.yaml]
  psysim-rate serve --study NAME [--host 127.0.0.1] [--port 8765]
  psysim-rate status NAME                      each rater's progress and expected finish
  psysim-rate reissue NAME --rater rater_02    a new link for a rater; the old one stops working
  psysim-rate export --study NAME [-o FILE.csv]
  psysim-rate close --study NAME

A study is one SQLite file, ``studies/NAME.db`` (or the path given as NAME when it ends in
``.db``). ``create`` prints one private link per rater, once: the database keeps only a hash
of each token. Errors exit 2 with a message naming the file, option or field.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import sys
from collections import Counter
from pathlib import Path

from psysim._version import add_version_argument
from psysim.analysis.safe_csv import write_csv
from psysim.inputs.shortfall import take_at_most
from psysim.rating_app.db import StudyFileError
from psysim.rating_app.extra_items import ExtraItemsError, load_extra_items
from psysim.rating_app.items import Item, read_items, select
from psysim.rating_app.progress import rater_summary, status_frame
from psysim.rating_app.study import close_study, create_study, export_frame, reissue_link, study_id
from psysim.rating_app.template import DEFAULT_TEMPLATE, TemplateError, load_template

STUDIES_DIR = Path("studies")
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


def study_path(name: str) -> Path:
    """``NAME`` -> ``studies/NAME.db``; a name ending in ``.db`` is a path as given."""
    if name.endswith(".db"):
        return Path(name)
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"--study {name!r}: a plain name (e.g. pilot1) or a path ending in .db")
    return STUDIES_DIR / f"{name}.db"


def pick_items(items: list[Item], n: int | None, seed: int) -> list[Item]:
    """``n`` items (contexts) drawn with ``seed``, in log order; all of them, with a warning, if fewer exist."""
    chosen, _ = take_at_most(items, n, "rating items (contexts)",
                             pick=lambda pool, k: random.Random(seed).sample(list(pool), k))
    keep = {id(item) for item in chosen}
    return [item for item in items if id(item) in keep]


def create(args: argparse.Namespace) -> int:
    if args.items is not None and args.items < 1:
        raise ValueError(f"--items must be at least 1 (got {args.items})")
    template = load_template(args.template)
    practice = load_extra_items(args.practice, "practice") if args.practice else []
    gold = load_extra_items(args.gold, "gold") if args.gold else []
    path = study_path(args.study)
    if path.exists():
        raise FileExistsError(f"{path}: a study database already exists (choose another --study name)")
    selection = select(args.logs)
    for bad in selection.unreadable:
        print(f"warning: unreadable log skipped: {bad.name}: {bad.reason}", file=sys.stderr)
    for dup in selection.duplicates:  # the same run under another name: its items once
        what = "WARNING: same eval id, different contents" if dup.differs else "a copy (same eval id)"
        print(f"{'warning' if dup.differs else 'note'}: {dup.entry.name} skipped: {what} of {dup.kept.name}",
              file=sys.stderr)
    items: list[Item] = []
    for entry in selection.used:
        found, skipped = read_items(entry)
        items += found
        for s in skipped:
            level = "warning" if s.reason.startswith(("store_missing", "sample_error")) else "note"
            print(f"{level}: {s.log} sample {s.sample_id} epoch {s.epoch}: {s.reason}", file=sys.stderr)
    if not items:
        raise ValueError(f"{' '.join(map(str, args.logs))}: no item to rate in these logs")
    items = pick_items(items, args.items, args.seed)
    created = create_study(path, args.study, items, args.raters, template, args.seed, practice=practice, gold=gold)
    tasks = Counter(item.task for item in items)
    extra = (f" + {created.practice} practice page(s) first" if created.practice else "") + \
            (f" + {created.gold} gold item(s) at random positions" if created.gold else "")
    print(f"Study {args.study}: {created.items} items ({', '.join(f'{t}: {n}' for t, n in tasks.items())}), "
          f"{created.responses} responses per rater{extra}, {args.raters} rater(s); database {path}")
    print("Private links (shown only now; the database keeps a hash of each token). Send each rater their own:")
    for label, token in created.tokens.items():
        print(f"  {label}  {args.base_url.rstrip('/')}/r/{token}")
    return 0


def serve(args: argparse.Namespace) -> int:
    import uvicorn  # the server only when serving

    from psysim.rating_app.app import create_app

    app = create_app(study_path(args.study), base_url=args.base_url)
    if not _loopback(args.host):
        print(f"warning: serving on {args.host}: anyone who can reach this address and holds a link can rate. "
              "Use it only on a trusted lab network, and prefer HTTPS in front (the links are the only key).",
              file=sys.stderr)
    print(f"Serving {args.study} on http://{args.host}:{args.port}/ (Ctrl+C to stop)", file=sys.stderr)
    # no access log: request paths hold the raters' tokens
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")
    return 0


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def export(args: argparse.Namespace) -> int:
    path = study_path(args.study)
    frame = export_frame(path)
    out = Path(args.output) if args.output else path.with_suffix(".csv")
    write_csv(frame, out)  # a comment "=HYPERLINK(...)" is exported as text, not as a formula
    counts = frame["status"].value_counts()
    print(f"{out}: {len(frame)} rows ({', '.join(f'{k} {counts.get(k, 0)}' for k in ('rated', 'skipped', 'unanswered'))})")
    print("Per rater (pages done, median seconds per page, skips, gold items failed of those rated):")
    print(_table(rater_summary(frame)))
    return 0


def _table(frame) -> str:  # noqa: ANN001 - a DataFrame
    return frame.fillna("-").to_string(index=False) if len(frame) else "(no raters)"


def _named(args: argparse.Namespace) -> str:
    name = args.study or args.name
    if not name:
        raise ValueError("give the study: psysim-rate {cmd} NAME (or --study NAME)".format(cmd=args.command))
    return name


def status(args: argparse.Namespace) -> int:
    name = _named(args)
    frame = status_frame(study_path(name))
    print(f"Study {study_id(name)}: {len(frame)} rater(s); expected finish = remaining pages x the rater's median seconds "
          "per page (practice pages not counted)")
    print(_table(frame))
    return 0


def reissue(args: argparse.Namespace) -> int:
    name = _named(args)
    token = reissue_link(study_path(name), args.rater)
    print(f"New private link for {args.rater} (shown only now; the old link no longer works; answers are kept):")
    print(f"  {args.rater}  {args.base_url.rstrip('/')}/r/{token}")
    return 0


def close(args: argparse.Namespace) -> int:
    closed = close_study(study_path(args.study))
    print(f"Study {args.study} closed at {closed}: no further answers are accepted.")
    return 0


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(prog="psysim-rate", description=__doc__,
                                          formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_argument(main_parser)
    commands = main_parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("create", help="build a study from finished logs and print the rater links")
    p.add_argument("logs", nargs="+", metavar="LOG", help="Inspect log files or directories (Experiment 1, 2 or rater validity)")
    p.add_argument("--study", required=True, help="study name (studies/NAME.db) or a path ending in .db")
    p.add_argument("--raters", type=int, required=True, help="number of raters (one private link each)")
    p.add_argument("--items", type=int, default=None, help="contexts to sample (snippets or sessions; default all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the item sample and of each rater's order (default 0)")
    p.add_argument("--template", default=DEFAULT_TEMPLATE,
                   help=f"study template: a shipped name or a YAML file (default {DEFAULT_TEMPLATE}: the Client LLM's question)")
    p.add_argument("--base-url", default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
                   help="start of the printed links (where raters will reach `serve`)")
    p.add_argument("--practice", default=None, metavar="FILE.yaml",
                   help="practice items every rater answers first (context, response; never exported)")
    p.add_argument("--gold", default=None, metavar="FILE.yaml",
                   help="gold items (context, response, expected: low|high), planted at random positions (seeded)")
    p.set_defaults(run=create)
    p = commands.add_parser("serve", help="serve the rating pages")
    p.add_argument("--study", required=True)
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--base-url", default=None,
                   help="the address raters use (as given to `create`), when it differs from this server's own "
                        "(a proxy in front): form posts must come from a page of this server or of this address")
    p.set_defaults(run=serve)
    p = commands.add_parser("status", help="each rater's progress, last activity and expected finish (CLI only)")
    p.add_argument("name", nargs="?", metavar="STUDY", help="study name or path ending in .db")
    p.add_argument("--study", default=None, help="the same, as an option")
    p.set_defaults(run=status)
    p = commands.add_parser("reissue", help="a new link for a rater who lost theirs; the old link stops working")
    p.add_argument("name", nargs="?", metavar="STUDY", help="study name or path ending in .db")
    p.add_argument("--study", default=None, help="the same, as an option")
    p.add_argument("--rater", required=True, help="the rater's label as printed by create (e.g. rater_02)")
    p.add_argument("--base-url", default=f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
                   help="start of the printed link (as given to create)")
    p.set_defaults(run=reissue)
    p = commands.add_parser("export", help="write the answers as tidy CSV")
    p.add_argument("--study", required=True)
    p.add_argument("-o", "--output", default=None, help="CSV file (default: the database path with .csv)")
    p.set_defaults(run=export)
    p = commands.add_parser("close", help="stop accepting answers")
    p.add_argument("--study", required=True)
    p.set_defaults(run=close)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError, StudyFileError, TemplateError, ExtraItemsError) as ex:
        print(f"psysim-rate {args.command}: error: {ex}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
