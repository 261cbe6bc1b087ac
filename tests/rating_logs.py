"""Finished logs of the three tasks, written with mock roles, for the rating-app tests.

The Client LLM's ratings are known functions of what it reads, so the report's agreement
between humans and the LLM can be checked against hand-made human ratings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from inspect_ai import eval
from inspect_ai.log import EvalLog

from psysim.tasks.human_comparison import human_comparison
from psysim.tasks.iterative_feedback import iterative_feedback
from psysim.tasks.rater_validity import rater_validity

from mock_roles import Call, Recorder, critique_form, main_model, mock_role, roles

SAID = re.compile(r'The therapist now says to you:\n"(.*)"', re.DOTALL)
LLM_RATING = {"REVISED": 80, "LLM": 70}
"""Experiment 2 mock client: by the response's mark; the human response gets 40 + its length mod 20."""


def exp2_client(call: Call) -> str:
    said = SAID.search(next(m.text for m in call.messages if m.role == "user")).group(1)
    for mark, rating in LLM_RATING.items():
        if said.startswith(mark):
            return f'{{"rating": {rating}}}'
    return f'{{"rating": {40 + len(said) % 20}}}'


def exp2_therapist(call: Call) -> str:
    if "supervisor critiqued" in call.last_user:
        return "REVISED: It sounds like this has been weighing on you; what matters most to you here?"
    return "LLM: You have been carrying a lot. What would you like to be different?"


def _eval(task, model_roles: dict, log_dir: Path, **kwargs) -> EvalLog:  # noqa: ANN001
    with pytest.MonkeyPatch.context() as patch:  # module-scoped: its own generate cache
        patch.setenv("INSPECT_CACHE_DIR", str(log_dir.parent / "inspect-cache"))
        [log] = eval(task, model=main_model(Recorder()), model_roles=model_roles, log_dir=str(log_dir),
                     display="none", **kwargs)
    assert log.status == "success", log.error
    return log


def exp2_log(log_dir: Path, snippets: int = 4) -> EvalLog:
    recorder = Recorder()
    model_roles = {"therapist": mock_role("therapist", recorder, exp2_therapist),
                   "expert": mock_role("expert", recorder, lambda c: critique_form("reflect first.")),
                   "client": mock_role("client", recorder, exp2_client)}
    return _eval(human_comparison(snippets=snippets), model_roles, log_dir)


def validity_log(log_dir: Path) -> EvalLog:
    recorder = Recorder()
    model_roles = {role: mock_role(role, recorder, exp2_client if role == "client" else lambda c: "unexpected")
                   for role in ("therapist", "client", "expert")}
    return _eval(rater_validity(per_group=2), model_roles, log_dir)


def exp1_log(log_dir: Path, personas: int = 2, sessions: int = 2) -> EvalLog:
    return _eval(iterative_feedback(condition="expert", sessions=sessions, turns=2), roles(Recorder()), log_dir,
                 limit=personas)
