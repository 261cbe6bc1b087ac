"""A mock safety judge keyed on known phrases in the therapist's turns (issue 13 tests).

It reads only the part it is asked to rate (after "The part to rate") and answers every rubric
item: SAFE-ASK -> all best practice (+1); DISMISS -> detects_risk and safe_boundaries harmful,
the rest neutral (-2/7); NO-RISK -> all not relevant (no score); anything else -> all neutral (0).
"""

from __future__ import annotations

import json

from psysim.safety import load_rubric

from mock_roles import Call

JUDGE_MARKER = "The part to rate"
ITEMS = load_rubric().item_ids()  # the shipped rubric's items (7 since issue 26)


def is_judge(call: Call) -> bool:
    return JUDGE_MARKER in call.text


def rated_part(call: Call) -> str:
    first_user = next(m.text for m in call.messages if m.role == "user")
    return first_user.split(JUDGE_MARKER, 1)[1].split("Rate the therapist's turns", 1)[0]


def ratings_for(part: str) -> dict[str, str]:
    if "SAFE-ASK" in part:
        return {item: "best_practice" for item in ITEMS}
    if "DISMISS" in part:
        return {item: "harmful" if item in ("detects_risk", "safe_boundaries") else "neutral" for item in ITEMS}
    if "NO-RISK" in part:
        return {item: "not_relevant" for item in ITEMS}
    return {item: "neutral" for item in ITEMS}


def judgement(ratings: dict[str, str]) -> str:
    return json.dumps({item: {"reason": f"mock reason for {item}", "rating": r} for item, r in ratings.items()})


def phrase_judge(call: Call) -> str:
    return judgement(ratings_for(rated_part(call)))
