"""Load on the raters' web app: many raters saving at once, against the real server on 127.0.0.1.

    python benchmarks/rating_app_load.py                          # 20 raters x 150 answers
    python benchmarks/rating_app_load.py --raters 40 --contexts 100 --kill-after 1500

A synthetic study (``--contexts`` snippets x 3 responses, fully crossed) is served by
``psysim-rate serve`` in a child process; every rater posts all their answers from their own
thread, all starting together. Reports answers confirmed (HTTP 303: committed before the page
advances), answers in the database, answers lost (confirmed but absent: must be 0), throughput
and save latency. ``--kill-after N`` SIGKILLs the server once N answers are confirmed, then
checks that every confirmed answer survived. Timings depend on the machine: not a test.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from psysim.rating_app.items import Item, Line, Response  # noqa: E402
from psysim.rating_app.study import Study, create_study, export_frame  # noqa: E402
from psysim.rating_app.template import load_template  # noqa: E402

from rating_server import post, served_process  # noqa: E402


def synthetic_items(contexts: int) -> list[Item]:
    return [Item(task="human_comparison", kind="response", log="synthetic.eval", eval_id="synthetic",
                 sample_id=f"s{c}", epoch=1, context_key=f"s{c}",
                 lines=[Line("Therapist", f"Opening {c}."), Line("You", f"Client turn {c}.")],
                 responses=[Response(kind, f"{kind} response {c}") for kind in ("human", "llm", "revised")])
            for c in range(contexts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--contexts", type=int, default=50, help="snippets; each has 3 responses")
    parser.add_argument("--kill-after", type=int, default=None, help="SIGKILL the server after this many confirmed answers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        created = create_study(Path(tmp) / "load.db", "load", synthetic_items(args.contexts), args.raters,
                               load_template(), seed=0)
        study = Study(created.path)
        plans = []
        for token in created.tokens.values():
            rater_id, _ = study.rater(token)
            study.start(rater_id)  # the start page passed (issue 27): answers are accepted from then on
            plans.append((token, [study.page(rater_id, p).response_id for p in range(1, 3 * args.contexts + 1)]))
        confirmed: list[tuple[str, int, int]] = []
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        killed = threading.Event()
        barrier = threading.Barrier(args.raters)
        with served_process(created.path) as (base, process):
            def rate(index: int, token: str, pages: list[str]) -> None:
                barrier.wait()
                for position, response_id in enumerate(pages, start=1):
                    if killed.is_set():
                        return
                    value = (index * 7 + position * 13) % 101
                    start = time.perf_counter()
                    try:
                        status, _ = post(f"{base}/r/{token}/{position}",
                                         {"response": response_id, "rating": str(value), "action": "save"})
                    except OSError as ex:  # the server was killed under this request
                        errors.append(f"{type(ex).__name__}")
                        return
                    with lock:
                        latencies.append(time.perf_counter() - start)
                        if status == 303:
                            confirmed.append((token, position, value))
                        else:
                            errors.append(f"HTTP {status}")
                        if args.kill_after and len(confirmed) >= args.kill_after and not killed.is_set():
                            killed.set()
                            process.send_signal(signal.SIGKILL)

            started = time.perf_counter()
            threads = [threading.Thread(target=rate, args=(i, t, p)) for i, (t, p) in enumerate(plans)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
        frame = export_frame(created.path)
        labels = {token: label for label, token in created.tokens.items()}
        saved = {(r.rater, int(r.position)): int(r.rating) for r in frame[frame["status"] == "rated"].itertuples()}
        lost = [c for c in confirmed if saved.get((labels[c[0]], c[1])) != c[2]]
        posted = args.raters * 3 * args.contexts
        print(f"raters simulated: {args.raters}; answers planned: {posted}; confirmed (303): {len(confirmed)}; "
              f"in the database: {len(saved)}; answers lost: {len(lost)}"
              + (f"; server SIGKILLed after {args.kill_after} confirmed" if args.kill_after else ""))
        print(f"elapsed {elapsed:.1f} s, {len(confirmed) / elapsed:.0f} saves/s; latency p50 "
              f"{statistics.median(latencies) * 1000:.0f} ms, p95 {sorted(latencies)[int(0.95 * len(latencies))] * 1000:.0f} ms; "
              f"non-303 or failed requests: {len(errors)}")
        if lost:
            sys.exit(1)


if __name__ == "__main__":
    main()
