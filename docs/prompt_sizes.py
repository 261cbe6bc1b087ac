"""The longest single prompt per session of an Experiment 1 course, in tokens, for the GPU guide (docs/gpu.md).

    python docs/prompt_sizes.py                                 # the three cases of the guide's table
    python docs/prompt_sizes.py TURN_TOKENS FEEDBACK_TOKENS     # one case

Every call of a course (condition ``expert``: the Expert's feedback is read from session 2 on) is rendered from the
shipped templates with each shipped persona and replies of the assumed length, exactly as psysim/study/size.py does
for ``psysim-paper``'s size table (about 4 characters a token; no tokenizer). Printed per session: the longest
prompt over all personas and over the therapist turns, client turns, rating and feedback calls. A server's
``max_model_len`` must hold that prompt plus the call's completion cap (turns 300 tokens, feedback the cap
derived from the Expert's word limit: 540 tokens).
"""

from __future__ import annotations

import sys

from psysim.calls.critique import form_max_tokens, load_form
from psysim.dialogue.transcript import Turn, format_dialogue
from psysim.inputs.personas import DEFAULT_PERSONAS, load_personas
from psysim.prompts import DEFAULT_GUIDELINES, prompt, text_or_file
from psysim.solvers.client_simulator import client_system_prompt
from psysim.study.size import _text, tokens

SESSIONS, TURNS = 6, 4  # the study's
FEEDBACK = load_form("feedback_form")  # the Expert's word limit and its derived token cap


def longest_prompts(turn_tokens: int, feedback_tokens: int) -> list[int]:
    guidelines = text_or_file(None, DEFAULT_GUIDELINES)
    worst = [0] * SESSIONS
    for persona in load_personas(DEFAULT_PERSONAS):
        history: list[Turn] = []
        feedback = None
        rating_system = prompt("client", "rating_system", persona=prompt("client", "persona", p=persona))
        for session in range(1, SESSIONS + 1):
            previous = [t for t in history if t.session == session - 1]
            earlier = [t for t in history if t.session < session]
            current: list[Turn] = []
            sizes = []
            for _ in range(TURNS):
                therapist = (prompt("therapist", "system", session=session, previous_session=format_dialogue(previous),
                                    feedback=feedback, client_name=persona.name)
                             + prompt("therapist", "session_opening", session=session) + format_dialogue(current))
                current.append(Turn(speaker="therapist", text=_text(turn_tokens, "therapist"), session=session))
                client = client_system_prompt(persona, earlier, session) + format_dialogue(current)
                current.append(Turn(speaker="client", text=_text(turn_tokens, "client"), session=session))
                sizes += [tokens(therapist), tokens(client)]
            history += current
            sizes.append(tokens(rating_system + prompt("rating", "user", transcript=format_dialogue(history),
                                                       session=session, baseline=30, earlier_ratings=[])))
            if session < SESSIONS:
                sizes.append(tokens(prompt("expert", "system", guidelines=guidelines)
                                    + prompt("expert", "user", session=session, transcript=format_dialogue(current),
                                             max_words=FEEDBACK.max_words)))
                feedback = _text(feedback_tokens, "feedback")
            worst[session - 1] = max(worst[session - 1], *sizes)
    return worst


# psysim-paper's size table's assumption; longer replies; every reply at its cap (turns 300 tokens,
# feedback the cap derived from the Expert's word limit)
CASES = ((80, 260), (150, 260), (300, form_max_tokens(FEEDBACK)))


if __name__ == "__main__":
    for turn, feedback in [tuple(int(a) for a in sys.argv[1:3])] if len(sys.argv) > 2 else CASES:
        sizes = longest_prompts(turn, feedback)
        print(f"replies of {turn} tokens a turn, feedback {feedback}: longest prompt per session "
              + ", ".join(f"s{k}: {n:,}" for k, n in enumerate(sizes, 1)))
