from __future__ import annotations

import math
import re
from pathlib import Path

from inspect_ai import eval
from inspect_ai.log import read_eval_log

from psysim.tasks.human_comparison import human_comparison

from mock_roles import Call, Recorder, critique_form, main_model, mock_role

SNIPPETS = 3
RATING_BY_MARK = {"REVISED-RESPONSE": 80, "LLM-RESPONSE": 70}


def therapist(call: Call) -> str:
    if "supervisor critiqued" in call.last_user:
        return "REVISED-RESPONSE: It sounds like this has been weighing on you; what matters most to you here?"
    return "LLM-RESPONSE: You have been carrying a lot. What would you like to be different?"


def expert(call: Call) -> str:
    return critique_form("CRITIQUE-TEXT: reflect the feeling before asking; avoid lecturing.")


def client(call: Call) -> str:
    first_user = next(m.text for m in call.messages if m.role == "user")  # a re-ask comes later
    said = re.search(r'The therapist now says to you:\n"(.*)"', first_user, re.DOTALL).group(1)
    for mark, rating in RATING_BY_MARK.items():
        if said.startswith(mark):
            return f'{{"rating": {rating}}}'
    return '{"rating": 50}'  # the human response


def run(tmp_path: Path, recorder: Recorder, client_fn=client, **task_args):
    task = human_comparison(snippets=SNIPPETS, **task_args)
    roles = {
        "therapist": mock_role("therapist", recorder, therapist),
        "expert": mock_role("expert", recorder, expert),
        "client": mock_role("client", recorder, client_fn),
    }
    [log] = eval(task, model=main_model(recorder), model_roles=roles, log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success", log.error
    return task, read_eval_log(log.location)


def test_end_to_end_scores_and_calls(tmp_path: Path) -> None:
    recorder = Recorder()
    task, log = run(tmp_path, recorder)
    assert not recorder.of("main")
    assert len(log.samples) == SNIPPETS
    for sample in log.samples:
        assert sample.scores["client_rating"].value == {"human": 50.0, "llm": 70.0, "revised": 80.0}
        meta = sample.scores["client_rating"].metadata
        assert "\nWhat to change: CRITIQUE-TEXT: reflect" in meta["critique"]  # the fields, rendered
        assert meta["candidates"]["human"] == sample.target
        assert meta["candidates"]["revised"].startswith("REVISED-RESPONSE")
        assert meta["ratings"]["llm"]["raw"] == ['{"rating": 70}']
    # per snippet: 2 therapist calls (LLM response, revision), 1 critique, 3 ratings
    assert len(recorder.of("therapist")) == 2 * SNIPPETS
    assert len(recorder.of("expert")) == SNIPPETS
    assert len(recorder.of("client")) == 3 * SNIPPETS
    means = {s.name: s.metrics["mean"].value for s in log.results.scores if s.scorer == "client_rating"}
    assert means == {"human": 50.0, "llm": 70.0, "revised": 80.0}
    # the integrity scorer runs beside it, and finds the mock responses clean
    for sample in log.samples:
        assert sample.scores["simulation_integrity"].value["flagged"] == 0


def test_client_is_blind_to_the_source(tmp_path: Path) -> None:
    recorder = Recorder()
    task, log = run(tmp_path, recorder)
    ratings = recorder.of("client")
    for call in ratings:
        text = call.text.lower()
        for word in ("human", "llm", "revised", "revision", "critique", "supervisor", "expert"):
            assert word not in text.replace("revised-response", "").replace("llm-response", "")
    # for one snippet the three prompts are identical except for the response itself
    by_context: dict[str, list[str]] = {}
    for call in ratings:
        context = call.last_user.split("The therapist now says to you:")[0]
        by_context.setdefault(context, []).append(call.last_user)
    assert len(by_context) == SNIPPETS
    for prompts in by_context.values():
        assert len(prompts) == 3
        stripped = {re.sub(r'says to you:\n".*"', "", p, flags=re.DOTALL) for p in prompts}
        assert len(stripped) == 1


def test_what_therapist_and_expert_saw(tmp_path: Path) -> None:
    recorder = Recorder()
    task, log = run(tmp_path, recorder)
    humans = {s.target for s in log.samples}
    contexts = [s.input for s in log.samples]
    llm_calls = [c for c in recorder.of("therapist") if "supervisor critiqued" not in c.last_user]
    assert len(llm_calls) == SNIPPETS
    for call in llm_calls:
        # from the context alone: never the human response, always ending on the client's turn
        assert not any(h in call.text for h in humans)
        assert call.messages[-1].role == "user" and call.messages[1].role == "user"
    for call in recorder.of("expert"):
        assert "working alliance" in call.system
        assert any(h in call.last_user for h in humans)
    revisions = [c for c in recorder.of("therapist") if "supervisor critiqued" in c.last_user]
    assert all("CRITIQUE-TEXT" in c.last_user and any(h in c.last_user for h in humans) for c in revisions)
    # the client sees the context from its own side
    assert all("You: " in c.last_user for c in recorder.of("client"))
    assert all(any(ctx.splitlines()[0].split(": ", 1)[1] in c.last_user for ctx in contexts) for c in recorder.of("client"))


def test_missing_rating_recorded(tmp_path: Path) -> None:
    def stubborn(call: Call) -> str:
        if "LLM-RESPONSE" in call.text:
            return "It was fine I guess."
        return client(call)

    recorder = Recorder()
    task, log = run(tmp_path, recorder, client_fn=stubborn, max_rating_attempts=2)
    sample = log.samples[0]
    value = sample.scores["client_rating"].value
    assert math.isnan(value["llm"]) and value["human"] == 50.0 and value["revised"] == 80.0
    rating = sample.scores["client_rating"].metadata["ratings"]["llm"]
    assert rating["raw"] == ["It was fine I guess."] * 2 and rating["value"] is None
    assert [s for s in log.results.scores if s.name == "llm"][0].unscored_samples == SNIPPETS


def test_expert_as_reviser(tmp_path: Path) -> None:
    recorder = Recorder()

    def expert_or_reviser(call: Call) -> str:
        if "supervisor critiqued" in call.last_user:
            return "REVISED-RESPONSE: by the expert."
        return expert(call)

    task = human_comparison(snippets=1, reviser="expert")
    roles = {
        "therapist": mock_role("therapist", recorder, therapist),
        "expert": mock_role("expert", recorder, expert_or_reviser),
        "client": mock_role("client", recorder, client),
    }
    [log] = eval(task, model=main_model(recorder), model_roles=roles, log_dir=str(tmp_path / "l"), display="none")
    assert log.samples[0].scores["client_rating"].metadata["reviser"] == "expert"
    assert len(recorder.of("expert")) == 2 and len(recorder.of("therapist")) == 1


def test_stable_sample_ids() -> None:
    first = [s.id for s in human_comparison(snippets=10, seed=3).dataset]
    again = [s.id for s in human_comparison(snippets=10, seed=3).dataset]
    other = [s.id for s in human_comparison(snippets=10, seed=4).dataset]
    assert first == again and set(first) != set(other)
    assert all(re.fullmatch(r"demo_0\d_t\d+", i) for i in first)


def test_context_opening_with_the_client_alternates_roles(tmp_path: Path) -> None:
    import csv

    path = tmp_path / "client_first.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["transcript_id", "turn", "speaker", "text"])
        writer.writerows([
            ["x", 0, "client", "I don't really know why I'm here, my wife made the appointment."],
            ["x", 1, "therapist", "It sounds like coming here was not entirely your own idea, and part of you is unsure about it."],
        ])
    recorder = Recorder()
    task, log = run(tmp_path, recorder, transcripts=str(path))
    [llm_call] = [c for c in recorder.of("therapist") if "supervisor critiqued" not in c.last_user]
    roles = [m.role for m in llm_call.messages]
    assert roles == ["system", "user"]  # the cue is folded into the client's turn
    assert llm_call.messages[1].text.startswith("[A counselling session is under way")
    assert "my wife made the appointment" in llm_call.messages[1].text
