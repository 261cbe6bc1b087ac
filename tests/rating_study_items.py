"""Rating-study items built in memory (no Inspect run), and practice/gold files, for fast tests."""

from __future__ import annotations

from pathlib import Path

import yaml

from psysim.rating_app.items import EXP2_TASK, Item, Line, Response


def snippet_items(n: int = 4, turns: int = 4, responses: tuple[str, ...] = ("human", "llm", "revised")) -> list[Item]:
    """``n`` Experiment 2 items, each a context of ``turns`` turns (the last the client's) and its candidates."""
    items = []
    for k in range(n):
        lines = [Line("You" if (turns - t) % 2 else "Therapist",
                      f"Snippet {k} turn {t + 1}: " + ("some words of the conversation " * 6).strip())
                 for t in range(turns)]
        items.append(Item(task=EXP2_TASK, kind="response", log="log.eval", eval_id="E", sample_id=f"s{k}", epoch=1,
                          context_key=f"E:s{k}:1", lines=lines,
                          responses=[Response(r, f"{r.upper()} reply to snippet {k}.") for r in responses]))
    return items


def write_extra(path: Path, n: int, expected: tuple[str, ...] | None = ("low", "high")) -> Path:
    """A practice or gold file of ``n`` items, expected sides cycling through ``expected``."""
    entries = []
    for k in range(n):
        entry = {"id": f"x{k + 1}", "context": [{"client": f"Extra {k}: I have not slept for days."},
                                                {"therapist": "What keeps you awake?"},
                                                {"client": "Money, mostly."}],
                 "response": f"EXTRA RESPONSE {k + 1}"}
        if expected:
            entry["expected"] = expected[k % len(expected)]
        entries.append(entry)
    path.write_text(yaml.safe_dump(entries, sort_keys=False), encoding="utf-8")
    return path
